"""The Superset asset files hang together: every dashboard's charts exist, every chart's dataset exists,
every native filter targets an existing dataset and scopes out only charts the dashboard places, uuids are
unique."""

from __future__ import annotations

from collections import Counter

import pytest
import yaml

from ingestion.superset import ASSETS_DIR


def _load(kind: str) -> dict[str, dict]:
    return {path.name: yaml.safe_load(path.read_text(encoding="utf-8"))
            for path in sorted((ASSETS_DIR / kind).rglob("*.yaml"))}


CHARTS, DATASETS, DASHBOARDS = _load("charts"), _load("datasets"), _load("dashboards")


def test_uuids_are_unique() -> None:
    uuids = Counter(a["uuid"] for group in (CHARTS, DATASETS, DASHBOARDS) for a in group.values())
    assert [uuid for uuid, n in uuids.items() if n > 1] == []


def test_every_chart_reads_a_dataset_of_the_bundle() -> None:
    datasets = {d["uuid"] for d in DATASETS.values()}
    assert {name: c["dataset_uuid"] for name, c in CHARTS.items() if c["dataset_uuid"] not in datasets} == {}


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_dashboard_places_existing_charts_and_filters_existing_datasets(name: str) -> None:
    dashboard = DASHBOARDS[name]
    charts = {c["uuid"]: c for c in CHARTS.values()}
    placed = [item["meta"] for item in dashboard["position"].values()
              if isinstance(item, dict) and item.get("type") == "CHART"]
    for meta in placed:
        assert meta["uuid"] in charts, meta
        assert meta["sliceName"] == charts[meta["uuid"]]["slice_name"], meta
    local_ids = [meta["chartId"] for meta in placed]
    assert len(set(local_ids)) == len(local_ids)
    datasets = {d["uuid"] for d in DATASETS.values()}
    for native in dashboard["metadata"].get("native_filter_configuration", []):
        assert all(target["datasetUuid"] in datasets for target in native["targets"]), native["id"]
        assert set(native["scope"]["excluded"]) <= set(local_ids), native["id"]
