-- Dossier counts per unit, period (month) and event day: the daily increments the index's dossier-based
-- indicators add up over the days of a month. Received-based counts fall on the receiving day; a dossier
-- turning overdue (fct_dossier.overdue_from_date) or drawing a complaint falls on that day, in the month it
-- was received, when inside that month; finished-based counts fall on the finishing day. Province rows
-- (the home province's code) are the sums over its units. Incremental by month (macros/index766_incremental.sql):
-- a night recomputes the months from the first one its changes touch.
{% set first_month = index766_first_changed_month() %}
with

dossiers as (

    select * from {{ ref('fct_dossier') }}

),

procedures as (

    select * from {{ ref('dim_procedure') }}

),

petitions as (

    select * from {{ ref('fct_feedback') }}

),

ratings as (

    select * from {{ ref('fct_rating') }}

),

-- the first day a dossier drew a petition or a "not satisfied" rating
complaints as (

    select
        dossier_code,
        min(complained_date) as complained_date

    from (
        select
            dossier_code,
            received_date as complained_date
        from petitions
        where dossier_code is not null
        union all
        select
            dossier_code,
            rated_date as complained_date
        from ratings
        where is_not_satisfied and dossier_code is not null
    ) as complaint_events

    group by dossier_code

),

scored as (

    select
        dossiers.unit_code,
        dossiers.received_month,
        dossiers.received_date,
        dossiers.finished_month,
        dossiers.finished_date,
        -- (greatest() skips nulls: guard them, a null means never)
        case
            when dossiers.overdue_from_date is not null
                then greatest(dossiers.overdue_from_date, dossiers.received_date)
        end as overdue_from_date,
        case
            when complaints.complained_date is not null
                then greatest(complaints.complained_date, dossiers.received_date)
        end as complained_date,
        dossiers.is_online_submission,
        dossiers.has_fee,
        dossiers.is_paid_online,
        dossiers.has_submitted_file,
        dossiers.has_digitised_document,
        dossiers.has_national_data_reuse,
        dossiers.has_electronic_result,
        dossiers.vneid_verified,
        coalesce(procedures.requires_paper_result, false) as requires_paper_result

    from dossiers

    left join procedures
        on dossiers.procedure_code = procedures.procedure_code

    left join complaints
        on dossiers.dossier_code = complaints.dossier_code

    where
        dossiers.received_at is not null
        and not dossiers.is_withdrawn
        -- a month counts dossiers received or finished in it
        and (dossiers.received_month >= {{ first_month }} or dossiers.finished_month >= {{ first_month }})

),

by_received as (

    select
        unit_code,
        received_month as period_start,
        received_date as event_date,
        count(*) as received,
        count(*) filter (where is_online_submission) as received_online,
        count(*) filter (where has_fee) as received_with_fee,
        count(*) filter (where has_fee and is_paid_online) as received_fee_paid_online,
        count(*) filter (where has_digitised_document) as received_digitised,
        count(*) filter (where has_national_data_reuse) as received_data_store,
        count(*) filter (where vneid_verified or has_national_data_reuse) as received_population_data,
        0 as overdue,
        0 as complained,
        0 as finished,
        0 as finished_digitised,
        0 as finished_paper_required,
        0 as finished_paper_e_result

    from scored

    group by unit_code, received_month, received_date

),

by_overdue as (

    select
        unit_code,
        received_month as period_start,
        overdue_from_date as event_date,
        0 as received,
        0 as received_online,
        0 as received_with_fee,
        0 as received_fee_paid_online,
        0 as received_digitised,
        0 as received_data_store,
        0 as received_population_data,
        count(*) as overdue,
        0 as complained,
        0 as finished,
        0 as finished_digitised,
        0 as finished_paper_required,
        0 as finished_paper_e_result

    from scored

    where overdue_from_date < received_month + interval '1 month'

    group by unit_code, received_month, overdue_from_date

),

by_complaint as (

    select
        unit_code,
        received_month as period_start,
        complained_date as event_date,
        0 as received,
        0 as received_online,
        0 as received_with_fee,
        0 as received_fee_paid_online,
        0 as received_digitised,
        0 as received_data_store,
        0 as received_population_data,
        0 as overdue,
        count(*) as complained,
        0 as finished,
        0 as finished_digitised,
        0 as finished_paper_required,
        0 as finished_paper_e_result

    from scored

    where complained_date < received_month + interval '1 month'

    group by unit_code, received_month, complained_date

),

by_finished as (

    select
        unit_code,
        finished_month as period_start,
        finished_date as event_date,
        0 as received,
        0 as received_online,
        0 as received_with_fee,
        0 as received_fee_paid_online,
        0 as received_digitised,
        0 as received_data_store,
        0 as received_population_data,
        0 as overdue,
        0 as complained,
        count(*) as finished,
        count(*) filter (
            where has_submitted_file and (not requires_paper_result or has_electronic_result)
        ) as finished_digitised,
        count(*) filter (where requires_paper_result) as finished_paper_required,
        count(*) filter (where requires_paper_result and has_electronic_result) as finished_paper_e_result

    from scored

    where finished_date is not null

    group by unit_code, finished_month, finished_date

),

events as (

    select * from by_received
    union all
    select * from by_overdue
    union all
    select * from by_complaint
    union all
    select * from by_finished

),

unit_days as (

    select
        unit_code,
        period_start,
        event_date,
        sum(received) as received,
        sum(received_online) as received_online,
        sum(received_with_fee) as received_with_fee,
        sum(received_fee_paid_online) as received_fee_paid_online,
        sum(received_digitised) as received_digitised,
        sum(received_data_store) as received_data_store,
        sum(received_population_data) as received_population_data,
        sum(overdue) as overdue,
        sum(complained) as complained,
        sum(finished) as finished,
        sum(finished_digitised) as finished_digitised,
        sum(finished_paper_required) as finished_paper_required,
        sum(finished_paper_e_result) as finished_paper_e_result

    from events

    where unit_code != '{{ var("home_province_dvcqg_code") }}'

    group by unit_code, period_start, event_date

),

province_days as (

    select
        '{{ var("home_province_dvcqg_code") }}' as unit_code,
        period_start,
        event_date,
        sum(received) as received,
        sum(received_online) as received_online,
        sum(received_with_fee) as received_with_fee,
        sum(received_fee_paid_online) as received_fee_paid_online,
        sum(received_digitised) as received_digitised,
        sum(received_data_store) as received_data_store,
        sum(received_population_data) as received_population_data,
        sum(overdue) as overdue,
        sum(complained) as complained,
        sum(finished) as finished,
        sum(finished_digitised) as finished_digitised,
        sum(finished_paper_required) as finished_paper_required,
        sum(finished_paper_e_result) as finished_paper_e_result

    from events

    group by period_start, event_date

),

final as (

    select * from unit_days
    union all
    select * from province_days

)

select
    *,
    now() as built_at

from final
where period_start >= {{ first_month }}
