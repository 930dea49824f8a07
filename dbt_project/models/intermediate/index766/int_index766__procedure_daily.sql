-- Procedures of a unit's authority counted once per month, on the first day of the month a dossier of
-- theirs met the condition: the daily increments of the distinct-procedure indicators (ONLINE_SERVICE_USED,
-- ONLINE_PAYMENT_FORMALITY, FEE_FORMALITY_INTEGRATED, CITIZEN_DATA_CONNECTED_FORMALITY). Province rows
-- (the home province's code) take the first day over all its units. Incremental by month
-- (macros/index766_incremental.sql).
{% set first_month = index766_first_changed_month() %}
with

dossiers as (

    select * from {{ ref('fct_dossier') }}

),

unit_procedures as (

    select * from {{ ref('int_index766__unit_procedures') }}

),

unit_firsts as (

    select
        unit_code,
        received_month as period_start,
        procedure_code,
        min(received_date) filter (where is_online_submission) as first_online_date,
        min(received_date) filter (where has_fee and is_paid_online) as first_paid_online_date,
        min(received_date) filter (where has_fee) as first_fee_data_date,
        min(received_date) filter (where applicant_type = 1) as first_citizen_date,
        min(received_date) filter (
            where applicant_type = 1 and (vneid_verified or has_national_data_reuse)
        ) as first_population_data_date

    from dossiers

    where
        received_at is not null
        and not is_withdrawn
        and procedure_code is not null
        and received_month >= {{ first_month }}

    group by unit_code, received_month, procedure_code

),

province_firsts as (

    select
        '{{ var("home_province_dvcqg_code") }}' as unit_code,
        period_start,
        procedure_code,
        min(first_online_date) as first_online_date,
        min(first_paid_online_date) as first_paid_online_date,
        min(first_fee_data_date) as first_fee_data_date,
        min(first_citizen_date) as first_citizen_date,
        min(first_population_data_date) as first_population_data_date

    from unit_firsts

    group by period_start, procedure_code

),

firsts as (

    select * from unit_firsts
    where unit_code != '{{ var("home_province_dvcqg_code") }}'
    union all
    select * from province_firsts

),

events as (

    select
        firsts.unit_code,
        firsts.period_start,
        event_row.event_date,
        event_row.online_service_used,
        event_row.fee_procedure_paid_online,
        event_row.fee_procedure_with_fee_data,
        event_row.citizen_procedure,
        event_row.population_data_procedure

    from firsts

    left join unit_procedures
        on
            firsts.unit_code = unit_procedures.unit_code
            and firsts.procedure_code = unit_procedures.procedure_code

    cross join
        lateral (
            values
            (
                case when unit_procedures.is_online then firsts.first_online_date end,
                1, 0, 0, 0, 0
            ),
            (
                case when unit_procedures.has_fees then firsts.first_paid_online_date end,
                0, 1, 0, 0, 0
            ),
            (
                case when unit_procedures.has_fees then firsts.first_fee_data_date end,
                0, 0, 1, 0, 0
            ),
            (firsts.first_citizen_date, 0, 0, 0, 1, 0),
            (firsts.first_population_data_date, 0, 0, 0, 0, 1)
        )
            as event_row (
                event_date,
                online_service_used,
                fee_procedure_paid_online,
                fee_procedure_with_fee_data,
                citizen_procedure,
                population_data_procedure
            )

    where event_row.event_date is not null

),

final as (

    select
        unit_code,
        period_start,
        event_date,
        sum(online_service_used) as online_services_used,
        sum(fee_procedure_paid_online) as fee_procedures_paid_online,
        sum(fee_procedure_with_fee_data) as fee_procedures_with_fee_data,
        sum(citizen_procedure) as citizen_procedures,
        sum(population_data_procedure) as population_data_procedures,
        now() as built_at

    from events

    group by unit_code, period_start, event_date

)

select * from final
