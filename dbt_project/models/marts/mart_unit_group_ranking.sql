-- Agencies and communes ranked on each group of the service index, on the month's shown as-of day, against
-- the group's maximum and the average of the units of the same type.
with

unit_index as (

    select * from {{ ref('mart_unit_index_766') }}

),

shown_days as (

    select * from {{ ref('int_index766__shown_days') }}

),

index_groups as (

    select * from {{ ref('index766_groups') }}

),

long_form as (

    select
        unit_index.unit_code,
        unit_index.unit_name,
        unit_index.unit_type,
        unit_index.period_start,
        unit_index.as_of_date,
        shown_days.is_final,
        unit_index.total_score,
        unit_index.rank_in_type as total_rank_in_type,
        unit_index.units_in_type,
        scores.group_order,
        scores.group_code,
        scores.score

    from unit_index

    inner join shown_days
        on
            unit_index.period_start = shown_days.period_start
            and unit_index.as_of_date = shown_days.as_of_date

    cross join lateral {{ index766_group_rows('unit_index') }} as scores (group_order, group_code, score)

    where unit_index.unit_type in ('agency', 'commune')

),

final as (

    select
        long_form.unit_code,
        long_form.unit_name,
        long_form.unit_type,
        long_form.period_start,
        to_char(long_form.period_start, 'YYYY-MM') as period_label,
        long_form.as_of_date,
        long_form.is_final,
        long_form.group_order::integer as group_order,
        long_form.group_code,
        index_groups.group_code || ' · ' || index_groups.group_name_vi as group_name,
        index_groups.max_score::numeric(7, 2) as max_score,
        long_form.score::numeric(7, 2) as score,
        round(100 * long_form.score / index_groups.max_score, 1)::numeric(5, 1) as percent_of_max,
        case
            when long_form.score is not null
                then rank() over (
                    partition by long_form.period_start, long_form.unit_type, long_form.group_code
                    order by long_form.score desc nulls last
                )
        end::integer as rank_in_type,
        count(long_form.score) over (
            partition by long_form.period_start, long_form.unit_type, long_form.group_code
        )::integer as units_scored,
        long_form.units_in_type,
        round(
            avg(long_form.score) over (
                partition by long_form.period_start, long_form.unit_type, long_form.group_code
            ),
            2
        )::numeric(7, 2) as type_average,
        long_form.total_score,
        long_form.total_rank_in_type

    from long_form

    -- left: a group missing from the seed fails the not-null max_score constraint instead of vanishing
    left join index_groups
        on long_form.group_code = index_groups.group_code

)

select * from final
