"""The KPI warehouse: dbt builds dimensions, facts, the service index per unit and day, and the data-quality
marts (Cosmos, from the compiled manifest), then writes the dbt docs.

Scheduled on the assets the provincial ingest DAG updates: it runs once all three sources have landed.
The national slice (mart_province_ranking, mart_unit_official_scores) is the national DAG's, behind its own
gates, and is left out here.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pendulum
from airflow.sdk import DAG, Asset, get_current_context, task
from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
from cosmos.constants import InvocationMode, LoadMode

DBT_PROJECT = Path(__file__).resolve().parent.parent / "dbt_project"
DBT_MANIFEST = Path(os.environ.get("CHISO_DBT_MANIFEST", DBT_PROJECT / "target" / "manifest.json"))
WAREHOUSE = Asset("chiso://marts/warehouse")

with DAG(
    dag_id="chiso_warehouse",
    description="dbt: dims, facts, service index per unit and day, data quality; dbt docs",
    schedule=(Asset("chiso://raw/dossiers") & Asset("chiso://raw/feedback") & Asset("chiso://raw/centres")),
    start_date=pendulum.datetime(2026, 1, 1, tz="Asia/Ho_Chi_Minh"),
    catchup=False,
    max_active_runs=1,
    default_args={
        "retries": int(os.environ.get("CHISO_TASK_RETRIES", "1")),
        "retry_delay": timedelta(minutes=5),
        "retry_exponential_backoff": True,
    },
    tags=["chiso", "warehouse", "dbt"],
    doc_md=__doc__,
) as dag:
    transform = DbtTaskGroup(
        group_id="dbt",
        project_config=ProjectConfig(dbt_project_path=DBT_PROJECT, manifest_path=DBT_MANIFEST,
                                     install_dbt_deps=False),
        profile_config=ProfileConfig(
            profile_name="chiso", target_name="chiso", profiles_yml_filepath=DBT_PROJECT / "profiles.yml"
        ),
        render_config=RenderConfig(
            load_method=LoadMode.DBT_MANIFEST,
            exclude=["mart_province_ranking", "mart_unit_official_scores"],
            should_detach_multiple_parents_tests=True,
        ),
        execution_config=ExecutionConfig(invocation_mode=InvocationMode.DBT_RUNNER),
        default_args={"retries": 0},
    )

    @task(outlets=[WAREHOUSE])
    def docs() -> str:
        from ingestion.config import settings
        from ingestion.transform import run_dbt

        target = settings().home / "dbt-docs"
        run_dbt(["docs", "generate", "--target-path", str(target)],
                pipeline_run=get_current_context()["run_id"])
        return str(target / "index.html")

    transform >> docs()
