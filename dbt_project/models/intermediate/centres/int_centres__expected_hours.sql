-- One row per service centre and expected snapshot hour: every local hour that starts between the vars
-- centre_first_hour and centre_last_hour, on every day, from the first to the last hour in which any centre
-- reported (the data window; hours after the newest snapshot are not expected yet). is_online says whether
-- the centre sent a snapshot for the hour, so an hour no centre reported is a gap for every centre.
with

centres as (

    select * from {{ ref('stg_centres__centres') }}

),

hourly as (

    select * from {{ ref('fct_centre_hourly') }}

),

bounds as (

    select
        min(hour_start) as first_hour,
        max(hour_start) as last_hour

    from hourly

    where is_online

),

opening_hours as (

    select
        window_days.local_day::date as local_date,
        hours_of_day.local_hour,
        (window_days.local_day + make_interval(hours => hours_of_day.local_hour)) at time zone 'Asia/Ho_Chi_Minh'
            as hour_start

    from bounds

    cross join
        generate_series(
            ({{ local_date('bounds.first_hour') }})::timestamp,
            ({{ local_date('bounds.last_hour') }})::timestamp,
            interval '1 day'
        ) as window_days (local_day)

    cross join generate_series(
        {{ var('centre_first_hour') }}, {{ var('centre_last_hour') }}
    ) as hours_of_day (local_hour)

),

expected_hours as (

    select opening_hours.*

    from opening_hours

    inner join bounds
        on opening_hours.hour_start between bounds.first_hour and bounds.last_hour

),

final as (

    select
        centres.centre_code,
        expected_hours.local_date,
        expected_hours.local_hour,
        expected_hours.hour_start,
        coalesce(hourly.is_online, false) as is_online,
        hourly.cameras_online,
        hourly.counters_open,
        hourly.tickets_issued,
        hourly.mean_wait_minutes,
        hourly.max_wait_minutes

    from centres

    cross join expected_hours

    left join hourly
        on
            centres.centre_code = hourly.centre_code
            and expected_hours.hour_start = hourly.hour_start

)

select * from final
