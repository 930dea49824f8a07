"""Settings read from the environment (prefix CHISO_); .env.example lists every variable."""

from __future__ import annotations

import base64
import json
import os
import secrets
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(f"CHISO_{name}")
    return value if value not in (None, "") else default


# Each source's sandbox port (`chiso up` serves them there); a source's base URL defaults to its sandbox.
SANDBOX_PORTS = {"dvcqg": 8701, "dossiers": 8702, "feedback": 8703, "centres": 8704}


def sandbox_port(source: str) -> int:
    return int(_env(f"SANDBOX_{source.upper()}_PORT", str(SANDBOX_PORTS[source])))


def http_timeout(source: str) -> float:
    """Seconds a call to `source` may take: CHISO_<SOURCE>_HTTP_TIMEOUT, else CHISO_HTTP_TIMEOUT (30 s). The
    national portal answers its monthly reports slower than the provincial systems their pages."""
    return float(_env(f"{source.upper()}_HTTP_TIMEOUT") or settings().http_timeout)


def _base_url(source: str) -> str:
    host = _env("SANDBOX_HOST", "127.0.0.1")
    return _env(f"{source.upper()}_BASE_URL", f"http://{host}:{sandbox_port(source)}")


@dataclass(frozen=True)
class Settings:
    # Where git-ignored state lives: the private Postgres, landing files, logs, Airflow home.
    home: Path = field(default_factory=lambda: Path(_env("HOME_DIR", str(PROJECT_ROOT / ".chiso"))))
    # A configured URL (owner/admin rights) means "use that server"; none means "start our own".
    warehouse_url: str | None = field(default_factory=lambda: _env("WAREHOUSE_URL"))
    pg_port: int = field(default_factory=lambda: int(_env("PG_PORT", "0")))
    warehouse_db: str = field(default_factory=lambda: _env("WAREHOUSE_DB", "chiso"))
    # The province this deployment serves: DVCQG department code and statistics-office code.
    province_dvcqg_code: str = field(default_factory=lambda: _env("PROVINCE_DVCQG_CODE", "H15"))
    province_code: str = field(default_factory=lambda: _env("PROVINCE_CODE", "66"))
    dvcqg_base_url: str = field(default_factory=lambda: _base_url("dvcqg"))
    dvcqg_page_size: int = field(default_factory=lambda: int(_env("DVCQG_PAGE_SIZE", "50")))
    http_timeout: float = field(default_factory=lambda: float(_env("HTTP_TIMEOUT", "30")))
    http_max_tries: int = field(default_factory=lambda: int(_env("HTTP_MAX_TRIES", "6")))
    http_backoff_base: float = field(default_factory=lambda: float(_env("HTTP_BACKOFF_BASE", "1.0")))
    http_backoff_max: float = field(default_factory=lambda: float(_env("HTTP_BACKOFF_MAX", "60")))
    sandbox_host: str = field(default_factory=lambda: _env("SANDBOX_HOST", "127.0.0.1"))
    dossiers_base_url: str = field(default_factory=lambda: _base_url("dossiers"))
    dossiers_client_id: str = field(default_factory=lambda: _env("DOSSIERS_CLIENT_ID", "chiso"))
    feedback_base_url: str = field(default_factory=lambda: _base_url("feedback"))
    feedback_client_id: str = field(default_factory=lambda: _env("FEEDBACK_CLIENT_ID", "chiso"))
    centres_base_url: str = field(default_factory=lambda: _base_url("centres"))
    provincial_page_size: int = field(default_factory=lambda: int(_env("PROVINCIAL_PAGE_SIZE", "1000")))
    # What a timed list (S2 dossiers, S3 feedback and ratings) holds for a window, for the completeness
    # check: "versions" (default; the contract: a record "is sent whole each time it changes", so every
    # version changed in the window is listed and counted) or "latest" (each record once, as it is now:
    # the check then counts distinct ids, which is stricter for such a server).
    provincial_listing: str = field(default_factory=lambda: _env("PROVINCIAL_LISTING", "versions"))
    sandbox_dvcqg_port: int = field(default_factory=lambda: sandbox_port("dvcqg"))
    superset_port: int = field(default_factory=lambda: int(_env("SUPERSET_PORT", "8088")))
    superset_admin_user: str = field(default_factory=lambda: _env("SUPERSET_ADMIN_USER", "admin"))
    # Schema the mart GX suites validate (dbt builds it); tests point it at a scratch schema.
    mart_schema: str = field(default_factory=lambda: _env("MART_SCHEMA", "marts"))
    # Superset runs from its own venv; a secret key is generated once into .chiso/superset when unset.
    superset_venv: Path = field(default_factory=lambda: Path(_env("SUPERSET_VENV",
                                                                  str(PROJECT_ROOT / ".venv-superset"))))
    superset_workers: int = field(default_factory=lambda: int(_env("SUPERSET_WORKERS", "2")))
    # Airflow as a service (`chiso airflow up`): LocalExecutor by default, or Celery workers on Redis.
    airflow_executor: str = field(default_factory=lambda: _env("AIRFLOW_EXECUTOR", "local"))
    airflow_port: int = field(default_factory=lambda: int(_env("AIRFLOW_PORT", "8080")))
    airflow_workers: int = field(default_factory=lambda: int(_env("AIRFLOW_WORKERS", "2")))
    # Celery worker i serves the i-th queue list (cycled): extraction on one worker, dbt on the other.
    airflow_worker_queues: tuple[str, ...] = field(default_factory=lambda: tuple(
        _env("AIRFLOW_WORKER_QUEUES", "default,extract;default,dbt").split(";")))
    # Task slots per Celery worker (and dbt's models in parallel on it): default, the machine's cores.
    airflow_worker_concurrency: int = field(default_factory=lambda: int(_env(
        "AIRFLOW_WORKER_CONCURRENCY", str(os.cpu_count() or 2))))
    redis_port: int = field(default_factory=lambda: int(_env("REDIS_PORT", "6379")))
    # Celery queues that place extraction and dbt on different workers (LocalExecutor ignores them).
    extract_queue: str = field(default_factory=lambda: _env("AIRFLOW_EXTRACT_QUEUE", "extract"))
    dbt_queue: str = field(default_factory=lambda: _env("AIRFLOW_DBT_QUEUE", "dbt"))
    # The Airflow pool (one slot) every dbt task of every DAG runs in: the national and warehouse DAGs build
    # shared models, and two dbt invocations rebuilding one relation at once fail each other.
    dbt_pool: str = field(default_factory=lambda: _env("AIRFLOW_DBT_POOL", "chiso_dbt"))

    @property
    def landing_dir(self) -> Path:
        return Path(_env("LANDING_DIR", str(self.home / "landing")))

    @property
    def pg_dir(self) -> Path:
        return self.home / "pg"

    @property
    def log_dir(self) -> Path:
        return self.home / "logs"


