"""Every dataset of the Superset bundle declares its row-level security (superset/security.yaml): its unit
column, which it must have, or province-wide with the reason. Checked on the bundle as it is imported (the
datasets documented from the dbt models' YAML), without a server; and the checks refuse what they should."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ingestion import superset, superset_rls
from ingestion.superset_rls import (
    NO_ROWS,
    Declaration,
    RlsError,
    Unit,
    check_bundle,
    clause,
    load_declarations,
)

MODELS = Path(superset.PROJECT_ROOT) / "dbt_project" / "models" / "marts"


def _manifest_from_model_files() -> dict:
    """The part of a dbt manifest apply_dbt_docs reads, from the marts' YAML files (no dbt parse)."""
    nodes = {}
    for path in sorted(MODELS.rglob("*.yml")):
        for model in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("models") or []:
            nodes[f"model.chiso.{model['name']}"] = {
                "resource_type": "model", "name": model["name"], "schema": "marts",
                "description": model.get("description"), "meta": {}, "config": model.get("config") or {},
                "columns": {c["name"]: {"name": c["name"], "data_type": c.get("data_type"), "meta": {},
                                        "description": c.get("description"), "config": c.get("config") or {}}
                            for c in model.get("columns") or []}}
    return {"nodes": nodes}


DATASETS = {d["table_name"]: {c["column_name"] for c in d["columns"]}
            for d in superset.bundle_datasets(_manifest_from_model_files()).values()}
DECLARATIONS = load_declarations()


def test_every_dataset_declares_its_security() -> None:
    check_bundle(DATASETS, DECLARATIONS)
    assert set(DECLARATIONS) == set(DATASETS)
    for declaration in DECLARATIONS.values():
        assert declaration.unit_column or declaration.province_wide


def test_the_map_and_the_headline_are_unit_level() -> None:
    assert DECLARATIONS["daily_commune_map_today"].unit_column == "commune_code"
    assert DECLARATIONS["daily_commune_map_today"].unit_key == "statistics_code"
    headline = DECLARATIONS["daily_headline_today"]
    assert headline.unit_column == "unit_code" and headline.province_rows == (("unit_type", "province"),)


def test_no_dataset_with_units_rows_is_declared_province_wide() -> None:
    """A dataset with a unit or commune code column holds units' rows: province-wide would show them all."""
    wide = {t: cols & {"unit_code", "commune_code", "statistics_code"} for t, cols in DATASETS.items()
            if DECLARATIONS[t].province_wide}
    assert {t: cols for t, cols in wide.items() if cols} == {}


def test_a_dataset_without_a_declaration_is_refused() -> None:
    declarations = {t: d for t, d in DECLARATIONS.items() if t != "daily_commune_map_today"}
    with pytest.raises(RlsError, match="no row-level security declared for dataset.*daily_commune_map_today"):
        check_bundle(DATASETS, declarations)
    with pytest.raises(RlsError, match="no row-level security declared for dataset.*mart_new"):
        check_bundle({**DATASETS, "mart_new": {"unit_code"}}, DECLARATIONS)


def test_a_declared_column_the_dataset_lacks_is_refused() -> None:
    for wrong in (Declaration("daily_commune_map_today", unit_column="unit_code"),
                  Declaration("daily_headline_today", unit_column="unit_code",
                              province_rows=(("kind", "province"),))):
        with pytest.raises(RlsError, match=f"{wrong.table}.*does not have"):
            check_bundle(DATASETS, {**DECLARATIONS, wrong.table: wrong})


@pytest.mark.parametrize("entry", [
    None, {}, {"unit_column": "unit_code", "province_wide": "both"}, {"province_wide": "  "},
    {"province_wide": "public", "unit_key": "statistics_code"}, {"unit_column": "unit_code; drop table x"},
    {"unit_column": "unit_code", "province_rows": {"unit_type": "x' or '1'='1"}}, {"unit_col": "unit_code"},
])
def test_malformed_declarations_are_refused(tmp_path: Path, entry) -> None:
    path = tmp_path / "security.yaml"
    path.write_text(yaml.safe_dump({"datasets": {"mart_x": entry}}), encoding="utf-8")
    with pytest.raises(RlsError, match="mart_x"):
        load_declarations(path)


def test_one_unit_column_has_one_meaning(tmp_path: Path) -> None:
    path = tmp_path / "security.yaml"
    path.write_text(yaml.safe_dump({"datasets": {
        "a": {"unit_column": "code"}, "b": {"unit_column": "code", "unit_key": "statistics_code"}}}))
    with pytest.raises(RlsError, match="'code'"):
        load_declarations(path)


def test_a_units_clause_uses_the_datasets_column_and_the_units_value() -> None:
    commune = Unit("H15.27", "Xã Ea Tu", "commune", {"statistics_code": "24118"})
    agency = Unit("H15.113", "Sở Tư pháp", "agency", {"statistics_code": None})
    assert clause(commune.value("statistics_code"), "commune_code") == "commune_code = '24118'"
    assert clause(commune.value("unit_code")) == "unit_code = 'H15.27'"
    assert clause(agency.value("statistics_code"), "commune_code") == NO_ROWS  # not on the map: no row
    with pytest.raises(RlsError):
        clause("24118", "commune_code or 1=1")


def test_plan_refuses_an_undeclared_bundle_dataset_and_warns_for_a_hand_made_one(caplog) -> None:
    datasets = {1: ("mart_hotspots", {"unit_code"}), 2: ("made_by_hand", {"unit_code"}),
                3: ("mart_province_ranking", {"province_code"})}
    planned = superset_rls.plan(datasets, DECLARATIONS, bundle=set(DATASETS))
    assert planned.columns() == {("unit_code", "unit_code"): [1]}
    assert planned.province_wide == ["mart_province_ranking"]
    assert "made_by_hand" in caplog.text
    with pytest.raises(RlsError, match="made_by_hand"):
        superset_rls.plan(datasets, DECLARATIONS, bundle={*DATASETS, "made_by_hand"})
    with pytest.raises(RlsError, match="daily_commune_map_today.*commune_code"):
        superset_rls.plan({4: ("daily_commune_map_today", {"unit_code"})}, DECLARATIONS, bundle=set(DATASETS))
