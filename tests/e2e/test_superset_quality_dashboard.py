"""The data-quality dashboard over the audit marts of a real run: the whole night (national, provincial and
warehouse DAGs, so the reconciliation mart has rows), a provincial extract (whose messy sandbox records land
in quarantine) and a dbt build; every chart drawn with data; dataset docs equal to the dbt docs; the
reconciliation charts show the units the mart flags, among them those the S1 sandbox left unsynced."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from pipeline_fixtures import PROVINCE_SCALE
from superset_browser import (
    assert_every_chart_has_data,
    dashboard_chart_uuids,
    reimport_and_read,
    render_dashboard,
)

from ingestion import pg, superset, transform
from ingestion.sandbox.official import OfficialScores

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

SLUG = "chat-luong-du-lieu"
MARTS = ["mart_source_freshness", "mart_pipeline_runs", "mart_quarantine_summary", "mart_validation_results"]
RECONCILIATION_CHARTS = {"so_don_vi": "340adcb5-0bf4-40f0-a2dd-b7d0077307be",
                         "lech_nguong": "a082fcb9-ca4f-4529-8528-036d837e3364"}


@pytest.fixture(scope="module")
def quality_data(warehouse_pipeline, landing_dir, tmp_path_factory) -> None:
    """A provincial dossiers extract into the same warehouse (the sandbox mixes in impossible records, which
    the loader quarantines), then a recorded dbt build of the data-quality marts."""
    from provincial_fixtures import AS_OF

    from ingestion.sandbox.provincial import serve_dossiers
    from ingestion.sources import dossiers

    scale = {"dossiers_per_day": 600, "history_days": 30, "as_of": AS_OF.isoformat()}
    with serve_dossiers(**scale) as base_url:
        dossiers.extract(AS_OF - timedelta(days=3), AS_OF, base_url=base_url, run_label="pytest-quality")
    target = tmp_path_factory.mktemp("dbt-quality")
    args = ["build", "--select", "source_freshness_thresholds", *MARTS, "--target-path", str(target)]
    transform.run_dbt([*args, "--log-path", str(target)], pipeline_run="pytest-quality")


def test_marts_have_rows_of_every_kind(quality_data) -> None:
    with pg.connect("reader") as conn:
        kinds = {r[0] for r in conn.execute("select distinct run_kind from marts.mart_pipeline_runs")}
        sources = {r[0] for r in conn.execute("select source from marts.mart_source_freshness")}
        quarantined = conn.execute("select coalesce(sum(record_count), 0) from marts.mart_quarantine_summary"
                                   " where source = 'dossiers'").fetchone()[0]
        suites = conn.execute("select count(*) from marts.mart_validation_results").fetchone()[0]
    assert kinds == {"extract", "dbt", "validation"}
    assert {"dvcqg", "dossiers"} <= sources
    assert quarantined > 0 and suites > 0


def test_dataset_docs_come_from_dbt(quality_data, superset_url: str) -> None:
    manifest = json.loads(transform.manifest_path().read_text(encoding="utf-8"))
    models = {n["name"]: n for n in manifest["nodes"].values() if n["resource_type"] == "model"}
    client = superset.api_client()
    try:
        for name in [*MARTS, "mart_province_ranking", "mart_index_reconciliation"]:
            q = f"(filters:!((col:table_name,opr:eq,value:{name})))"
            found = client.get("/api/v1/dataset/", params={"q": q}).json()["result"]
            assert len(found) == 1, name
            dataset = client.get(f"/api/v1/dataset/{found[0]['id']}").json()["result"]
            model = models[name]
            assert dataset["description"] == model["description"]
            columns = {c["column_name"]: c for c in dataset["columns"]}
            for column_name, doc in model["columns"].items():
                assert columns[column_name]["description"] == doc["description"], column_name
                assert columns[column_name]["verbose_name"] == doc["config"]["meta"]["label_vi"], column_name
            metrics = {m["metric_name"] for m in dataset["metrics"]}
            assert {m["metric_name"] for m in model["config"]["meta"]["superset_metrics"]} <= metrics
    finally:
        client.close()


def test_quality_dashboard_renders_every_chart(quality_data, superset_url: str) -> None:
    dashboard, charts = reimport_and_read(SLUG)  # nothing duplicated, the dashboard keeps its charts
    assert dashboard["dashboard_title"] == "Chất lượng dữ liệu và đối soát"
    assert len(charts) == len(dashboard_chart_uuids(SLUG)) == 8

    states, text = render_dashboard(superset_url, SLUG, "superset_chat_luong_du_lieu.png")
    assert_every_chart_has_data(states)
    assert "Đối soát với điểm chính thức" not in text  # the placeholder is gone
    assert "Lệch quá ngưỡng" in text and "Chênh lệch với DVCQG theo đơn vị và nhóm chỉ số" in text
    assert "Quá hạn" in text or "Chậm" in text or "Đúng hạn" in text  # freshness status, in Vietnamese


def _chart_data(client, uuid: str) -> list[dict]:
    """The rows a dashboard chart (by its asset uuid) shows, queried through the chart data API."""
    name = _slice_name(uuid)
    chart = next(c for c in client.get(f"/api/v1/dashboard/{SLUG}/charts").json()["result"]
                 if c["slice_name"] == name)
    form = chart["form_data"]
    datasource = {"id": int(form["datasource"].split("__")[0]), "type": "table"}
    if form["viz_type"] == "big_number_total":
        query = {"metrics": [form["metric"]], "row_limit": 1}
    else:
        query = {"columns": form["all_columns"], "metrics": [], "row_limit": form["row_limit"],
                 "extras": {"where": form["adhoc_filters"][0]["sqlExpression"]}}
    payload = {"datasource": datasource, "queries": [query], "result_format": "json", "result_type": "full"}
    response = client.post("/api/v1/chart/data", json=payload)
    assert response.status_code == 200, response.text
    return response.json()["result"][0]["data"]


def _slice_name(uuid: str) -> str:
    import yaml

    for path in (superset.ASSETS_DIR / "charts").glob("*.yaml"):
        chart = yaml.safe_load(path.read_text(encoding="utf-8"))
        if chart["uuid"] == uuid:
            return chart["slice_name"]
    raise KeyError(uuid)


def test_reconciliation_charts_name_the_unsynced_units(quality_data, superset_url: str) -> None:
    """The charts show the units the mart flags (tests/e2e/test_index_reconciliation.py says which those
    are), the units the S1 sandbox left unsynced among them."""
    unsynced = OfficialScores(**PROVINCE_SCALE).unsynced
    with pg.connect("reader") as conn:
        flagged = dict(conn.execute(
            "select distinct unit_code, unit_name from marts.mart_index_reconciliation"
            " where is_beyond_tolerance").fetchall())
    client = superset.api_client()
    try:
        count = _chart_data(client, RECONCILIATION_CHARTS["so_don_vi"])
        rows = _chart_data(client, RECONCILIATION_CHARTS["lech_nguong"])
    finally:
        client.close()
    assert set(unsynced) <= set(flagged)
    assert list(count[0].values()) == [len(flagged)]
    beyond = {r["unit_name"] for r in rows if r["reconciliation_label"] == "Lệch quá ngưỡng"}
    assert beyond == set(flagged.values())
