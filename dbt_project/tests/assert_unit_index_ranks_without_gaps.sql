-- mart_unit_index_766: every agency and commune has a rank; a unit's rank is 1 + the number of units of its
-- type with a higher total on that day (competition ranking: ties share, no other gap), so rank 1 exists.
with

ranked as (

    select * from {{ ref('mart_unit_index_766') }}
    where unit_type in ('agency', 'commune')

),

counted as (

    select
        unit_code,
        period_start,
        as_of_date,
        rank_in_type,
        -- units with a total at least this one's, less those with exactly this total: the higher ones
        count(*)
            over (
                partition by period_start, as_of_date, unit_type
                order by total_score desc
                range between unbounded preceding and current row
            )
        - count(*) over (partition by period_start, as_of_date, unit_type, total_score) as higher

    from ranked

)

select *
from counted
where rank_in_type is distinct from 1 + higher
