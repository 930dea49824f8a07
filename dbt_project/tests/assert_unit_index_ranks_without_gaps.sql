-- mart_unit_index_766: every agency and commune has a rank; a unit's rank is 1 + the number of units of its
-- type with a higher total on that day (competition ranking: ties share, no other gap), so rank 1 exists.
with

ranked as (

    select * from {{ ref('mart_unit_index_766') }}
    where unit_type in ('agency', 'commune')

),

expected as (

    select
        unit_code,
        period_start,
        as_of_date,
        rank_in_type,
        1 + (
            select count(*)
            from ranked as other
            where
                other.period_start = ranked.period_start
                and other.as_of_date = ranked.as_of_date
                and other.unit_type = ranked.unit_type
                and other.total_score > ranked.total_score
        ) as expected_rank

    from ranked

)

select *
from expected
where rank_in_type is distinct from expected_rank
