{{ config(indexes=[{'columns': ['period_start']}]) }}  -- the dashboards read one month (the newest by default)

-- The service index per unit, month and as-of day (wide form): six group scores, total, rank among units of
-- the same type, and the change against the previous month's final score.
-- Incremental by month: the months int_index766__unit_metrics rebuilt since this table's last build (read
-- from the month before them, whose final score the first one compares with).
{% set first_month = index766_first_rebuilt_month(['int_index766__unit_metrics']) %}
with

metrics as (

    select * from {{ ref('int_index766__unit_metrics') }}
    where period_start >= {{ first_month }} - interval '1 month'

),

units as (

    select * from {{ ref('dim_unit') }}

),

-- a group's score: its points summed before rounding; null when none of its sub-indicators applies
groups as (

    select
        unit_code,
        period_start,
        as_of_date,
        round(sum(points) filter (where group_code = 'CKMB'), 2) as ckmb,
        round(sum(points) filter (where group_code = 'TDGQ'), 2) as tdgq,
        round(sum(points) filter (where group_code = 'CLGQ'), 2) as clgq,
        round(sum(points) filter (where group_code = 'TTTT'), 2) as tttt,
        round(sum(points) filter (where group_code = 'MDSH'), 2) as mdsh,
        round(sum(points) filter (where group_code = 'MDHL'), 2) as mdhl

    from metrics

    group by unit_code, period_start, as_of_date

),

totals as (

    select
        groups.*,
        units.unit_name,
        units.unit_type,
        groups.as_of_date = (groups.period_start + interval '1 month - 1 day')::date as is_final,
        coalesce(groups.ckmb, 0) + coalesce(groups.tdgq, 0) + coalesce(groups.clgq, 0)
        + coalesce(groups.tttt, 0) + coalesce(groups.mdsh, 0) + coalesce(groups.mdhl, 0) as total_score

    from groups

    inner join units
        on groups.unit_code = units.unit_code

),

ranked as (

    select
        *,
        case
            when unit_type in ('agency', 'commune')
                then rank() over (
                    partition by period_start, as_of_date, unit_type order by total_score desc
                )
        end as rank_in_type,
        count(*) over (partition by period_start, as_of_date, unit_type) as units_in_type

    from totals

),

finals as (

    select
        unit_code,
        period_start,
        total_score

    from totals

    where is_final

),

final as (

    select
        ranked.unit_code,
        ranked.unit_name,
        ranked.unit_type,
        ranked.period_start,
        ranked.as_of_date,
        ranked.is_final,
        ranked.ckmb::numeric(7, 2) as ckmb,
        ranked.tdgq::numeric(7, 2) as tdgq,
        ranked.clgq::numeric(7, 2) as clgq,
        ranked.tttt::numeric(7, 2) as tttt,
        ranked.mdsh::numeric(7, 2) as mdsh,
        ranked.mdhl::numeric(7, 2) as mdhl,
        ranked.total_score::numeric(7, 2) as total_score,
        ranked.rank_in_type::integer as rank_in_type,
        ranked.units_in_type::integer as units_in_type,
        previous.total_score::numeric(7, 2) as previous_final_total_score,
        (ranked.total_score - previous.total_score)::numeric(7, 2) as score_change,
        now() as built_at

    from ranked

    left join finals as previous
        on
            ranked.unit_code = previous.unit_code
            and previous.period_start = (ranked.period_start - interval '1 month')::date

)

select * from final
where period_start >= {{ first_month }}
