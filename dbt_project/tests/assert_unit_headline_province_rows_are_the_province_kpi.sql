-- The headline's province rows (mart_unit_daily_headline) are mart_province_daily_kpi's figures, day by day:
-- the province user's headline did not change when the headline gained its units' rows.
with

province as (

    select * from {{ ref('mart_province_daily_kpi') }}

),

headline as (

    select * from {{ ref('mart_unit_daily_headline') }}
    where unit_type = 'province'

)

select
    province.kpi_date,
    headline.kpi_date as headline_kpi_date
from province
full outer join headline
    on province.kpi_date = headline.kpi_date
where
    headline.kpi_date is null
    or province.kpi_date is null
    or (
        province.on_time_rate, province.previous_on_time_rate, province.open_overdue,
        province.previous_open_overdue, province.due_within_one_working_day,
        province.previous_due_within_one_working_day, province.online_share, province.previous_online_share,
        province.satisfaction_rate, province.previous_satisfaction_rate, province.communes_green,
        province.communes_yellow, province.communes_red, province.threshold_label_vi
    )
    is distinct from
    (
        headline.on_time_rate, headline.previous_on_time_rate, headline.open_overdue,
        headline.previous_open_overdue, headline.due_within_one_working_day,
        headline.previous_due_within_one_working_day, headline.online_share, headline.previous_online_share,
        headline.satisfaction_rate, headline.previous_satisfaction_rate, headline.communes_green,
        headline.communes_yellow, headline.communes_red, headline.threshold_label_vi
    )
