"""dbt_project/selectors.yml, the slices the DAGs build, as dbt and as Python (ingestion.transform) read it:
`dbt ls --selector` for each slice (offline: dbt ls parses, it never connects), against the Python lists and
against what Cosmos renders from the same manifest with those lists (ingestion.dbt_cosmos). Also lists the
exposures (models/exposures.yml; their content is checked against Superset in test_dbt_exposures.py).

One target folder for all the dbt runs, so only the first parses the whole project (~20 s in all)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ingestion import pg, transform
from ingestion.config import PROJECT_ROOT

DBT = Path(sys.executable).with_name("dbt")
SLICES = ("national", "reconciliation", "warehouse")
BUILT = ("model", "seed")  # what Cosmos renders as tasks here (tests run inside them: TestBehavior.BUILD)


def _offline_env() -> dict[str, str]:
    """The environment a DAG's dbt gets (transform.dbt_env()), here without a server: the profile renders on
    its defaults, which dbt ls and parse never use."""
    def no_server(*args, **kwargs):
        raise pg.PostgresError("no server in a unit test")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pg, "url", no_server)
        return {**os.environ, **transform.dbt_env()}


@pytest.fixture(scope="module")
def dbt(tmp_path_factory: pytest.TempPathFactory) -> dict:
    target, logs = tmp_path_factory.mktemp("dbt-target"), tmp_path_factory.mktemp("dbt-logs")
    env = _offline_env()

    def ls(*args: str) -> list[dict]:
        cmd = [str(DBT), "ls", "--quiet", "--no-use-colors", "--target-path", str(target),
               "--log-path", str(logs), "--output", "json", "--output-keys", "unique_id", "name",
               "resource_type", "label", "url", "depends_on", *args]
        result = subprocess.run(cmd, cwd=transform.DBT_PROJECT_DIR, env=env, capture_output=True, text=True,
                                timeout=180)
        assert result.returncode == 0, (cmd, result.stdout[-2000:], result.stderr[-2000:])
        return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]

    listed = {"all": ls("--resource-type", *BUILT)}
    for name in SLICES:
        listed[name] = ls("--selector", name, "--resource-type", *BUILT)
    listed["exposures"] = ls("--resource-type", "exposure")
    return {"listed": listed, "manifest": target / "manifest.json"}


def _names(nodes: list[dict], resource_type: str = "model") -> set[str]:
    return {n["name"] for n in nodes if n["resource_type"] == resource_type}


def test_the_slices_cover_every_model_and_share_only_the_national_marts_parents(dbt) -> None:
    listed = dbt["listed"]
    models = {name: _names(listed[name]) for name in ("all", *SLICES)}
    assert len(models["all"]) > 40  # the project, not an empty parse
    assert models["national"] | models["reconciliation"] | models["warehouse"] == models["all"]
    assert not models["reconciliation"] & (models["national"] | models["warehouse"])
    # Each mart is built by exactly one DAG; what the national marts are built from (the DVCQG staging views,
    # int_dvcqg__home_units) by the national DAG and the warehouse DAG both, on purpose (dbt_project.yml).
    shared = models["national"] & models["warehouse"]
    assert shared == models["national"] - set(transform.NATIONAL_MARTS), shared
    assert all(not name.startswith(("mart_", "fct_", "dim_")) for name in shared), shared
    assert {name for name in models["all"] if sum(name in models[s] for s in SLICES) != 1} == shared


def test_the_python_names_are_the_selectors(dbt) -> None:
    listed = dbt["listed"]
    national = _names(listed["national"])
    assert set(transform.NATIONAL_MARTS) == {"mart_province_ranking", "mart_unit_official_scores",
                                              "mart_province_group_scores"}
    assert set(transform.NATIONAL_MARTS) <= national
    assert {n for n in national if n.startswith("mart_")} == set(transform.NATIONAL_MARTS)
    assert _names(listed["reconciliation"]) == set(transform.RECONCILIATION_MARTS)
    assert set(transform.WAREHOUSE_EXCLUDES) == {*transform.NATIONAL_MARTS, *transform.RECONCILIATION_MARTS}
    assert _names(listed["all"]) - _names(listed["warehouse"]) == set(transform.WAREHOUSE_EXCLUDES)


@pytest.mark.parametrize("name", SLICES)
def test_cosmos_renders_the_selectors_nodes(dbt, name: str) -> None:
    """The lists ingestion.dbt_cosmos passes Cosmos select from the manifest what `dbt ls --selector` does."""
    from cosmos.config import ExecutionConfig, ProjectConfig, RenderConfig
    from cosmos.constants import LoadMode
    from cosmos.dbt.graph import DbtGraph

    selection = transform.SELECTIONS[name]
    graph = DbtGraph(project=ProjectConfig(dbt_project_path=transform.DBT_PROJECT_DIR,
                                           manifest_path=dbt["manifest"]),
                     render_config=RenderConfig(load_method=LoadMode.DBT_MANIFEST,
                                                select=list(selection.select),
                                                exclude=list(selection.exclude)),
                     execution_config=ExecutionConfig(dbt_project_path=transform.DBT_PROJECT_DIR))
    graph.load(method=LoadMode.DBT_MANIFEST)
    rendered = {uid for uid, node in graph.filtered_nodes.items() if node.resource_type.value in BUILT}
    assert rendered == {n["unique_id"] for n in dbt["listed"][name]}


def test_every_dag_builds_a_selector_by_name() -> None:
    """The DAG files name their selector; none spells out models or select lists of its own."""
    dags = PROJECT_ROOT / "dags"
    calls = {path.name: path.read_text(encoding="utf-8") for path in sorted(dags.glob("*.py"))
             if "dbt_task_group(" in path.read_text(encoding="utf-8")}
    assert calls.keys() == {"chiso_national_index.py", "chiso_warehouse.py", "chiso_index_reconciliation.py"}
    for path, text in calls.items():
        assert 'dbt_task_group(selector="' in text, path
        assert "select=" not in text and "exclude=" not in text, path


def test_the_selectors_file_keeps_to_the_shape_python_reads(tmp_path: Path) -> None:
    assert set(transform.SELECTIONS) == set(SLICES)
    bad = {"selectors": [{"name": "x", "definition": {"method": "tag", "value": "national"}}]}
    (tmp_path / "selectors.yml").write_text(yaml.safe_dump(bad))
    with pytest.raises(ValueError, match="only `method: fqn`"):
        transform.read_selectors(tmp_path / "selectors.yml")


def test_dbt_lists_an_exposure_per_dashboard(dbt) -> None:
    exposures = {n["name"]: n for n in dbt["listed"]["exposures"]}
    on_disk = yaml.safe_load((transform.DBT_PROJECT_DIR / "models" / "exposures.yml").read_text("utf-8"))
    assert set(exposures) == {e["name"] for e in on_disk["exposures"]}
    for exposure in exposures.values():
        assert exposure["url"].startswith("http://127.0.0.1:"), exposure["url"]  # the env_var rendered
        assert exposure["depends_on"]["nodes"], exposure["name"]
