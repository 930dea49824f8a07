-- mart_heatmap_daily: every day of its window is present, and on each day every commune of dim_unit has
-- exactly one row. Returns what breaks it. (That dim_unit has every commune of the reference data is the
-- GX suite's check: a warehouse fed by a source that lists fewer units is still consistent here.)
-- (Models only: a seed is built in the national slice too, where this test must not run. An empty warehouse
-- passes; the GX mart suites expect rows.)
with

heatmap as (

    select * from {{ ref('mart_heatmap_daily') }}

),

units as (

    select * from {{ ref('dim_unit') }}

),

expected as (

    select
        (
            select count(*) from units
            where unit_type = 'commune'
        ) as communes

),

window_days as (

    select day::date as kpi_date
    from generate_series(
        (select min(kpi_date) from heatmap), (select max(kpi_date) from heatmap), interval '1 day'
    ) as s (day)

),

per_day as (

    select
        window_days.kpi_date,
        count(distinct heatmap.unit_code) filter (where heatmap.unit_type = 'commune') as communes,
        count(heatmap.unit_code) filter (where heatmap.unit_type = 'commune') as commune_rows

    from window_days

    left join heatmap
        on window_days.kpi_date = heatmap.kpi_date

    group by window_days.kpi_date

)

select
    per_day.kpi_date,
    per_day.communes,
    per_day.commune_rows

from per_day

cross join expected

where
    per_day.communes != expected.communes
    or per_day.commune_rows != expected.communes
