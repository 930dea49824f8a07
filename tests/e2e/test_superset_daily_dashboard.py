"""The daily-operations dashboard over the marts of a whole night: the daily marts agree with each other
(every commune every day, hotspots on the as-of day only, headline equal to the province's row), and in a
real browser every chart draws with data: 102 communes on the map and 102 in the heat map, coloured as the
marts say, the legend naming the threshold set in force."""

from __future__ import annotations

import pytest
from superset_browser import (
    assert_every_chart_has_data,
    dashboard_chart_uuids,
    reimport_and_read,
    render_dashboard_probed,
)

from ingestion import pg

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

SLUG = "dieu-hanh-hang-ngay"

# What the Handlebars charts drew, read from the page: per commune code its colour on the map, per heat-map
# row its unit type and the colours of its days, and the headline cards.
PROBES = {
    "map": """() => Object.fromEntries([...document.querySelectorAll('svg path[data-commune-code]')]
        .map(p => [p.getAttribute('data-commune-code'), p.getAttribute('class')]))""",
    "heatmap": """() => [...document.querySelectorAll('tr[data-unit-code]')].map(tr => ({
        code: tr.getAttribute('data-unit-code'), type: tr.getAttribute('data-unit-type'),
        days: [...tr.querySelectorAll('td')].map(td => td.getAttribute('class'))}))""",
    "cards": """() => [...document.querySelectorAll('.chiso-card[data-chiso-mark]')].map(card => ({
        kpi: card.getAttribute('data-chiso-mark'), text: card.innerText}))""",
}


def test_daily_marts_agree(warehouse_pipeline) -> None:
    with pg.connect("reader") as conn:
        days, first, last = conn.execute("select count(distinct kpi_date), min(kpi_date), max(kpi_date)"
                                         " from marts.mart_heatmap_daily").fetchone()
        communes_per_day = {r[0] for r in conn.execute(
            "select count(*) from marts.mart_heatmap_daily where unit_type = 'commune' group by kpi_date")}
        kpi_rows, units = conn.execute(
            "select count(*), count(distinct unit_code) from marts.mart_unit_daily_kpi").fetchone()
        hotspot_days = {r[0] for r in conn.execute("select distinct as_of_date from marts.mart_hotspots")}
        province = conn.execute("select on_time_rate, open_overdue from marts.mart_province_daily_kpi"
                                " where is_as_of_date").fetchone()
        units_summed = conn.execute(
            "select sum(open_overdue), sum(open_within_due) from marts.mart_unit_daily_kpi"
            " where is_as_of_date and unit_type != 'province'").fetchone()
        province_row = conn.execute(
            "select open_overdue, open_within_due, on_time_rate from marts.mart_unit_daily_kpi"
            " where is_as_of_date and unit_type = 'province'").fetchone()
        red_hotspots = {r[0] for r in conn.execute(
            "select unit_code from marts.mart_hotspots where hotspot_rule = 'red_status'")}
        red_today = {r[0] for r in conn.execute(
            "select unit_code from marts.mart_heatmap_daily where is_as_of_date and status = 'red'"
            " and unit_type != 'province'")}
    assert days == (last - first).days + 1 and communes_per_day == {102}
    assert kpi_rows == units * days
    assert hotspot_days <= {last}  # "today" is the data's newest day
    # the province's row sums its units (its own dossiers, if any, come on top)
    assert province_row[0] >= units_summed[0] and province_row[1] >= units_summed[1]
    assert (province[0], province[1]) == (province_row[2], province_row[0])
    assert red_hotspots == red_today


def test_daily_dashboard_draws_every_commune(warehouse_pipeline, superset_url: str) -> None:
    dashboard, charts = reimport_and_read(SLUG)  # nothing duplicated, the dashboard keeps its charts
    assert dashboard["dashboard_title"] == "Điều hành hằng ngày"
    assert len(charts) == len(dashboard_chart_uuids(SLUG)) == 4

    states, text, drawn = render_dashboard_probed(superset_url, SLUG, "superset_dieu_hanh_hang_ngay.png",
                                                  PROBES)
    assert_every_chart_has_data(states)

    with pg.connect("reader") as conn:
        today = dict(conn.execute(
            "select statistics_code, status from marts.mart_heatmap_daily"
            " where is_as_of_date and unit_type = 'commune'").fetchall())
        label, as_of = conn.execute(
            "select threshold_label_vi, to_char(kpi_date, 'DD/MM/YYYY') from marts.mart_province_daily_kpi"
            " where is_as_of_date").fetchone()
        hotspots = conn.execute("select count(*) from marts.mart_hotspots").fetchone()[0]

    assert drawn["map"] == today  # 102 communes, each in today's colour
    commune_rows = [row for row in drawn["heatmap"] if row["type"] == "commune"]
    assert len(commune_rows) == 102 and len({row["code"] for row in commune_rows}) == 102
    assert {len(row["days"]) for row in drawn["heatmap"]} == {30}
    assert all(set(row["days"]) <= {"green", "yellow", "red"} for row in drawn["heatmap"])
    assert [card["kpi"] for card in drawn["cards"]] == [
        "on_time_rate", "open_overdue", "due_within_one_working_day", "online_share", "satisfaction_rate"]
    assert all("hôm qua" in card["text"] for card in drawn["cards"])
    assert label in text and as_of in text  # the threshold set in force and the data's day are shown
    assert "thanglequoc/vietnamese-provinces-database" in text  # the boundaries' attribution
    assert {state["title"]: state["rows"] for state in states}["Điểm nóng hôm nay"] == hotspots > 0
