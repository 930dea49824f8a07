-- The one as-of day each month of the service index is compared on: its newest (the month's last day once
-- the data reach it, else the latest as-of day of the month still running).
with

metrics as (

    select * from {{ ref('int_index766__unit_metrics') }}

),

final as (

    select
        period_start,
        max(as_of_date) as as_of_date,
        max(as_of_date) = (period_start + interval '1 month - 1 day')::date as is_final

    from metrics

    group by period_start

)

select * from final
