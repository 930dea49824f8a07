"""Run the project's Airflow DAGs locally: the environment Airflow needs, its metadata database, an
in-process DAG run (`chiso pipeline run`), and Airflow as a service (`chiso airflow up`): api-server,
scheduler, dag-processor and triggerer, on LocalExecutor, or CeleryExecutor with a Redis broker and Celery
workers (CHISO_AIRFLOW_EXECUTOR=celery)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date

from ingestion import clock
from ingestion.config import PROJECT_ROOT, credentials, settings

# The DAGs `chiso pipeline run` runs, in the order a night runs them.
DAGS = {"provincial": "chiso_provincial_ingest", "national": "chiso_national_index",
        "warehouse": "chiso_warehouse", "reconciliation": "chiso_index_reconciliation"}


class PipelineFailed(RuntimeError):
    pass


def airflow_environ(in_process: bool = True) -> dict[str, str]:
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
        "AIRFLOW__CORE__FERNET_KEY": credentials()["airflow_fernet_key"],
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(settings().log_dir / "airflow"),
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
        "AIRFLOW__COSMOS__CACHE_DIR": str(settings().home / "cosmos-cache"),
        "CHISO_DBT_MANIFEST": str(manifest_path()),
        "DO_NOT_TRACK": "1",
        "SCARF_ANALYTICS": "false",
    }
    env.update(dbt_env())
    if in_process:  # fail fast with the log's path; a scheduler keeps the DAGs' retries and backoff
        env["CHISO_TASK_RETRIES"] = os.environ.get("CHISO_TASK_RETRIES", "0")
    return env


def airflow_bin() -> str:
    """The `airflow` program of this environment (the venv chiso runs from)."""
    return os.path.join(os.path.dirname(sys.executable), "airflow")


def _airflow(args: list[str], env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([airflow_bin(), *args], env={**os.environ, **env}, check=check, text=True,
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


# --- Airflow as a service ------------------------------------------------------------------------------

SERVICE_USER = "admin"  # the Simple auth manager's one login (role admin)


def celery() -> bool:
    """CeleryExecutor when CHISO_AIRFLOW_EXECUTOR=celery, or when Airflow's own variable says so."""
    return (settings().airflow_executor.lower() == "celery"
            or "celery" in os.environ.get("AIRFLOW__CORE__EXECUTOR", "").lower())


def base_url() -> str:
    return f"http://127.0.0.1:{settings().airflow_port}"


def service_ports() -> dict[str, int]:
    """The ports next to the api-server's: scheduler health check, the log servers, one per Celery worker."""
    port = settings().airflow_port
    return {"scheduler-health": port + 1, "task-logs": port + 2, "triggerer-logs": port + 3,
            **{f"worker-{i}": port + 10 + i for i in range(1, settings().airflow_workers + 1)}}


def service_environ() -> dict[str, str]:
    """airflow_environ() for long-running services; an AIRFLOW__* variable the user set wins."""
    creds, ports = credentials(), service_ports()
    passwords = settings().home / "airflow" / "simple_auth_manager_passwords.json"
    passwords.parent.mkdir(parents=True, exist_ok=True)
    passwords.write_text(json.dumps({SERVICE_USER: creds["airflow_admin"]}))
    passwords.chmod(0o600)
    env = {
        **airflow_environ(in_process=False),
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor" if celery() else "LocalExecutor",
        # the schedule is the product: the DAGs run once parsed, without a click in the UI
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{SERVICE_USER}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{base_url()}/execution/",
        "AIRFLOW__API__BASE_URL": base_url(),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(settings().airflow_port),
        "AIRFLOW__API__SECRET_KEY": creds["airflow_secret_key"],
        "AIRFLOW__API_AUTH__JWT_SECRET": creds["airflow_jwt_secret"],
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "True",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(ports["scheduler-health"]),
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(ports["task-logs"]),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(ports["triggerer-logs"]),
    }
    # task slots: the cores, per worker (a dbt model is one task; more at once only thrash a small machine)
    slots = settings().airflow_worker_concurrency
    env["AIRFLOW__CORE__PARALLELISM"] = str(slots * (settings().airflow_workers if celery() else 1))
    if celery():
        env["AIRFLOW__CELERY__BROKER_URL"] = f"redis://127.0.0.1:{settings().redis_port}/0"
        env["AIRFLOW__CELERY__WORKER_CONCURRENCY"] = str(settings().airflow_worker_concurrency)
    env.update({k: v for k, v in os.environ.items() if k.startswith("AIRFLOW__")})
    return env


def worker_hostname() -> str:
    """Airflow's hostname_callable on a Celery worker: its Celery node name (worker-1@host), so the task
    instances say which worker ran them even when several run on one machine."""
    import socket

    name = os.environ.get("CHISO_AIRFLOW_WORKER_NAME")
    return f"{name}@{socket.getfqdn()}" if name else socket.getfqdn()


