-- The colour and hotspot rules in force on every calendar day (seed kpi_thresholds): on each day of dim_date,
-- the rows of the threshold set version with the latest valid_from on or before the day (the higher version,
-- then the later set name, when two start the same day), with the version's label and a summary of its rules
-- for the dashboard's legend. Days before every valid_from have no rules (and no row).
with

thresholds as (

    select * from {{ ref('kpi_thresholds') }}

),

calendar as (

    select * from {{ ref('dim_date') }}

),

versions as (

    select distinct
        threshold_set,
        version,
        valid_from

    from thresholds

),

in_force as (

    select distinct on (calendar.date_day)
        calendar.date_day,
        versions.threshold_set,
        versions.version,
        versions.valid_from

    from calendar

    inner join versions
        on calendar.date_day >= versions.valid_from

    order by calendar.date_day asc, versions.valid_from desc, versions.version desc, versions.threshold_set desc

),

-- each boundary as a phrase: '<indicator> dưới|trên <value>'
phrased as (

    select
        *,
        indicator_name_vi || ' ' || {{ vi_worse_side('direction') }} || ' ' as phrase_start

    from thresholds

),

summaries as (

    select
        threshold_set,
        version,
        concat_ws(
            ' ',
            'Đỏ: ' || string_agg(
                phrase_start || {{ vi_indicator_value('red_at', 'display') }}, '; ' order by priority
            ) filter (where red_at is not null) || '.',
            'Vàng: ' || string_agg(
                phrase_start || {{ vi_indicator_value('yellow_at', 'display') }}, '; ' order by priority
            ) filter (where yellow_at is not null) || '.',
            'Xanh: đạt mọi ngưỡng.',
            'Điểm nóng: đơn vị màu đỏ' || coalesce('; ' || string_agg(
                phrase_start || {{ vi_indicator_value('hotspot_at', 'display') }}, '; ' order by priority
            ) filter (where hotspot_at is not null), '') || '.'
        ) as threshold_rules_vi

    from phrased

    group by threshold_set, version

),

final as (

    select
        in_force.date_day,
        in_force.threshold_set,
        in_force.version as threshold_version,
        in_force.valid_from,
        'Bộ ngưỡng ' || in_force.threshold_set || ' phiên bản ' || in_force.version
        || ' (áp dụng từ ' || to_char(in_force.valid_from, 'DD/MM/YYYY') || ')' as threshold_label_vi,
        summaries.threshold_rules_vi,
        thresholds.indicator,
        thresholds.indicator_name_vi,
        thresholds.direction,
        thresholds.display,
        thresholds.yellow_at,
        thresholds.red_at,
        thresholds.hotspot_at,
        thresholds.priority

    from in_force

    inner join thresholds
        on
            in_force.threshold_set = thresholds.threshold_set
            and in_force.version = thresholds.version

    inner join summaries
        on
            in_force.threshold_set = summaries.threshold_set
            and in_force.version = summaries.version

)

select * from final
