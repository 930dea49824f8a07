"""Dataset docs from the dbt manifest (ingestion.superset.apply_dbt_docs) on a small manifest."""

from __future__ import annotations

from ingestion.superset import _model_docs, apply_dbt_docs

MANIFEST = {"nodes": {
    "model.chiso.mart_x": {
        "resource_type": "model", "name": "mart_x", "schema": "marts", "description": "Rows of x.",
        "meta": {}, "config": {"meta": {"label_vi": "X", "superset_metrics": [
            {"metric_name": "so_dong", "verbose_name": "Số dòng", "expression": "COUNT(*)"},
            {"metric_name": "tong", "verbose_name": "Tổng (dbt)", "expression": "SUM(v)"}]}},
        "columns": {
            "day": {"name": "day", "description": "The day.", "data_type": "date",
                    "meta": {}, "config": {"meta": {"label_vi": "Ngày"}}},
            "v": {"name": "v", "description": "A value.", "data_type": "numeric(7, 2)",
                  "meta": {"label_vi": "Giá trị"}, "config": {"meta": {}}},
        }},
    "model.chiso.stg_y": {"resource_type": "model", "name": "stg_y", "schema": "staging", "description": "y",
                          "meta": {}, "config": {"meta": {}}, "columns": {}},
    "seed.chiso.mart_z": {"resource_type": "seed", "name": "mart_z", "schema": "marts", "description": "z",
                          "meta": {}, "config": {"meta": {}}, "columns": {}},
}}


def test_physical_dataset_takes_description_columns_and_metrics() -> None:
    dataset = {"table_name": "mart_x", "schema": "marts", "sql": None, "description": "hand-written",
               "columns": [{"column_name": "v", "type": "NUMERIC", "groupby": False, "description": "old"},
                           {"column_name": "local_day", "verbose_name": "Ngày VN", "expression": "day"}],
               "metrics": [{"metric_name": "tong", "verbose_name": "Tổng (YAML)", "expression": "SUM(v)"}]}
    out = apply_dbt_docs(dataset, _model_docs(MANIFEST))
    assert out["description"] == "Rows of x."
    assert [c["column_name"] for c in out["columns"]] == ["day", "v", "local_day"]
    day, v, local = out["columns"]
    assert day == {"column_name": "day", "type": "DATE", "groupby": True, "filterable": True, "is_dttm": True,
                   "description": "The day.", "verbose_name": "Ngày"}
    assert v["description"] == "A value." and v["verbose_name"] == "Giá trị" and v["groupby"] is False
    assert local["verbose_name"] == "Ngày VN"  # Superset's own column is kept
    metrics = {m["metric_name"]: m for m in out["metrics"]}
    assert metrics["tong"]["verbose_name"] == "Tổng (YAML)"  # the YAML's metric of the same name wins
    assert metrics["so_dong"]["expression"] == "COUNT(*)" and metrics["so_dong"]["extra"] == {}


def test_virtual_dataset_names_its_model_and_keeps_its_description() -> None:
    dataset = {"table_name": "x_selected", "dbt_model": "mart_x", "schema": "marts", "sql": "select 1",
               "description": "The chosen period.", "columns": [], "metrics": []}
    out = apply_dbt_docs(dataset, _model_docs(MANIFEST))
    assert "dbt_model" not in out
    assert out["description"] == "The chosen period."
    assert [c["verbose_name"] for c in out["columns"]] == ["Ngày", "Giá trị"]


def test_datasets_without_a_marts_model_are_left_alone() -> None:
    for dataset in ({"table_name": "stg_y", "schema": "staging", "sql": None, "columns": []},
                    {"table_name": "mart_z", "schema": "marts", "sql": None, "columns": []},
                    {"table_name": "other", "schema": "marts", "sql": "select 1", "columns": []}):
        assert apply_dbt_docs(dict(dataset), _model_docs(MANIFEST)) == dataset
