{{ config(severity='warn') }}
-- The national table lists every province: 34 rows per period.
select
    period_type,
    period_start,
    count(*) as provinces
from {{ ref('mart_province_ranking') }}
group by period_type, period_start
having count(*) != 34
