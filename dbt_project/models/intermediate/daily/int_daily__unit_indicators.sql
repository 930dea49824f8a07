-- Every rule of the threshold set in force, judged per unit and day: the indicator's value (a column of
-- mart_unit_daily_kpi), the colour level it gives (0 green, 1 yellow, 2 red; null when the rule has no colour
-- boundary or the value is null) and whether it makes the unit a hotspot.
with

kpi as (

    select * from {{ ref('mart_unit_daily_kpi') }}

),

rules as (

    select * from {{ ref('int_daily__thresholds_in_force') }}

),

valued as (

    select
        kpi.unit_code,
        kpi.kpi_date,
        rules.threshold_set,
        rules.threshold_version,
        rules.indicator,
        rules.indicator_name_vi,
        rules.direction,
        rules.display,
        rules.yellow_at,
        rules.red_at,
        rules.hotspot_at,
        rules.priority,
        case rules.indicator
            when 'on_time_rate' then kpi.on_time_rate
            when 'overdue_max_working_days' then kpi.overdue_max_working_days
            when 'open_overdue' then kpi.open_overdue
            when 'due_within_one_working_day' then kpi.due_within_one_working_day
            when 'online_share' then kpi.online_share
            when 'paid_online_share' then kpi.paid_online_share
            when 'digitised_share' then kpi.digitised_share
            when 'satisfaction_rate' then kpi.satisfaction_rate
            when 'index_score_drop' then -kpi.index_score_change
        end::numeric as indicator_value

    from kpi

    inner join rules
        on kpi.kpi_date = rules.date_day

),

-- worse: below the boundary where higher is better, above it otherwise (a value on it is the better side)
judged as (

    select
        *,
        case
            when indicator_value is null or (yellow_at is null and red_at is null) then null
            when direction = 'higher_is_better' and indicator_value < red_at then 2
            when direction = 'lower_is_better' and indicator_value > red_at then 2
            when direction = 'higher_is_better' and indicator_value < yellow_at then 1
            when direction = 'lower_is_better' and indicator_value > yellow_at then 1
            else 0
        end as colour_level,
        coalesce(
            case direction
                when 'higher_is_better' then indicator_value < hotspot_at
                else indicator_value > hotspot_at
            end,
            false
        ) as is_hotspot

    from valued

)

select
    *,
    {{ vi_indicator_value('indicator_value', 'display') }} as indicator_value_vi

from judged
