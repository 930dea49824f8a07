-- The official total is the sum of the six group scores (each published with two decimals, so the sum may
-- differ from the total by a few hundredths).
select
    period_type,
    period_start,
    department_code,
    total_score,
    ckmb + tdgq + clgq + tttt + mdhl + mdsh as sum_of_groups
from {{ ref('mart_province_ranking') }}
where abs(total_score - (ckmb + tdgq + clgq + tttt + mdhl + mdsh)) > 0.05
