-- The six group scores of every province per period, long form, each against its maximum, the national
-- average of the group and the province's rank on the group.
with

ranking as (

    select * from {{ ref('mart_province_ranking') }}

),

index_groups as (

    select * from {{ ref('index766_groups') }}

),

-- one row per group; group_order is the column order of DVCQG's national table
long_form as (

    select
        ranking.period_type,
        ranking.period_start,
        ranking.period_label,
        ranking.department_code,
        ranking.province_name,
        ranking.is_home_province,
        scores.group_order,
        scores.group_code,
        scores.score

    from ranking

    cross join lateral {{ index766_group_rows('ranking') }} as scores (group_order, group_code, score)

),

final as (

    select
        long_form.period_type,
        long_form.period_start,
        long_form.period_label,
        long_form.department_code,
        long_form.province_name,
        long_form.is_home_province,
        long_form.group_order::integer as group_order,
        long_form.group_code,
        index_groups.group_code || ' · ' || index_groups.group_name_vi as group_name,
        index_groups.max_score::numeric(7, 2) as max_score,
        long_form.score::numeric(7, 2) as score,
        round(100 * long_form.score / index_groups.max_score, 1)::numeric(5, 1) as percent_of_max,
        round(
            avg(long_form.score) over (
                partition by long_form.period_type, long_form.period_start, long_form.group_code
            ),
            2
        )::numeric(7, 2) as national_average,
        case
            when long_form.score is not null
                then rank() over (
                    partition by long_form.period_type, long_form.period_start, long_form.group_code
                    order by long_form.score desc nulls last
                )
        end::integer as national_rank,
        count(long_form.score) over (
            partition by long_form.period_type, long_form.period_start, long_form.group_code
        )::integer as provinces_scored

    from long_form

    -- left: a group missing from the seed fails the not-null max_score constraint instead of vanishing
    left join index_groups
        on long_form.group_code = index_groups.group_code

)

select * from final
