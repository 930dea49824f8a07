"""dbt_project/models/exposures.yml against the Superset bundle (superset/assets): every dashboard has
exactly one exposure, and it depends on exactly the tables the dashboard's charts and native filters read
through their datasets, so a chart added to a dashboard without its exposure fails here. No dbt needed;
that dbt lists the exposures is checked in test_dbt_selectors.py."""

from __future__ import annotations

import re

import pytest
import yaml

from ingestion.superset import ASSETS_DIR
from ingestion.transform import DBT_PROJECT_DIR

EXPOSURES_FILE = DBT_PROJECT_DIR / "models" / "exposures.yml"
EXPOSURES = yaml.safe_load(EXPOSURES_FILE.read_text(encoding="utf-8"))["exposures"]
# The schemas dbt builds (generate_schema_name: a model's schema is its +schema); a dataset's SQL names them.
DBT_SCHEMAS = ("marts", "intermediate", "staging", "seeds")
URL = re.compile(r"^http://127\.0\.0\.1:\{\{ env_var\('CHISO_SUPERSET_PORT', '8088'\) \}\}"
                 r"/superset/dashboard/(?P<slug>[a-z0-9-]+)/$")


def _load(kind: str) -> dict[str, dict]:
    return {a["uuid"]: a for a in (yaml.safe_load(p.read_text(encoding="utf-8"))
                                   for p in sorted((ASSETS_DIR / kind).rglob("*.yaml")))}


CHARTS, DATASETS, DASHBOARDS = _load("charts"), _load("datasets"), _load("dashboards")


def _tables(dataset: dict) -> set[str]:
    """The dbt relations a dataset reads: its table, or the schema-qualified names in its SQL."""
    if not dataset.get("sql"):
        assert dataset["schema"] in DBT_SCHEMAS, dataset["table_name"]
        return {dataset["table_name"]}
    found = set(re.findall(rf"\b(?:{'|'.join(DBT_SCHEMAS)})\.(\w+)\b", dataset["sql"]))
    assert found, f"virtual dataset {dataset['table_name']} names no dbt schema-qualified table"
    return found


def _read_by(dashboard: dict) -> set[str]:
    charts = [item["meta"]["uuid"] for item in dashboard["position"].values()
              if isinstance(item, dict) and item.get("type") == "CHART"]
    datasets = {CHARTS[uuid]["dataset_uuid"] for uuid in charts}
    filters = dashboard["metadata"].get("native_filter_configuration", [])
    datasets |= {target["datasetUuid"] for native in filters for target in native["targets"]
                 if "datasetUuid" in target}
    return set().union(*(_tables(DATASETS[uuid]) for uuid in datasets))


def _refs(exposure: dict) -> set[str]:
    refs = [re.fullmatch(r"ref\('(\w+)'\)", dep) for dep in exposure["depends_on"]]
    assert all(refs), exposure["depends_on"]
    assert len(refs) == len({r[1] for r in refs}), f"{exposure['name']}: a ref twice"
    return {r[1] for r in refs}


def _by_slug() -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for exposure in EXPOSURES:
        match = URL.match(exposure["url"])
        assert match, exposure["url"]
        found.setdefault(match["slug"], []).append(exposure)
    return found


def test_one_exposure_per_dashboard_and_none_other() -> None:
    by_slug = _by_slug()
    assert set(by_slug) == {d["slug"] for d in DASHBOARDS.values()}
    assert {slug: len(found) for slug, found in by_slug.items() if len(found) != 1} == {}
    assert len({e["name"] for e in EXPOSURES}) == len(EXPOSURES)


@pytest.mark.parametrize("slug", sorted(d["slug"] for d in DASHBOARDS.values()))
def test_exposure_depends_on_what_the_dashboard_reads(slug: str) -> None:
    dashboard = next(d for d in DASHBOARDS.values() if d["slug"] == slug)
    (exposure,) = _by_slug()[slug]
    assert exposure["type"] == "dashboard"
    assert exposure["label"] == dashboard["dashboard_title"]
    assert exposure["maturity"] in ("high", "medium", "low")
    # a role, no person: a placeholder address
    assert exposure["owner"]["name"] and exposure["owner"]["email"].endswith("@example.vn")
    assert exposure["description"].strip()
    assert _refs(exposure) == _read_by(dashboard)


def test_every_table_read_is_a_dbt_model() -> None:
    models = {p.stem for p in (DBT_PROJECT_DIR / "models").rglob("*.sql")}
    read = set().union(*(_read_by(d) for d in DASHBOARDS.values()))
    assert read - models == set()
