-- The province's headline figures per day (its row of mart_unit_daily_kpi: the sum of all units), each with
-- the day before's value and the change, the number of communes and agencies of each colour, and the
-- threshold set in force with its rules in words (the dashboard's legend).
with

kpi as (

    select * from {{ ref('mart_unit_daily_kpi') }}

),

heatmap as (

    select * from {{ ref('mart_heatmap_daily') }}

),

rules as (

    select * from {{ ref('int_daily__thresholds_in_force') }}

),

day_sets as (

    select distinct
        date_day,
        threshold_set,
        threshold_version,
        threshold_label_vi,
        threshold_rules_vi

    from rules

),

colours as (

    select
        kpi_date,
        count(*) filter (where unit_type = 'commune' and status = 'green') as communes_green,
        count(*) filter (where unit_type = 'commune' and status = 'yellow') as communes_yellow,
        count(*) filter (where unit_type = 'commune' and status = 'red') as communes_red,
        count(*) filter (where unit_type = 'agency' and status = 'green') as agencies_green,
        count(*) filter (where unit_type = 'agency' and status = 'yellow') as agencies_yellow,
        count(*) filter (where unit_type = 'agency' and status = 'red') as agencies_red,
        max(status) filter (where unit_type = 'province') as province_status

    from heatmap

    group by kpi_date

),

province as (

    select
        *,
        lag(on_time_rate) over by_day as previous_on_time_rate,
        lag(open_overdue) over by_day as previous_open_overdue,
        lag(due_within_one_working_day) over by_day as previous_due_within_one_working_day,
        lag(online_share) over by_day as previous_online_share,
        lag(satisfaction_rate) over by_day as previous_satisfaction_rate

    from kpi

    where unit_type = 'province'

    window by_day as (order by kpi_date)

),

final as (

    select
        province.kpi_date,
        province.is_as_of_date,
        province.received,
        province.finished,
        province.open_within_due,
        province.open_overdue,
        province.previous_open_overdue,
        province.open_overdue - province.previous_open_overdue as open_overdue_change,
        province.due_within_one_working_day,
        province.previous_due_within_one_working_day,
        province.due_within_one_working_day - province.previous_due_within_one_working_day
            as due_within_one_working_day_change,
        province.on_time_rate,
        province.previous_on_time_rate,
        province.on_time_rate - province.previous_on_time_rate as on_time_rate_change,
        province.online_share,
        province.previous_online_share,
        province.online_share - province.previous_online_share as online_share_change,
        province.satisfaction_rate,
        province.previous_satisfaction_rate,
        province.satisfaction_rate - province.previous_satisfaction_rate as satisfaction_rate_change,
        province.ratings,
        province.paid_online_share,
        province.digitised_share,
        province.index_total_score,
        colours.communes_green,
        colours.communes_yellow,
        colours.communes_red,
        colours.agencies_green,
        colours.agencies_yellow,
        colours.agencies_red,
        colours.province_status,
        day_sets.threshold_set,
        day_sets.threshold_version,
        day_sets.threshold_label_vi,
        day_sets.threshold_rules_vi

    from province

    inner join colours
        on province.kpi_date = colours.kpi_date

    left join day_sets
        on province.kpi_date = day_sets.date_day

)

select * from final
