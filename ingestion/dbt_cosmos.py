"""The dbt task group the DAGs share: one project, one profile, one compiled manifest (Cosmos renders it
with LoadMode.DBT_MANIFEST, so parsing a DAG file never runs dbt)."""

from __future__ import annotations

import os
from pathlib import Path

from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
from cosmos.constants import InvocationMode, LoadMode, TestBehavior

from ingestion.config import PROJECT_ROOT, settings
from ingestion.transform import SELECTIONS

DBT_PROJECT = PROJECT_ROOT / "dbt_project"


def dbt_task_group(*, selector: str) -> DbtTaskGroup:
    """Call inside a DAG with the name of its selector in dbt_project/selectors.yml. The manifest is compiled
    beforehand (`make manifest`, the runner, the deployment's init step) to CHISO_DBT_MANIFEST.

    Cosmos gets the selector as the --select/--exclude lists it stands for (ingestion.transform.SELECTIONS):
    its RenderConfig documents `selector=` for LoadMode.DBT_LS only, and the lists render the same nodes
    (tests/unit/test_dbt_selectors.py)."""
    selection = SELECTIONS[selector]
    manifest = Path(os.environ.get("CHISO_DBT_MANIFEST", DBT_PROJECT / "target" / "manifest.json"))
    return DbtTaskGroup(
        group_id="dbt",
        project_config=ProjectConfig(dbt_project_path=DBT_PROJECT, manifest_path=manifest,
                                     install_dbt_deps=False),
        profile_config=ProfileConfig(profile_name="chiso", target_name="chiso",
                                     profiles_yml_filepath=DBT_PROJECT / "profiles.yml"),
        # One `dbt build` per node (its tests with it: half the dbt invocations of run + test tasks); tests
        # that span two nodes (relationships) run once both exist, in a task of their own.
        render_config=RenderConfig(load_method=LoadMode.DBT_MANIFEST, select=list(selection.select),
                                   exclude=list(selection.exclude), test_behavior=TestBehavior.BUILD,
                                   should_detach_multiple_parents_tests=True),
        execution_config=ExecutionConfig(invocation_mode=InvocationMode.DBT_RUNNER),
        # a failed model is fixed in code, not by retrying; dbt runs on the workers of its queue, one node at
        # a time across DAGs (the pool, created by `chiso airflow up`)
        default_args={"retries": 0, "queue": settings().dbt_queue, "pool": settings().dbt_pool},
    )
