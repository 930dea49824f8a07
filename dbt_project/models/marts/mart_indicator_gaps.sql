{{ config(indexes=[{'columns': ['period_label']}]) }}  -- the dashboards read one month (the newest by default)

-- Where each unit loses points: one row per unit, month and scored sub-indicator, the biggest loss first,
-- as of the month's last day (the final figure) or, for the month still running, the newest as-of day.
with

metrics as (

    select * from {{ ref('mart_unit_index_766_metrics') }}

),

units as (

    select * from {{ ref('dim_unit') }}

),

labels as (

    select * from {{ ref('index766_indicator_labels') }}

),

index_groups as (

    select * from {{ ref('index766_groups') }}

),

shown_days as (

    select * from {{ ref('int_index766__shown_days') }}

),

gaps as (

    select
        metrics.unit_code,
        units.unit_name,
        units.unit_type,
        metrics.period_start,
        metrics.as_of_date,
        shown_days.is_final,
        metrics.metric_code,
        labels.indicator_name_vi as indicator_name,
        labels.indicator_order,
        metrics.group_code,
        index_groups.group_code || ' · ' || index_groups.group_name_vi as group_name,
        metrics.source,
        metrics.numerator,
        metrics.denominator,
        metrics.ratio,
        metrics.points,
        metrics.max_points,
        -- not applicable (null points) loses nothing: the rule leaves the sub-indicator out
        metrics.max_points - metrics.points as points_lost

    from metrics

    inner join shown_days
        on
            metrics.period_start = shown_days.period_start
            and metrics.as_of_date = shown_days.as_of_date

    inner join units
        on metrics.unit_code = units.unit_code

    left join labels
        on metrics.metric_code = labels.metric_code

    left join index_groups
        on metrics.group_code = index_groups.group_code

),

final as (

    select
        unit_code,
        unit_name,
        unit_type,
        period_start,
        to_char(period_start, 'YYYY-MM') as period_label,
        as_of_date,
        is_final,
        metric_code,
        indicator_name,
        indicator_order,
        group_code,
        group_name,
        source,
        numerator,
        denominator,
        ratio,
        points,
        max_points,
        points_lost,
        case
            when points_lost is not null
                then rank() over (
                    partition by unit_code, period_start order by points_lost desc nulls last
                )
        end::integer as gap_rank,
        row_number() over (
            partition by unit_code, period_start
            order by points_lost desc nulls last, indicator_order asc, metric_code asc
        )::integer as gap_order

    from gaps

)

select * from final
