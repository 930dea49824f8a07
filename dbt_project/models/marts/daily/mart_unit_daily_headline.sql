-- The daily-operations headline per unit and day: for every unit of mart_unit_daily_kpi (the province, its
-- agencies, its communes), the headline indicators with the day before's value and the change, as
-- mart_province_daily_kpi gives them for the province; each row also carries the unit's own colour and the
-- province's commune colours and threshold set of the day (the cards' caption). A unit user's headline is
-- their unit's rows, everyone else's the province's (superset/security.yaml).
with

kpi as (

    select * from {{ ref('mart_unit_daily_kpi') }}

),

heatmap as (

    select * from {{ ref('mart_heatmap_daily') }}

),

province as (

    select * from {{ ref('mart_province_daily_kpi') }}

),

with_yesterday as (

    select
        *,
        lag(on_time_rate) over by_unit as previous_on_time_rate,
        lag(open_overdue) over by_unit as previous_open_overdue,
        lag(due_within_one_working_day) over by_unit as previous_due_within_one_working_day,
        lag(online_share) over by_unit as previous_online_share,
        lag(satisfaction_rate) over by_unit as previous_satisfaction_rate

    from kpi

    window by_unit as (partition by unit_code order by kpi_date)

),

final as (

    select
        with_yesterday.unit_code,
        with_yesterday.kpi_date,
        with_yesterday.unit_name,
        with_yesterday.unit_type,
        with_yesterday.statistics_code,
        with_yesterday.is_as_of_date,
        with_yesterday.on_time_rate,
        with_yesterday.previous_on_time_rate,
        with_yesterday.on_time_rate - with_yesterday.previous_on_time_rate as on_time_rate_change,
        with_yesterday.open_overdue,
        with_yesterday.previous_open_overdue,
        with_yesterday.open_overdue - with_yesterday.previous_open_overdue as open_overdue_change,
        with_yesterday.due_within_one_working_day,
        with_yesterday.previous_due_within_one_working_day,
        with_yesterday.due_within_one_working_day - with_yesterday.previous_due_within_one_working_day
            as due_within_one_working_day_change,
        with_yesterday.online_share,
        with_yesterday.previous_online_share,
        with_yesterday.online_share - with_yesterday.previous_online_share as online_share_change,
        with_yesterday.satisfaction_rate,
        with_yesterday.previous_satisfaction_rate,
        with_yesterday.satisfaction_rate - with_yesterday.previous_satisfaction_rate as satisfaction_rate_change,
        heatmap.status,
        heatmap.status_label_vi,
        province.communes_green,
        province.communes_yellow,
        province.communes_red,
        province.threshold_label_vi

    from with_yesterday

    inner join heatmap
        on
            with_yesterday.unit_code = heatmap.unit_code
            and with_yesterday.kpi_date = heatmap.kpi_date

    inner join province
        on with_yesterday.kpi_date = province.kpi_date

)

select * from final
