-- Quarantined records per local day x source x entity x reason, with one record key as a sample. The record
-- itself never leaves quarantine (it may hold what a person sent): only the key and the reason do.
{{ config(materialized='view') }}

with

records as (

    select * from {{ source('quarantine', 'records') }}

),

dated as (

    select
        (quarantined_at at time zone 'Asia/Ho_Chi_Minh')::date as quarantine_date,
        source,
        entity,
        reason,
        run_id,
        record_key,
        quarantined_at
    from records

)

select
    quarantine_date,
    source,
    entity,
    reason,
    count(*)::bigint as record_count,
    count(distinct run_id)::integer as run_count,
    min(record_key) as sample_record_key,
    min(quarantined_at) as first_quarantined_at,
    max(quarantined_at) as last_quarantined_at
from dated
group by quarantine_date, source, entity, reason
