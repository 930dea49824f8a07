{{
    config(
        materialized='incremental',
        unique_key='dossier_code',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        indexes=[{'columns': ['loaded_at']}]
    )
}}

-- One row per dossier: its newest version (by updated_at), with the dates, supplements, fees and
-- digitisation flags the service index needs, and its on-time verdict. Incremental: a build reads only the
-- dossiers with a raw version loaded since the newest loaded_at already here (less fct_dossier_lookback),
-- and takes their newest version among all their versions. No personal data (applicant_hash at most).
with

-- the dossiers to (re)build on an incremental run: those with a version loaded since the newest loaded_at
-- already here, less the look-back (a full build takes all). Their codes are read before the build (the
-- index on fct_dossier.loaded_at gives the cut-off, the index on raw.dossiers.loaded_at the rows) and
-- written into the query as one array constant: PostgreSQL then knows how many there are (a subquery's
-- array would be planned as ten, and a night of tens of thousands of dossiers as nested loops), pushes the
-- filter down through the staging views to raw.dossiers' primary key, and hashes it where it filters.
-- Past var fct_dossier_max_listed changed rows (a large back-fill) the run reads every version instead.
{% if is_incremental() %}
    {% set cutoff = fct_dossier_cutoff() %}
    {% set changed_query %}
        select count(*), coalesce(array_agg(distinct dossier_code)::text, '{}')
        from (
            select dossier_code from {{ ref('stg_igate__dossiers') }}
            where loaded_at > '{{ cutoff }}'::timestamptz
            limit {{ var("fct_dossier_max_listed") }} + 1
        ) as changed
    {% endset %}
    {% set changed = run_query(changed_query).rows[0] if cutoff is not none else [0, '{}'] %}
    {% if cutoff is none or changed[0] > var("fct_dossier_max_listed") %}
        {% set changed_only = '' %}  {# an empty fact or a large back-fill: every dossier #}
    {% else %}
        {% set changed_only = "where dossier_code = any('" ~ changed[1] | replace("'", "''") ~ "'::text[])" %}
    {% endif %}
{% else %}
    {% set changed_only = '' %}
{% endif %}

-- every version of those dossiers (all of them on a full build)
dossier_versions as (

    select * from {{ ref('stg_igate__dossiers') }}
    {{ changed_only }}

),

supplements as (

    select * from {{ ref('stg_igate__dossier_supplements') }}
    {{ changed_only }}

),

fees as (

    select * from {{ ref('stg_igate__dossier_fees') }}
    {{ changed_only }}

),

documents as (

    select * from {{ ref('stg_igate__dossier_documents') }}
    {{ changed_only }}

),

versions as (

    select
        dossier_versions.*,
        max(dossier_versions.loaded_at) over (partition by dossier_versions.dossier_code) as last_loaded_at,
        row_number() over (
            partition by dossier_versions.dossier_code order by dossier_versions.updated_at desc
        ) as version_rank

    from dossier_versions

),

latest as (

    select * from versions
    where version_rank = 1

),

-- supplements of the newest version, in the order they were requested
latest_supplements as (

    select
        supplements.dossier_code,
        supplements.requested_at,
        supplements.supplied_at,
        supplements.previous_due_at,
        latest.finished_at,
        row_number() over (
            partition by supplements.dossier_code
            order by supplements.requested_at asc nulls last, supplements.supplement_no asc
        ) as request_no

    from supplements

    inner join latest
        on
            supplements.dossier_code = latest.dossier_code
            and supplements.updated_at = latest.updated_at

),

-- waiting for the applicant: from the request to the supplement's receipt, or to the end of processing
-- when it never came; an open request (not supplied, not finished) has no end yet
supplement_summary as (

    select
        dossier_code,
        min(requested_at) filter (where request_no = 1) as first_requested_at,
        min(coalesce(supplied_at, finished_at)) filter (where request_no = 1) as first_wait_ended_at,
        min(previous_due_at) filter (where request_no = 1) as first_previous_due_at,
        min(requested_at) filter (where request_no = 2) as second_requested_at,
        coalesce(
            sum(coalesce(supplied_at, finished_at) - requested_at)
            filter (where coalesce(supplied_at, finished_at) > requested_at),
            interval '0'
        ) as waiting,
        bool_or(supplied_at is null and finished_at is null) as has_open_request

    from latest_supplements

    group by dossier_code

),

fee_summary as (

    select
        fees.dossier_code,
        coalesce(sum(fees.amount_vnd), 0) as fee_total_vnd

    from fees

    inner join latest
        on
            fees.dossier_code = latest.dossier_code
            and fees.updated_at = latest.updated_at

    group by fees.dossier_code

),

document_summary as (

    select
        documents.dossier_code,
        count(*) filter (where documents.document_kind = 'submitted') as submitted_document_count,
        coalesce(bool_or(documents.file_id is not null), false) as has_submitted_file,
        coalesce(bool_or(documents.is_digitised), false) as has_digitised_document,
        coalesce(bool_or(documents.is_from_national_repository), false) as has_national_data_reuse,
        coalesce(bool_or(documents.has_result_file), false) as has_electronic_result

    from documents

    inner join latest
        on
            documents.dossier_code = latest.dossier_code
            and documents.updated_at = latest.updated_at

    group by documents.dossier_code

),

joined as (

    select
        latest.*,
        -- the source moves NgayHenTra on by each supplement's waiting (NgayHenTraMoi); the index judges the
        -- finish less the waiting against the due date before any supplement (NgayHenTraTruoc of the first)
        coalesce(supplement_summary.first_previous_due_at, latest.due_at) as original_due_at,
        supplement_summary.first_requested_at,
        supplement_summary.first_wait_ended_at,
        supplement_summary.second_requested_at,
        coalesce(supplement_summary.waiting, interval '0') as waiting,
        coalesce(supplement_summary.has_open_request, false) as has_open_supplement_request,
        coalesce(fee_summary.fee_total_vnd, 0) as fee_total_vnd,
        coalesce(document_summary.submitted_document_count, 0) as submitted_document_count,
        coalesce(document_summary.has_submitted_file, false) as has_submitted_file,
        coalesce(document_summary.has_digitised_document, false) as has_digitised_document,
        coalesce(document_summary.has_national_data_reuse, false) as has_national_data_reuse,
        coalesce(document_summary.has_electronic_result, false) as has_electronic_result

    from latest

    left join supplement_summary
        on latest.dossier_code = supplement_summary.dossier_code

    left join fee_summary
        on latest.dossier_code = fee_summary.dossier_code

    left join document_summary
        on latest.dossier_code = document_summary.dossier_code

),

-- overdue_at: the instant an unfinished dossier becomes overdue. The clock stops while the applicant is
-- asked for a supplement (the first one; a second request makes the dossier overdue anyway): due + that
-- waiting; never while a request is still open; at the due date when the request came after it.
timed as (

    select
        *,
        case
            when original_due_at is null then null
            when first_requested_at is null or first_requested_at >= original_due_at then original_due_at
            when first_wait_ended_at is null then null
            else original_due_at + (first_wait_ended_at - first_requested_at)
        end as overdue_at,
        case
            when finished_at is null or original_due_at is null then null
            else supplement_count <= 1 and finished_at - waiting <= original_due_at
        end as is_on_time

    from joined

),

final as (

    select
        dossier_code,
        updated_at,
        unit_code,
        unit_code_as_sent,
        procedure_code,
        field_code,
        channel,
        coalesce(channel = 2, false) as is_online_submission,
        applicant_type,
        applicant_hash,
        status,
        coalesce(status = 7, false) as is_withdrawn,
        submitted_at,
        received_at,
        due_at,
        original_due_at,
        finished_at,
        returned_at,
        {{ local_date('received_at') }} as received_date,
        {{ month_start(local_date('received_at')) }} as received_month,
        {{ local_date('due_at') }} as due_date,
        {{ local_date('finished_at') }} as finished_date,
        {{ month_start(local_date('finished_at')) }} as finished_month,
        {{ local_date('returned_at') }} as returned_date,
        supplement_count,
        first_requested_at as first_supplement_requested_at,
        second_requested_at as second_supplement_requested_at,
        round((extract(epoch from waiting) / 3600)::numeric, 2)::numeric(12, 2) as supplement_waiting_hours,
        has_open_supplement_request,
        finished_at is not null as is_finished,
        is_on_time,
        overdue_at,
        -- the first as-of day on which the dossier counts as overdue (null: never). An open dossier is judged
        -- at the end of the as-of day against its due date by date (overdue from the day after overdue_at's
        -- day); a finished one by its verdict, from its finishing day; a second supplement request makes it
        -- overdue from that request's day.
        case
            when received_at is null then null
            when is_on_time then null
            when original_due_at is null then {{ local_date('second_requested_at') }}
            else least(
                {{ local_date('overdue_at') }} + 1,
                case when finished_at is not null then {{ local_date('finished_at') }} end,
                {{ local_date('second_requested_at') }}
            )
        end as overdue_from_date,
        fee_count,
        fee_total_vnd::numeric(18, 2) as fee_total_vnd,
        fee_total_vnd > 0 as has_fee,
        online_payment,
        coalesce(online_payment in (1, 2), false) as is_paid_online,
        submitted_document_count,
        has_submitted_file,
        has_digitised_document,
        has_national_data_reuse,
        has_electronic_result,
        coalesce(vneid_verified, false) as vneid_verified,
        run_id,
        last_loaded_at as loaded_at

    from timed

)

select * from final