@cache
def settings() -> Settings:
    return Settings()


# Secrets: each from its environment variable, else generated once and kept (mode 600) in
# <home>/credentials.json, so a local deployment works without any secret in git.
SECRETS = {
    "admin": "CHISO_ADMIN_PASSWORD",  # the private PostgreSQL's superuser
    "loader": "CHISO_LOADER_PASSWORD",
    "transform": "CHISO_TRANSFORM_PASSWORD",
    "reader": "CHISO_READER_PASSWORD",
    "airflow": "CHISO_AIRFLOW_PASSWORD",
    "airflow_admin": "CHISO_AIRFLOW_ADMIN_PASSWORD",  # the Airflow UI's admin login
    "airflow_jwt_secret": "CHISO_AIRFLOW_JWT_SECRET",  # shared by every Airflow process (task tokens)
    "airflow_secret_key": "CHISO_AIRFLOW_SECRET_KEY",  # the api-server's session key
    "airflow_fernet_key": "CHISO_AIRFLOW_FERNET_KEY",  # encrypts connection passwords in Airflow's metadata
    "superset": "CHISO_SUPERSET_PASSWORD",
    "superset_admin": "CHISO_SUPERSET_ADMIN_PASSWORD",
    "superset_secret_key": "CHISO_SUPERSET_SECRET_KEY",  # encrypts Superset's stored database passwords
    "dossiers_client_secret": "CHISO_DOSSIERS_CLIENT_SECRET",  # S2 OAuth client credentials
    "feedback_client_secret": "CHISO_FEEDBACK_CLIENT_SECRET",  # S3 OAuth client credentials
    "centres_api_key": "CHISO_CENTRES_API_KEY",  # S4 X-Api-Key
    "pii_salt": "CHISO_PII_SALT",  # salt of the applicant hash kept in staging
}


def credentials() -> dict[str, str]:
    path = settings().home / "credentials.json"
    stored = json.loads(path.read_text()) if path.exists() else {}
    changed = False
    for key, env in SECRETS.items():
        if os.environ.get(env):
            stored[key] = os.environ[env]
        elif key not in stored:
            # a Fernet key is 32 random bytes in url-safe base64; the others any url-safe text
            fernet = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
            stored[key] = fernet if key.endswith("fernet_key") else secrets.token_urlsafe(18)
            changed = True
    if changed:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(stored, indent=2))
        path.chmod(0o600)
    return stored


# --- what the DAG files share -------------------------------------------------------------------------


def schedule_args() -> dict:
    """start_date, end_date and catchup of the scheduled DAGs. Default: from 2026-01-01, no end, no catch-up
    (the scheduler starts with the latest night). CHISO_SCHEDULE_START/_END (ISO dates or moments, local
    time; the end is the last logical date scheduled, and a provincial night's is 01:00 the day before it
    runs) and CHISO_SCHEDULE_CATCHUP=true make the scheduler run every night in between, e.g. after a
    stop of several days, or a test's two nights."""
    import pendulum

    def moment(text: str):
        return pendulum.parse(text, tz="Asia/Ho_Chi_Minh")

    end = _env("SCHEDULE_END")
    return {"start_date": moment(_env("SCHEDULE_START", "2026-01-01")),
            "end_date": moment(end) if end else None,
            "catchup": _env("SCHEDULE_CATCHUP", "false").lower() in ("1", "true", "yes")}


def retry_args(retries: int, delay_minutes: float) -> dict:
    """A DAG's retries and first retry delay; CHISO_TASK_RETRIES and CHISO_TASK_RETRY_DELAY (seconds)
    override them (in-process runs set 0 retries: fail fast with the log's path)."""
    from datetime import timedelta

    delay = _env("TASK_RETRY_DELAY")
    return {"retries": int(_env("TASK_RETRIES", str(retries))),
            "retry_delay": timedelta(seconds=float(delay)) if delay else timedelta(minutes=delay_minutes)}
