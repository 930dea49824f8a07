-- The service index per unit, month, as-of day and sub-indicator (long form), points rounded to two decimals.
-- Incremental by month: the months int_index766__unit_metrics rebuilt since this table's last build.
{% set first_month = index766_first_rebuilt_month(['int_index766__unit_metrics']) %}
with

metrics as (

    select * from {{ ref('int_index766__unit_metrics') }}
    where period_start >= {{ first_month }}

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
        max_points::numeric as max_points,  -- the contract type (the seed gives numeric(7, 2))
        group_code,
        source,
        now() as built_at

    from metrics

)

select * from final
