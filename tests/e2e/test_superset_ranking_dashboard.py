"""The dashboard "So sánh và xếp hạng" over the marts of a whole night: every chart drawn with data, and the
figures of its tables equal to the marts' (ranking, group ranking, points lost)."""

from __future__ import annotations

import pytest
from superset_browser import (
    assert_every_chart_has_data,
    chart_by_title,
    dashboard_chart_uuids,
    render_dashboard,
    vi_number,
)

from ingestion import pg, superset

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

SLUG = "so-sanh-xep-hang"

# What the tables show first with no filter: the latest month, agencies before communes (as the charts order).
LATEST = "(select max(period_start) from marts.mart_unit_index_766)"
TOP_AGENCY = f"""
    select unit_name, total_score from marts.mart_unit_index_766
    where unit_type = 'agency' and period_start = {LATEST}
      and (is_final or as_of_date = (select max(as_of_date) from marts.mart_unit_index_766))
    order by unit_type, rank_in_type, unit_name limit 1"""
TOP_ON_FIRST_GROUP = """
    select group_name, unit_name, score from marts.mart_unit_group_ranking
    where period_label = (select max(period_label) from marts.mart_unit_group_ranking)
    order by group_order, unit_type, rank_in_type, unit_name limit 1"""
FIRST_GAP = """
    select unit_name, indicator_name, points_lost from marts.mart_indicator_gaps
    where period_label = (select max(period_label) from marts.mart_indicator_gaps)
    order by unit_type, unit_name, gap_order limit 1"""


def test_marts_agree(warehouse_pipeline) -> None:
    """The ranking marts over the same month and day: the shown day is the newest of the month; a unit's
    points lost and its group scores add up to what mart_unit_index_766 says."""
    with pg.connect("reader") as conn:
        days = conn.execute("""
            select count(distinct (period_start, as_of_date)), count(distinct period_start)
            from marts.mart_indicator_gaps""").fetchone()
        assert days[0] == days[1] > 0
        mismatched = conn.execute("""
            select g.unit_code, g.period_start
            from marts.mart_unit_group_ranking as g
            join marts.mart_unit_index_766 as u using (unit_code, period_start, as_of_date)
            group by g.unit_code, g.period_start, u.total_score
            having coalesce(sum(g.score), 0) <> u.total_score""").fetchall()
        assert not mismatched
        # earned + lost = maximum over the applicable sub-indicators of every unit and month
        off = conn.execute("""
            select count(*) from marts.mart_indicator_gaps
            where points is not null and points + points_lost <> max_points""").fetchone()[0]
        assert off == 0


def test_reimport_keeps_the_dashboard(warehouse_pipeline, superset_url: str) -> None:
    client = superset.api_client()
    try:
        superset.import_bundle()  # a second import changes nothing
        dashboard = client.get(f"/api/v1/dashboard/{SLUG}").json()["result"]
        charts = client.get(f"/api/v1/dashboard/{SLUG}/charts").json()["result"]
        datasets = client.get(f"/api/v1/dashboard/{SLUG}/datasets").json()["result"]
    finally:
        client.close()
    assert dashboard["dashboard_title"] == "So sánh và xếp hạng"
    assert len(charts) == len(dashboard_chart_uuids(SLUG)) == 7
    assert all(column["verbose_name"] for ds in datasets for column in ds["columns"])


def test_ranking_dashboard_renders_the_marts(warehouse_pipeline, superset_url: str) -> None:
    with pg.connect("reader") as conn:
        agency, agency_total = conn.execute(TOP_AGENCY).fetchone()
        group, group_leader, group_score = conn.execute(TOP_ON_FIRST_GROUP).fetchone()
        gap_unit, gap_indicator, gap_points = conn.execute(FIRST_GAP).fetchone()

    charts, _ = render_dashboard(superset_url, SLUG, "superset_so_sanh_xep_hang.png")
    assert len(charts) == 7
    assert_every_chart_has_data(charts)

    ranking = chart_by_title(charts, "Xếp hạng sở, ngành và xã, phường theo tổng điểm")["text"]
    assert agency in ranking and vi_number(agency_total) in ranking
    by_group = chart_by_title(charts, "Xếp hạng đơn vị theo từng nhóm chỉ số")["text"]
    assert group in by_group and group_leader in by_group and vi_number(group_score) in by_group
    gaps = chart_by_title(charts, "Điểm bị mất của từng đơn vị theo chỉ số thành phần")["text"]
    assert gap_unit in gaps and gap_indicator in gaps and vi_number(gap_points) in gaps
