-- One row per public administration service centre and local day of the data window: camera connectivity,
-- offline gaps, counters, tickets and waiting times, all over the day's expected snapshot hours
-- (int_centres__expected_hours).
with

expected_hours as (

    select * from {{ ref('int_centres__expected_hours') }}

),

centres as (

    select * from {{ ref('stg_centres__centres') }}

),

units as (

    select * from {{ ref('dim_unit') }}

),

calendar as (

    select * from {{ ref('dim_date') }}

),

-- Consecutive offline hours of a centre's day share a run key (gaps and islands over the hour of day).
offline_hours as (

    select
        centre_code,
        local_date,
        local_hour,
        local_hour - row_number() over (partition by centre_code, local_date order by local_hour) as run_key

    from expected_hours

    where not is_online

),

gaps as (

    select
        centre_code,
        local_date,
        min(local_hour) as first_hour,
        max(local_hour) + 1 as end_hour,
        count(*) as gap_hours

    from offline_hours

    group by centre_code, local_date, run_key

),

gaps_per_day as (

    select
        centre_code,
        local_date,
        count(*) as gap_count,
        max(gap_hours) as longest_gap_hours,
        string_agg(
            lpad(first_hour::text, 2, '0') || ':00–' || lpad(end_hour::text, 2, '0') || ':00', ', '
            order by first_hour
        ) as offline_periods

    from gaps

    group by centre_code, local_date

),

last_hours as (

    select
        local_date,
        max(local_hour) as last_hour

    from expected_hours

    group by local_date

),

-- Waits and counters count the hours in which tickets were issued (a closed centre reports zeros).
daily as (

    select
        expected_hours.centre_code,
        expected_hours.local_date,
        count(*) as expected_hours,
        count(*) filter (where expected_hours.is_online) as online_hours,
        count(*) filter (where expected_hours.tickets_issued > 0) as serving_hours,
        max(expected_hours.cameras_online) filter (
            where expected_hours.local_hour = last_hours.last_hour
        ) as cameras_online_latest,
        sum(coalesce(expected_hours.cameras_online, 0)) as camera_hours_online,
        max(expected_hours.counters_open) as counters_open_max,
        avg(expected_hours.counters_open) filter (where expected_hours.tickets_issued > 0) as counters_open_mean,
        sum(expected_hours.tickets_issued) as tickets_issued,
        sum(expected_hours.mean_wait_minutes * expected_hours.tickets_issued)
        / nullif(sum(expected_hours.tickets_issued) filter (where expected_hours.mean_wait_minutes is not null), 0)
            as mean_wait_minutes,
        percentile_cont(0.9) within group (order by expected_hours.mean_wait_minutes) filter (
            where expected_hours.tickets_issued > 0
        ) as p90_hourly_mean_wait_minutes,
        max(expected_hours.max_wait_minutes) filter (where expected_hours.tickets_issued > 0) as max_wait_minutes

    from expected_hours

    inner join last_hours
        on expected_hours.local_date = last_hours.local_date

    group by expected_hours.centre_code, expected_hours.local_date

),

final as (

    select
        daily.local_date,
        to_char(daily.local_date, 'DD/MM/YYYY') as date_label,
        calendar.is_working_day,
        daily.centre_code,
        centres.centre_name,
        centres.unit_code,
        units.unit_name,
        units.unit_type,
        units.statistics_code,
        centres.cameras,
        daily.cameras_online_latest,
        coalesce(daily.cameras_online_latest > 0, false) as is_camera_connected,
        round(daily.camera_hours_online::numeric / nullif(centres.cameras * daily.expected_hours, 0), 4)
            as camera_online_share,
        daily.expected_hours::integer as expected_hours,
        daily.online_hours::integer as online_hours,
        (daily.expected_hours - daily.online_hours)::integer as offline_hours,
        round(daily.online_hours::numeric / nullif(daily.expected_hours, 0), 4) as online_share,
        coalesce(gaps_per_day.gap_count, 0)::integer as gap_count,
        coalesce(gaps_per_day.longest_gap_hours, 0)::integer as longest_gap_hours,
        gaps_per_day.offline_periods,
        centres.counters,
        daily.counters_open_max,
        round(daily.counters_open_mean, 2) as counters_open_mean,
        daily.serving_hours::integer as serving_hours,
        daily.tickets_issued::bigint as tickets_issued,
        round(daily.mean_wait_minutes, 2) as mean_wait_minutes,
        round(daily.p90_hourly_mean_wait_minutes::numeric, 2) as p90_hourly_mean_wait_minutes,
        daily.max_wait_minutes

    from daily

    inner join centres
        on daily.centre_code = centres.centre_code

    left join units
        on centres.unit_code = units.unit_code

    left join calendar
        on daily.local_date = calendar.date_day

    left join gaps_per_day
        on
            daily.centre_code = gaps_per_day.centre_code
            and daily.local_date = gaps_per_day.local_date

)

select * from final
