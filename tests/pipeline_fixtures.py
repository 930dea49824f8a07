"""Fixtures for tests that run the pipeline: Airflow's environment and a sandbox the DAG extracts from."""

from __future__ import annotations

import os
from datetime import date

import pytest

PIPELINE_WINDOW = (date(2026, 8, 1), date(2026, 9, 30))
LOGICAL_DATE = date(2026, 10, 1)


@pytest.fixture(scope="session")
def airflow_env(warehouse, dvcqg_server) -> dict[str, str]:
    """Airflow's variables for subprocesses, pointing the DAG at the test sandbox; metadata migrated."""
    from ingestion.orchestration import airflow_environ, ensure_metadata
    from ingestion.transform import compile_manifest

    os.environ["CHISO_DVCQG_BASE_URL"] = dvcqg_server
    os.environ["CHISO_TASK_RETRIES"] = "0"
    env = {**os.environ, **airflow_environ()}
    ensure_metadata(env)
    compile_manifest()
    return env


@pytest.fixture(scope="session")
def pipeline_window(airflow_env) -> tuple[date, date]:
    return PIPELINE_WINDOW


@pytest.fixture(scope="session")
def national_pipeline(pipeline_window) -> tuple[date, date]:
    """One real run of the national-index DAG (sandbox -> extract -> gates -> dbt -> publish)."""
    from ingestion.orchestration import run_dag

    run_dag("chiso_national_index", *pipeline_window, logical_date=LOGICAL_DATE)
    return pipeline_window
