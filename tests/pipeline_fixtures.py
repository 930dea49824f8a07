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


# The synthetic province the warehouse tests and dashboards read: the sandboxes' clock fixed at the end of the
# national window, dossiers from well before it, so months, days and the official scores all overlap. At the
# window's end exactly, the provincial extract holds every dossier as the sandboxes show it (a later clock
# would leave out the dossiers changed after midnight), like the S1 sandbox that scores them (same clock).
PROVINCE_AS_OF = "2026-10-01T00:00:00+07:00"
PROVINCE_SCALE = {"dossiers_per_day": 400, "history_days": 75, "as_of": PROVINCE_AS_OF}


@pytest.fixture(scope="session")
def warehouse_pipeline(national_pipeline, landing_dir) -> tuple[date, date]:
    """The whole night over the window: the national DAG (above), the provincial DAG against in-process
    S2-S4 sandboxes, then the warehouse DAG (dbt build of every mart, gates, docs) and the reconciliation
    DAG."""
    from ingestion.orchestration import DAGS, run_dag
    from ingestion.sandbox.provincial import serve_centres, serve_dossiers, serve_feedback

    saved = {k: os.environ.get(k) for k in ("CHISO_DOSSIERS_BASE_URL", "CHISO_FEEDBACK_BASE_URL",
                                            "CHISO_CENTRES_BASE_URL")}
    try:
        with (serve_dossiers(**PROVINCE_SCALE) as d, serve_feedback(**PROVINCE_SCALE) as f,
              serve_centres(**PROVINCE_SCALE) as c):
            for name, url in (("DOSSIERS", d), ("FEEDBACK", f), ("CENTRES", c)):
                os.environ[f"CHISO_{name}_BASE_URL"] = url
            run_dag(DAGS["provincial"], *national_pipeline, logical_date=LOGICAL_DATE)
        run_dag(DAGS["warehouse"], *national_pipeline, logical_date=LOGICAL_DATE)
        run_dag(DAGS["reconciliation"], *national_pipeline, logical_date=LOGICAL_DATE)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return national_pipeline
