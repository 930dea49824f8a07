-- One row per Great Expectations suite per gate run, with the names of the expectations that failed.
{{ config(materialized='view') }}

with

validation_runs as (

    select * from {{ source('audit', 'validation_runs') }}

),

failed_items as (

    select
        validation_runs.validation_id,
        case
            when jsonb_typeof(validation_runs.results -> 'failed') = 'array'
                then validation_runs.results -> 'failed'
            else '[]'::jsonb
        end as failed
    from validation_runs

),

failed_names as (

    select
        failed_items.validation_id,
        string_agg(item.value ->> 'expectation', '; ' order by item.ordinality) as failed_expectations
    from failed_items
    cross join lateral jsonb_array_elements(failed_items.failed) with ordinality as item (value, ordinality)
    group by failed_items.validation_id

)

select
    validation_runs.validation_id,
    validation_runs.suite,
    validation_runs.layer,
    validation_runs.target,
    validation_runs.pipeline_run,
    validation_runs.started_at,
    validation_runs.finished_at,
    round(
        extract(epoch from validation_runs.finished_at - validation_runs.started_at)::numeric, 3
    )::numeric(12, 3) as duration_seconds,
    validation_runs.success,
    case
        when
            validation_runs.success
            and jsonb_array_length(coalesce(validation_runs.results -> 'warnings', '[]')) > 0
            then 'Đạt, có cảnh báo'
        when validation_runs.success then 'Đạt'
        when not validation_runs.success then 'Không đạt'
        else 'Đang chạy'
    end as result_label,
    validation_runs.expectations_evaluated,
    validation_runs.expectations_failed,
    coalesce(jsonb_array_length(validation_runs.results -> 'warnings'), 0) as expectations_warned,
    failed_names.failed_expectations,
    left(validation_runs.results ->> 'error', 500) as error

from validation_runs

left join failed_names
    on validation_runs.validation_id = failed_names.validation_id