def _services() -> list[tuple[str, list[str], int | None, dict[str, str]]]:
    """(name, command, port it listens on, extra variables) of every process `chiso airflow up` starts."""
    import shutil

    airflow = airflow_bin()
    ports = service_ports()
    # The api-server first: tasks report to its execution API from their first second. The scheduler last,
    # once there is somewhere to run what it queues.
    procs = [("airflow-api-server", [airflow, "api-server", "--workers", "1"], settings().airflow_port, {}),
             ("airflow-triggerer", [airflow, "triggerer"], ports["triggerer-logs"], {}),
             ("airflow-dag-processor", [airflow, "dag-processor"], None, {})]
    if celery():
        redis = shutil.which("redis-server") or "/usr/bin/redis-server"
        if not os.path.exists(redis):
            raise PipelineFailed("redis-server is not installed (scripts/install-system.sh installs it)")
        data = settings().home / "redis"
        data.mkdir(parents=True, exist_ok=True)
        procs.insert(0, ("redis", [redis, "--bind", "127.0.0.1", "--port", str(settings().redis_port),
                                   "--dir", str(data), "--save", "", "--appendonly", "no"],
                         settings().redis_port, {}))
        queues = settings().airflow_worker_queues
        for i in range(1, settings().airflow_workers + 1):
            name = f"worker-{i}"
            procs.append((f"airflow-{name}", [airflow, "celery", "worker", "--celery-hostname", f"{name}@%h",
                                               "--queues", queues[(i - 1) % len(queues)]], ports[name],
                          {"CHISO_AIRFLOW_WORKER_NAME": name,
                           "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(ports[name]),
                           "AIRFLOW__CORE__HOSTNAME_CALLABLE": "ingestion.orchestration.worker_hostname"}))
    procs.append(("airflow-scheduler", [airflow, "scheduler"], ports["scheduler-health"], {}))
    return procs


def service_names() -> list[str]:
    """Every service `chiso airflow up` may have started, whatever the executor is now."""
    workers = [f"airflow-worker-{i}" for i in range(1, max(settings().airflow_workers, 8) + 1)]
    return ["airflow-api-server", "airflow-triggerer", "airflow-dag-processor", "airflow-scheduler",
            *workers, "redis"]


def up() -> str:
    """Start the services that do not run yet (idempotent); returns the UI's URL."""
    from ingestion import services
    from ingestion.transform import compile_manifest

    env = service_environ()
    ensure_metadata(env)
    result = _airflow(["pools", "set", settings().dbt_pool, "1", "dbt, one node at a time across the DAGs"
                       " (they share models)"], env, check=False)
    if result.returncode != 0:
        raise PipelineFailed(f"airflow pools set failed: {result.stderr.strip().splitlines()[-1:]}")
    compile_manifest()  # the dbt task groups are rendered from the manifest at parse time
    for name, cmd, port, extra in _services():
        services.start(name, cmd, port, {**env, **extra}, timeout=180)
    return base_url()


def down() -> list[str]:
    from ingestion import services

    return [name for name in service_names() if services.stop(name, timeout=30)]


def status() -> dict[str, int | None]:
    from ingestion import services

    return {name: services.pid_of(name) for name in service_names() if services.pid_of(name)}


def login() -> tuple[str, str]:
    return SERVICE_USER, credentials()["airflow_admin"]


def api_client(timeout: float = 30):
    """An httpx client on Airflow's REST API (/api/v2) with a JWT from /auth/token."""
    import httpx

    user, password = login()
    token = httpx.post(f"{base_url()}/auth/token", json={"username": user, "password": password},
                       timeout=timeout)
    token.raise_for_status()
    return httpx.Client(base_url=f"{base_url()}/api/v2", timeout=timeout,
                        headers={"Authorization": f"Bearer {token.json()['access_token']}"})


def trigger(client, dag_id: str, conf: dict | None = None) -> str:
    """Trigger a run through the REST API (the scheduler runs it); returns its run id."""
    response = client.post(f"/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf or {}})
    if response.status_code >= 400:
        raise PipelineFailed(f"could not trigger {dag_id}: {response.status_code} {response.text[:200]}")
    return response.json()["dag_run_id"]


def finished(client, dag_id: str, run_id: str) -> dict | None:
    """The run once it succeeded, None while it runs; raises when it failed."""
    run = client.get(f"/dags/{dag_id}/dagRuns/{run_id}").raise_for_status().json()
    if run["state"] == "failed":
        ui = str(client.base_url).rstrip("/").removesuffix("/api/v2")
        raise PipelineFailed(f"{dag_id} run {run_id} failed; see {ui}/dags/{dag_id}/runs/{run_id}")
    return run if run["state"] == "success" else None


def started_by(client, dag_id: str, source_run_id: str) -> dict | None:
    """The run of `dag_id` that the asset events of `source_run_id` started, once it succeeded."""
    runs = client.get(f"/dags/{dag_id}/dagRuns", params={"order_by": "-run_after", "limit": 20})
    for run in runs.raise_for_status().json()["dag_runs"]:
        events = client.get(f"/dags/{dag_id}/dagRuns/{run['dag_run_id']}/upstreamAssetEvents").json()
        if any(e["source_run_id"] == source_run_id for e in events["asset_events"]):
            return finished(client, dag_id, run["dag_run_id"])
    return None


def wait(what: str, done, timeout: float = 3600):
    """Poll done() until it returns something true."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := done():
            return value
        time.sleep(3)
    raise PipelineFailed(f"{what}: not done within {timeout:.0f} s; see {base_url()}")
