-- Green, yellow or red per unit and day, the indicator that decided it and the threshold set it used: every
-- unit of mart_unit_daily_kpi on every day of the data window.
with

kpi as (

    select * from {{ ref('mart_unit_daily_kpi') }}

),

indicators as (

    select * from {{ ref('int_daily__unit_indicators') }}

),

rules as (

    select * from {{ ref('int_daily__thresholds_in_force') }}

),

-- one label per day: the set in force
day_sets as (

    select distinct
        date_day,
        threshold_set,
        threshold_version,
        threshold_label_vi

    from rules

),

-- the deciding indicator: the worst colour, the first by priority among equals; a day without any evaluated
-- colour rule is reported as having nothing to judge
deciding as (

    select distinct on (unit_code, kpi_date)
        unit_code,
        kpi_date,
        indicator,
        indicator_name_vi,
        direction,
        display,
        colour_level,
        indicator_value,
        indicator_value_vi,
        case colour_level when 2 then red_at when 1 then yellow_at else coalesce(yellow_at, red_at) end
            as boundary

    from indicators

    where yellow_at is not null or red_at is not null

    order by unit_code asc, kpi_date asc, colour_level desc nulls last, priority asc

),

final as (

    select
        kpi.unit_code,
        kpi.kpi_date,
        kpi.unit_name,
        kpi.unit_type,
        kpi.statistics_code,
        kpi.is_as_of_date,
        coalesce(deciding.colour_level, 0) as status_level,
        (array['green', 'yellow', 'red'])[coalesce(deciding.colour_level, 0) + 1] as status,
        (array['Xanh', 'Vàng', 'Đỏ'])[coalesce(deciding.colour_level, 0) + 1] as status_label_vi,
        case when deciding.colour_level is not null then deciding.indicator end as deciding_indicator,
        case when deciding.colour_level is not null then deciding.indicator_name_vi end as deciding_indicator_name_vi,
        case when deciding.colour_level is not null then deciding.indicator_value end as deciding_value,
        case when deciding.colour_level is not null then deciding.boundary end as deciding_boundary,
        case
            when deciding.colour_level is null then 'Không có số liệu để đánh giá'
            when deciding.colour_level = 0
                then 'Đạt mọi ngưỡng: ' || deciding.indicator_name_vi || ' ' || deciding.indicator_value_vi
            else
                deciding.indicator_name_vi || ' ' || deciding.indicator_value_vi
                || ' (ngưỡng ' || case deciding.colour_level when 2 then 'đỏ' else 'vàng' end || ': '
                || {{ vi_worse_side('deciding.direction') }} || ' '
                || {{ vi_indicator_value('deciding.boundary', 'deciding.display') }} || ')'
        end as reason_vi,
        day_sets.threshold_set,
        day_sets.threshold_version,
        day_sets.threshold_label_vi,
        kpi.on_time_rate,
        kpi.open_overdue,
        kpi.overdue_max_working_days

    from kpi

    left join deciding
        on
            kpi.unit_code = deciding.unit_code
            and kpi.kpi_date = deciding.kpi_date

    left join day_sets
        on kpi.kpi_date = day_sets.date_day

)

select * from final
