"""Superset end to end: start it, import the dashboards (twice), and look at them in a real browser."""

from __future__ import annotations

import pytest
from superset_browser import assert_every_chart_has_data, dashboard_chart_uuids, render_dashboard

from ingestion import superset

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


def test_dashboard_renders_every_chart(superset_url: str) -> None:
    charts, _ = render_dashboard(superset_url, SLUG, "superset_chi_so_766_toan_quoc.png")
    assert_every_chart_has_data(charts)
