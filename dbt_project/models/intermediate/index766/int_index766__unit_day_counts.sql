-- Month-to-date counts per unit, month and as-of day: every unit (province, agencies, communes) on every
-- day of every month from the first month scored to the last as-of day, the daily increments summed over
-- the days of the month up to the as-of day. The authority counts (procedure denominators) are per unit.
-- Incremental by month: the months the daily tables rebuilt since this table's last build
-- (macros/index766_incremental.sql).
{% set first_month = index766_first_rebuilt_month(
    ['int_index766__dossier_daily', 'int_index766__procedure_daily', 'int_index766__petition_daily']
) %}
with

units as (

    select * from {{ ref('dim_unit') }}

),

calendar as (

    select * from {{ ref('dim_date') }}

),

dossier_daily as (

    select * from {{ ref('int_index766__dossier_daily') }}
    where period_start >= {{ first_month }}

),

procedure_daily as (

    select * from {{ ref('int_index766__procedure_daily') }}
    where period_start >= {{ first_month }}

),

petition_daily as (

    select * from {{ ref('int_index766__petition_daily') }}
    where period_start >= {{ first_month }}

),

unit_procedures as (

    select * from {{ ref('int_index766__unit_procedures') }}

),

-- the first month scored and the last as-of day: variables, else what the dossiers say
bounds as (

    select
        coalesce(
            {{ "'" ~ var('index766_first_month') ~ "'::date" if var('index766_first_month') else 'null::date' }},
            min(period_start)
        ) as first_month,
        coalesce(
            {{ "'" ~ var('index766_as_of_date') ~ "'::date" if var('index766_as_of_date') else 'null::date' }},
            max(event_date)
        ) as last_day

    from dossier_daily

    where received > 0

),

authority as (

    select
        unit_code,
        count(*) as authority_procedures,
        count(*) filter (where is_online) as online_procedures,
        count(*) filter (where has_fees) as fee_procedures

    from unit_procedures

    group by unit_code

),

spine as (

    select
        units.unit_code,
        calendar.month_start as period_start,
        calendar.date_day as as_of_date

    from units

    cross join calendar

    inner join bounds
        on calendar.date_day between bounds.first_month and bounds.last_day

    where calendar.month_start >= {{ first_month }}

),

daily as (

    select
        spine.unit_code,
        spine.period_start,
        spine.as_of_date,
        coalesce(dossier_daily.received, 0) as received,
        coalesce(dossier_daily.received_online, 0) as received_online,
        coalesce(dossier_daily.received_with_fee, 0) as received_with_fee,
        coalesce(dossier_daily.received_fee_paid_online, 0) as received_fee_paid_online,
        coalesce(dossier_daily.received_digitised, 0) as received_digitised,
        coalesce(dossier_daily.received_data_store, 0) as received_data_store,
        coalesce(dossier_daily.received_population_data, 0) as received_population_data,
        coalesce(dossier_daily.overdue, 0) as overdue,
        coalesce(dossier_daily.complained, 0) as complained,
        coalesce(dossier_daily.finished, 0) as finished,
        coalesce(dossier_daily.finished_digitised, 0) as finished_digitised,
        coalesce(dossier_daily.finished_paper_required, 0) as finished_paper_required,
        coalesce(dossier_daily.finished_paper_e_result, 0) as finished_paper_e_result,
        coalesce(procedure_daily.online_services_used, 0) as online_services_used,
        coalesce(procedure_daily.fee_procedures_paid_online, 0) as fee_procedures_paid_online,
        coalesce(procedure_daily.fee_procedures_with_fee_data, 0) as fee_procedures_with_fee_data,
        coalesce(procedure_daily.citizen_procedures, 0) as citizen_procedures,
        coalesce(procedure_daily.population_data_procedures, 0) as population_data_procedures,
        coalesce(petition_daily.petitions, 0) as petitions,
        coalesce(petition_daily.petitions_overdue, 0) as petitions_overdue,
        coalesce(petition_daily.petitions_unsatisfied, 0) as petitions_unsatisfied

    from spine

    left join dossier_daily
        on
            spine.unit_code = dossier_daily.unit_code
            and spine.period_start = dossier_daily.period_start
            and spine.as_of_date = dossier_daily.event_date

    left join procedure_daily
        on
            spine.unit_code = procedure_daily.unit_code
            and spine.period_start = procedure_daily.period_start
            and spine.as_of_date = procedure_daily.event_date

    left join petition_daily
        on
            spine.unit_code = petition_daily.unit_code
            and spine.period_start = petition_daily.period_start
            and spine.as_of_date = petition_daily.event_date

),

final as (

    select
        daily.unit_code,
        daily.period_start,
        daily.as_of_date,
        {% for column in [
            'received', 'received_online', 'received_with_fee', 'received_fee_paid_online', 'received_digitised',
            'received_data_store', 'received_population_data', 'overdue', 'complained', 'finished',
            'finished_digitised', 'finished_paper_required', 'finished_paper_e_result', 'online_services_used',
            'fee_procedures_paid_online', 'fee_procedures_with_fee_data', 'citizen_procedures',
            'population_data_procedures', 'petitions', 'petitions_overdue', 'petitions_unsatisfied'
        ] %}
            sum(daily.{{ column }}) over month_to_date as {{ column }},
        {% endfor %}
        coalesce(authority.authority_procedures, 0) as authority_procedures,
        coalesce(authority.online_procedures, 0) as online_procedures,
        coalesce(authority.fee_procedures, 0) as fee_procedures,
        now() as built_at

    from daily

    left join authority
        on daily.unit_code = authority.unit_code

    window month_to_date as (
        partition by daily.unit_code, daily.period_start
        order by daily.as_of_date
        rows between unbounded preceding and current row
    )

)

select * from final
