-- The service index's sub-indicators per unit, month and as-of day, before rounding: numerator,
-- denominator, ratio and points of every scored metric of the seed index766_scoring_rules. 'computed'
-- metrics come from the month-to-date counts; 'official' ones are DVCQG's published figures for the month
-- (the newest month published at or before it when the month has none yet). Incremental by month: the months
-- the counts rebuilt since this table's last build, and from the first month of DVCQG figures loaded since
-- (they carry into later months; macros/index766_incremental.sql).
{% set first_month = index766_first_rebuilt_month(
    ['int_index766__unit_day_counts'], loaded={'stg_dvcqg__group_metrics': 'period_start'}
) %}
with

counts as (

    select * from {{ ref('int_index766__unit_day_counts') }}
    where period_start >= {{ first_month }}

),

rules as (

    select * from {{ ref('index766_scoring_rules') }}

),

group_metrics as (

    select * from {{ ref('stg_dvcqg__group_metrics') }}

),

provinces as (

    select * from {{ ref('provinces') }}

),

home_province as (

    select dvcqg_rootdepartmentid as root_department_id
    from provinces
    where dvcqg_departmentcode = '{{ var("home_province_dvcqg_code") }}'

),

computed as (

    select
        counts.unit_code,
        counts.period_start,
        counts.as_of_date,
        metric.metric_code,
        metric.numerator::numeric as numerator,
        metric.denominator::numeric as denominator

    from counts

    cross join lateral (
        values
        ('ON_TIME_RATE', counts.received - counts.overdue, counts.received),
        ('ONLINE_PROVISION', counts.online_procedures, counts.authority_procedures),
        ('ONLINE_SERVICE_USED', counts.online_services_used, counts.online_procedures),
        ('ONLINE_SUBMISSION', counts.received_online, counts.received),
        ('ONLINE_PAYMENT_DOSSIER', counts.received_fee_paid_online, counts.received_with_fee),
        ('ONLINE_PAYMENT_FORMALITY', counts.fee_procedures_paid_online, counts.fee_procedures),
        ('FEE_FORMALITY_INTEGRATED', counts.fee_procedures_with_fee_data, counts.fee_procedures),
        ('ORIGINAL_RESULT_AVAILABLE', counts.finished_paper_e_result, counts.finished_paper_required),
        ('SO_HOA_GIAY_TO_GIAI_QUYET', counts.finished_digitised, counts.finished),
        ('REUSED_DIGITIZED_DATA', counts.received_digitised, counts.received),
        ('SYNCED_WITH_DVCQG_PERSONAL_STORAGE', counts.received_data_store, counts.received),
        ('CITIZEN_DATA_CONNECTED_DOSSIER', counts.received_population_data, counts.received),
        ('CITIZEN_DATA_CONNECTED_FORMALITY', counts.population_data_procedures, counts.citizen_procedures),
        ('PETITION_PROCESSING_ON_TIME', counts.petitions - counts.petitions_overdue, counts.petitions),
        ('PETITION_HANDLING_SATISFACTION', counts.petitions - counts.petitions_unsatisfied, counts.petitions),
        (
            'DOSSIER_RECEIVING_SATISFACTION',
            greatest(counts.received - counts.overdue - counts.complained, 0),
            counts.received
        )
    ) as metric (metric_code, numerator, denominator)

),

computed_scored as (

    select
        computed.unit_code,
        computed.period_start,
        computed.as_of_date,
        computed.metric_code,
        rules.group_code,
        'computed' as source,  -- noqa: RF04
        computed.numerator,
        computed.denominator,
        (case when computed.denominator > 0 then computed.numerator / computed.denominator end)::numeric(30, 20)
            as ratio,
        (case
            when computed.denominator > 0
                then least(
                    rules.max_points,
                    rules.max_points * (computed.numerator / computed.denominator) / rules.full_at_ratio
                )
            when rules.zero_denominator = 'full' then rules.max_points
            when rules.zero_denominator = 'zero' then 0
        end)::numeric(30, 20) as points,
        rules.max_points

    from computed

    inner join rules
        on computed.metric_code = rules.metric_code

    where rules.source = 'computed'

),

-- DVCQG's figures per unit and month (the province's own row under its code)
official_monthly as (

    select distinct on (unit_code, group_metrics.period_start, group_metrics.metric_code)
        case
            when group_metrics.is_parent then '{{ var("home_province_dvcqg_code") }}'
            else group_metrics.department_code
        end as unit_code,
        group_metrics.period_start,
        group_metrics.metric_code,
        group_metrics.numerator,
        group_metrics.denominator,
        group_metrics.ratio / 100 as ratio,
        group_metrics.score as points

    from group_metrics

    inner join home_province
        on group_metrics.root_department_id = home_province.root_department_id

    where group_metrics.period_type = 'month'

    order by unit_code asc, group_metrics.period_start asc, group_metrics.metric_code asc, group_metrics.loaded_at desc

),

unit_months as (

    select distinct
        unit_code,
        period_start

    from counts

),

official_rules as (

    select * from rules
    where source = 'official'

),

-- each unit, month and official metric: the month's figure, else the newest earlier month's
official_for_month as (

    select distinct on (unit_months.unit_code, unit_months.period_start, official_rules.metric_code)
        unit_months.unit_code,
        unit_months.period_start,
        official_rules.metric_code,
        official_rules.group_code,
        official_rules.max_points,
        official_monthly.numerator,
        official_monthly.denominator,
        official_monthly.ratio,
        official_monthly.points

    from unit_months

    cross join official_rules

    left join official_monthly
        on
            unit_months.unit_code = official_monthly.unit_code
            and official_rules.metric_code = official_monthly.metric_code
            and unit_months.period_start >= official_monthly.period_start

    order by
        unit_months.unit_code asc,
        unit_months.period_start asc,
        official_rules.metric_code asc,
        official_monthly.period_start desc nulls last

),

official_scored as (

    select
        counts.unit_code,
        counts.period_start,
        counts.as_of_date,
        official_for_month.metric_code,
        official_for_month.group_code,
        'official' as source,  -- noqa: RF04
        official_for_month.numerator,
        official_for_month.denominator,
        official_for_month.ratio::numeric(30, 20) as ratio,
        official_for_month.points::numeric(30, 20) as points,
        official_for_month.max_points

    from counts

    inner join official_for_month
        on
            counts.unit_code = official_for_month.unit_code
            and counts.period_start = official_for_month.period_start

),

final as (

    select * from computed_scored
    union all
    select * from official_scored

)

select
    *,
    now() as built_at

from final
