-- mart_unit_index_766: the total is the sum of the six group scores (nulls as 0).
select
    unit_code,
    period_start,
    as_of_date,
    total_score

from {{ ref('mart_unit_index_766') }}

where
    total_score
    != coalesce(ckmb, 0) + coalesce(tdgq, 0) + coalesce(clgq, 0) + coalesce(tttt, 0) + coalesce(mdsh, 0)
    + coalesce(mdhl, 0)
