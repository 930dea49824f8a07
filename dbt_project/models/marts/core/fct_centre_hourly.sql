-- One row per service centre and monitored hour. An hour is monitored when at least one centre reported
-- in it; a centre without a snapshot in a monitored hour was offline (a gap is data, not a missing row).
with

centres as (

    select * from {{ ref('stg_centres__centres') }}

),

snapshots as (

    select * from {{ ref('stg_centres__snapshots') }}

),

hours as (

    select distinct date_trunc('hour', observed_at) as hour_start
    from snapshots

),

observed as (

    select distinct on (centre_code, date_trunc('hour', observed_at))
        centre_code,
        date_trunc('hour', observed_at) as hour_start,
        cameras_online,
        counters_open,
        tickets_issued,
        mean_wait_minutes,
        max_wait_minutes

    from snapshots

    order by centre_code asc, date_trunc('hour', observed_at) asc, observed_at desc

),

final as (

    select
        centres.centre_code,
        centres.unit_code,
        hours.hour_start,
        {{ local_date('hours.hour_start') }} as local_date,
        extract(hour from hours.hour_start at time zone 'Asia/Ho_Chi_Minh')::integer as local_hour,
        observed.centre_code is not null as is_online,
        centres.cameras,
        centres.counters,
        observed.cameras_online,
        observed.counters_open,
        observed.tickets_issued,
        observed.mean_wait_minutes,
        observed.max_wait_minutes

    from centres

    cross join hours

    left join observed
        on
            centres.centre_code = observed.centre_code
            and hours.hour_start = observed.hour_start

)

select * from final
