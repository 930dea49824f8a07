-- Every extract, dbt and validation run in one shape (a view: a failed night shows before dbt runs again).
{{ config(materialized='view') }}

with

extract_runs as (

    select * from {{ source('audit', 'extract_runs') }}

),

dbt_runs as (

    select * from {{ source('audit', 'dbt_runs') }}

),

validation_runs as (

    select * from {{ source('audit', 'validation_runs') }}

),

extracts as (

    select
        'extract' as run_kind,
        run_id::text as run_id,
        source || '/' || entity as subject,
        source as component,
        details ->> 'pipeline_run' as pipeline_run,
        started_at,
        finished_at,
        status,
        window_start,
        window_end,
        pages,
        records_received,
        records_loaded,
        records_quarantined,
        bytes,
        null::integer as items_total,
        null::integer as items_failed,
        error
    from extract_runs

),

dbt as (

    select
        'dbt' as run_kind,
        invocation_id as run_id,
        command as subject,
        'dbt' as component,
        pipeline_run,
        started_at,
        finished_at,
        case when status = 'success' then 'success' else 'failed' end as status,
        null::timestamptz as window_start,
        null::timestamptz as window_end,
        null::integer as pages,
        null::bigint as records_received,
        null::bigint as records_loaded,
        null::bigint as records_quarantined,
        null::bigint as bytes,
        nodes as items_total,
        failures as items_failed,
        results ->> 'error' as error
    from dbt_runs

),

validations as (

    select
        'validation' as run_kind,
        validation_id::text as run_id,
        suite as subject,
        'gx' as component,
        pipeline_run,
        started_at,
        finished_at,
        case when success then 'success' when not success then 'failed' else 'running' end as status,
        null::timestamptz as window_start,
        null::timestamptz as window_end,
        null::integer as pages,
        null::bigint as records_received,
        null::bigint as records_loaded,
        null::bigint as records_quarantined,
        null::bigint as bytes,
        expectations_evaluated as items_total,
        expectations_failed as items_failed,
        results ->> 'error' as error
    from validation_runs

),

unioned as (

    select * from extracts
    union all
    select * from dbt
    union all
    select * from validations

)

select
    run_kind,
    case run_kind when 'extract' then 'Trích xuất' when 'dbt' then 'Biến đổi (dbt)' else 'Kiểm định' end
        as run_kind_label,
    run_id,
    subject,
    component,
    pipeline_run,
    started_at,
    finished_at,
    round(extract(epoch from finished_at - started_at)::numeric, 3)::numeric(12, 3) as duration_seconds,
    status,
    case status when 'success' then 'Thành công' when 'failed' then 'Lỗi' else 'Đang chạy' end as status_label,
    window_start,
    window_end,
    pages,
    records_received,
    records_loaded,
    records_quarantined,
    bytes,
    items_total,
    items_failed,
    left(error, 500) as error
from unioned
