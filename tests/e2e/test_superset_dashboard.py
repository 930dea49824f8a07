"""Superset end to end: start it, import the dashboards (twice), and look at them in a real browser."""

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

SLUG = "chi-so-766-toan-quoc"


def _counts(client) -> dict[str, int]:
    return {kind: client.get(f"/api/v1/{kind}/", params={"q": "(page_size:1)"}).json()["count"]
            for kind in ("dashboard", "chart", "dataset", "database")}


def test_reimport_duplicates_nothing(superset_url: str) -> None:
    client = superset.api_client()
    try:
        before = _counts(client)
        superset.import_bundle()
        superset.import_bundle()
        assert _counts(client) == before
        dashboard = client.get(f"/api/v1/dashboard/{SLUG}").json()["result"]
        assert dashboard["dashboard_title"] == "Chỉ số 766 toàn quốc"
        charts = client.get(f"/api/v1/dashboard/{SLUG}/charts").json()["result"]
        assert len(charts) == len(dashboard_chart_uuids(SLUG))
        datasets = client.get(f"/api/v1/dashboard/{SLUG}/datasets").json()["result"]
        assert all(column["verbose_name"] for ds in datasets for column in ds["columns"])
    finally:
        client.close()


# The 34-province table with no period chosen: the latest month, by rank then name (as the chart orders).
FIRST_PROVINCE = """
    select province_name, total_score from marts.mart_province_ranking
    where period_label = (select period_label from marts.mart_province_ranking
                          where period_type = 'month' order by period_start desc limit 1)
    order by national_rank, province_name limit 1"""


def test_dashboard_renders_every_chart(superset_url: str) -> None:
    with pg.connect("reader") as conn:
        province, total = conn.execute(FIRST_PROVINCE).fetchone()
    charts, _ = render_dashboard(superset_url, SLUG, "superset_chi_so_766_toan_quoc.png")
    assert len(charts) == 8
    assert_every_chart_has_data(charts)
    for title in ("Tổng điểm của Đắk Lắk và trung bình toàn quốc qua các kỳ",
                  "Thứ hạng từng nhóm chỉ số của Đắk Lắk qua các kỳ",
                  "Điểm sáu nhóm chỉ số của Đắk Lắk so với điểm tối đa và trung bình toàn quốc"):
        assert chart_by_title(charts, title)["canvas"], title
    table = chart_by_title(charts, "Bảng xếp hạng 34 tỉnh, thành phố")["text"]
    assert "Hạng kỳ trước" in table and province in table and vi_number(total) in table


def test_group_national_average_is_the_mean_of_the_provinces(national_pipeline) -> None:
    """mart_province_group_scores: the home province's six groups per period, each with the national mean."""
    with pg.connect("reader") as conn:
        rows = conn.execute("""
            select g.period_label, g.group_code, g.national_average,
                   round(avg(case g.group_code when 'CKMB' then r.ckmb when 'TDGQ' then r.tdgq
                         when 'CLGQ' then r.clgq when 'TTTT' then r.tttt when 'MDHL' then r.mdhl
                         else r.mdsh end), 2) as expected
            from marts.mart_province_group_scores as g
            join marts.mart_province_ranking as r using (period_type, period_start)
            where g.is_home_province
            group by g.period_label, g.group_code, g.national_average""").fetchall()
    assert rows and len(rows) % 6 == 0
    assert all(average == expected for _, _, average, expected in rows), rows
