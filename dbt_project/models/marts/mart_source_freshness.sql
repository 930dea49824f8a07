-- Per source and entity: the last successful extract, its window and counts, the hours since then (at query
-- time: a view, so the board turns red when the pipeline stops), the watermark and a green/yellow/red status.
{{ config(materialized='view') }}

with

extract_runs as (

    select * from {{ source('audit', 'extract_runs') }}

),

watermarks as (

    select * from {{ source('audit', 'watermarks') }}

),

thresholds as (

    select * from {{ ref('source_freshness_thresholds') }}

),

latest_success as (

    select distinct on (source, entity)
        source,
        entity,
        run_id,
        window_start,
        window_end,
        finished_at,
        records_received,
        records_loaded,
        records_quarantined
    from extract_runs
    where status = 'success'
    order by source asc, entity asc, finished_at desc, run_id desc

),

latest_run as (

    select distinct on (source, entity)
        source,
        entity,
        run_id,
        status,
        started_at,
        error
    from extract_runs
    order by source asc, entity asc, started_at desc, run_id desc

),

measured as (

    select
        latest_run.source,
        latest_run.entity,
        coalesce(thresholds.source_name, latest_run.source) as source_name,
        latest_success.run_id as last_success_run_id,
        latest_success.finished_at as last_success_at,
        latest_success.window_start as last_window_start,
        latest_success.window_end as last_window_end,
        latest_success.records_received as last_records_received,
        latest_success.records_loaded as last_records_loaded,
        latest_success.records_quarantined as last_records_quarantined,
        round((extract(epoch from now() - latest_success.finished_at) / 3600)::numeric, 1)::numeric(10, 1)
            as hours_since_success,
        watermarks.watermark,
        latest_run.status as last_run_status,
        latest_run.started_at as last_run_at,
        latest_run.error as last_run_error,
        coalesce(thresholds.yellow_after_hours, {{ var('freshness_yellow_after_hours', 36) }})::integer
            as yellow_after_hours,
        coalesce(thresholds.red_after_hours, {{ var('freshness_red_after_hours', 168) }})::integer
            as red_after_hours

    from latest_run

    left join latest_success
        on
            latest_run.source = latest_success.source
            and latest_run.entity = latest_success.entity

    left join watermarks
        on
            latest_run.source = watermarks.source
            and latest_run.entity = watermarks.entity

    left join thresholds
        on latest_run.source = thresholds.source

),

final as (

    select
        *,
        case
            when last_success_at is null or hours_since_success > red_after_hours then 2
            when hours_since_success > yellow_after_hours or last_run_status = 'failed' then 1
            else 0
        end as status_level
    from measured

)

select
    source,
    entity,
    source_name,
    last_success_run_id,
    last_success_at,
    last_window_start,
    last_window_end,
    last_records_received,
    last_records_loaded,
    last_records_quarantined,
    hours_since_success,
    watermark,
    last_run_status,
    last_run_at,
    last_run_error,
    yellow_after_hours,
    red_after_hours,
    status_level,
    (array['green', 'yellow', 'red'])[status_level + 1] as freshness_status,
    (array['Đúng hạn', 'Chậm', 'Quá hạn'])[status_level + 1] as freshness_label
from final
