-- The service index per unit, month, as-of day and sub-indicator (long form), points rounded to two decimals.
with

metrics as (

    select * from {{ ref('int_index766__unit_metrics') }}

),

final as (

    select
        unit_code,
        period_start,
        as_of_date,
        metric_code,
        numerator,
        denominator,
        round(ratio, 6) as ratio,
        round(points, 2) as points,
        max_points,
        group_code,
        source

    from metrics

)

select * from final
