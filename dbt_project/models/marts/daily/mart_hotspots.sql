-- Today's hotspots: the agencies and communes that need action on the as-of day (the newest day of the data,
-- not the wall clock), one row per unit and reason: red on the heat map, or an indicator beyond its hotspot
-- boundary in the threshold set in force (seed kpi_thresholds).
with

heatmap as (

    select * from {{ ref('mart_heatmap_daily') }}

),

indicators as (

    select * from {{ ref('int_daily__unit_indicators') }}

),

today as (

    select * from heatmap
    where is_as_of_date and unit_type in ('agency', 'commune')

),

-- the figure of a red unit: its deciding indicator's value
red_units as (

    select
        today.unit_code,
        'red_status' as hotspot_rule,
        'Màu đỏ trên bản đồ nhiệt' as hotspot_rule_name_vi,
        0 as rule_order,
        today.deciding_indicator as indicator,
        today.deciding_value as figure,
        indicators.indicator_value_vi as figure_vi,
        today.deciding_boundary as boundary,
        today.reason_vi

    from today

    left join indicators
        on
            today.unit_code = indicators.unit_code
            and today.kpi_date = indicators.kpi_date
            and today.deciding_indicator = indicators.indicator

    where today.status = 'red'

),

beyond_limits as (

    select
        indicators.unit_code,
        indicators.indicator as hotspot_rule,
        indicators.indicator_name_vi as hotspot_rule_name_vi,
        indicators.priority as rule_order,
        indicators.indicator,
        indicators.indicator_value as figure,
        indicators.indicator_value_vi as figure_vi,
        indicators.hotspot_at as boundary,
        indicators.indicator_name_vi || ' ' || indicators.indicator_value_vi
        || ' (giới hạn điểm nóng: ' || {{ vi_worse_side('indicators.direction') }} || ' '
        || {{ vi_indicator_value('indicators.hotspot_at', 'indicators.display') }} || ')' as reason_vi

    from indicators

    inner join today
        on
            indicators.unit_code = today.unit_code
            and indicators.kpi_date = today.kpi_date

    where indicators.is_hotspot

),

reasons as (

    select * from red_units
    union all
    select * from beyond_limits

),

final as (

    select
        today.kpi_date as as_of_date,
        today.unit_code,
        today.unit_name,
        today.unit_type,
        today.statistics_code,
        reasons.hotspot_rule,
        reasons.hotspot_rule_name_vi,
        reasons.rule_order,
        reasons.indicator,
        reasons.figure,
        reasons.figure_vi,
        reasons.boundary,
        reasons.reason_vi,
        today.status,
        today.status_label_vi,
        count(*) over (partition by today.unit_code) as reasons_for_unit,
        today.threshold_set,
        today.threshold_version

    from reasons

    inner join today
        on reasons.unit_code = today.unit_code

)

select * from final
