"""Run the project's Airflow DAGs locally: the environment Airflow needs, its metadata database, and an
in-process DAG run (`chiso pipeline run`), the same code the scheduler runs in a deployment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date

from ingestion import clock
from ingestion.config import PROJECT_ROOT, settings

# The DAGs `chiso pipeline run` runs, in the order a night runs them.
DAGS = {"provincial": "chiso_provincial_ingest", "national": "chiso_national_index",
        "warehouse": "chiso_warehouse"}


class PipelineFailed(RuntimeError):
    pass


def airflow_environ() -> dict[str, str]:
    """Variables for any Airflow process of this project (CLI, dags test, scheduler)."""
    from ingestion import pg
    from ingestion.transform import dbt_env, manifest_path

    home = settings().home / "airflow"
    env = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DEFAULT_TIMEZONE": "Asia/Ho_Chi_Minh",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": pg.url("airflow", db="airflow"),
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(settings().log_dir / "airflow"),
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
        "AIRFLOW__COSMOS__CACHE_DIR": str(settings().home / "cosmos-cache"),
        "CHISO_DBT_MANIFEST": str(manifest_path()),
        # In-process runs fail fast with the log's path; a scheduler keeps the DAGs' retries and backoff.
        "CHISO_TASK_RETRIES": os.environ.get("CHISO_TASK_RETRIES", "0"),
        "DO_NOT_TRACK": "1",
        "SCARF_ANALYTICS": "false",
    }
    env.update(dbt_env())
    return env


def _airflow(args: list[str], env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess:
    airflow = os.path.join(os.path.dirname(sys.executable), "airflow")
    return subprocess.run([airflow, *args], env={**os.environ, **env}, check=check, text=True,
                          capture_output=True)


def ensure_metadata(env: dict[str, str]) -> None:
    """Migrate Airflow's metadata database once; later calls find the schema current and return."""
    marker = settings().home / "airflow" / ".migrated"
    if marker.exists():
        return
    result = _airflow(["db", "migrate"], env, check=False)
    if result.returncode != 0:
        raise PipelineFailed(f"airflow db migrate failed: {result.stderr.strip().splitlines()[-1:]}")
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.touch()


def run_dag(dag_id: str, start: date | None, end: date | None, logical_date: date | None = None) -> str:
    """Run one DAG in-process with `airflow dags test`; returns the run's output, raises on failure."""
    from ingestion.transform import compile_manifest

    env = airflow_environ()
    ensure_metadata(env)
    compile_manifest()
    conf = {"start": start.isoformat() if start else None, "end": end.isoformat() if end else None}
    day = (logical_date or end or clock.today()).isoformat()
    log = settings().log_dir / f"{dag_id}-{day}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    result = _airflow(["dags", "test", dag_id, day, "-c", json.dumps(conf)], env, check=False)
    log.write_text(result.stdout + result.stderr)
    if result.returncode != 0 or "state=failed" in result.stdout + result.stderr:
        raise PipelineFailed(f"DAG {dag_id} failed for {conf}; see {log}")
    return result.stdout
