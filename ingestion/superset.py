"""Superset as code: run Superset from its own venv and import the dashboards kept in superset/assets.

`up()` prepares the metadata database (migrations, admin user, roles: each only when needed, since every
Superset CLI call costs ~14 s), starts gunicorn on 127.0.0.1 in the background, waits for /health and
imports the asset bundle. A second `up()` finds the server healthy and only re-imports.
"""

from __future__ import annotations

import fcntl
import io
import json
import os
import re
import subprocess
import time
import zipfile
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx
import psycopg

from ingestion import pg, services, superset_rls
from ingestion.config import PROJECT_ROOT, credentials, settings

SUPERSET_DIR = PROJECT_ROOT / "superset"
ASSETS_DIR = SUPERSET_DIR / "assets"
CONFIG_FILE = SUPERSET_DIR / "superset_config.py"
DATABASE_FILE = "databases/chiso_warehouse.yaml"  # the bundle's only database: the read-only warehouse
READER_URL = "{{ reader_url }}"  # placeholder in DATABASE_FILE, filled at import time
PASSWORD_MASK = "XXXXXXXXXX"  # Superset's own mask; the real password travels in the `passwords` field
START_TIMEOUT = 240


class SupersetError(RuntimeError):
    pass


# --- paths, secrets, environment -----------------------------------------------------------------------


def _state_dir() -> Path:
    path = settings().home / "superset"
    path.mkdir(parents=True, exist_ok=True)
    return path


def log_file() -> Path:
    return services.log_file("superset")


def base_url() -> str:
    return f"http://127.0.0.1:{settings().superset_port}"


def _bin(name: str) -> Path:
    return settings().superset_venv / "bin" / name


def secret_key() -> str:
    """Superset's SECRET_KEY, which encrypts the stored database passwords: CHISO_SUPERSET_SECRET_KEY, else
    generated into credentials.json with the other secrets. An install that kept it in Superset's state
    folder (chiso before this) keeps that one."""
    legacy = _state_dir() / "secret_key"
    if "CHISO_SUPERSET_SECRET_KEY" not in os.environ and legacy.exists():
        return legacy.read_text().strip()
    return credentials()["superset_secret_key"]


def admin_login() -> tuple[str, str]:
    """The admin user and password (CHISO_SUPERSET_ADMIN_PASSWORD, else generated once)."""
    return settings().superset_admin_user, credentials()["superset_admin"]


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    env.update(SUPERSET_CONFIG_PATH=str(CONFIG_FILE), SUPERSET_HOME=str(_state_dir()), FLASK_APP="superset",
               CHISO_SUPERSET_METADATA_URL=pg.url("superset", db="superset", driver="postgresql+psycopg2"),
               CHISO_SUPERSET_SECRET_KEY=secret_key())
    return env


@contextmanager
def _lock(name: str):
    path = _state_dir() / f"{name}.lock"
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# --- metadata database -----------------------------------------------------------------------------------


def _cli(*args: str) -> None:
    log = log_file()
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as out:
        out.write(f"\n--- superset {args[0]} {args[1] if len(args) > 1 else ''}\n")
        out.flush()
        result = subprocess.run([str(_bin("superset")), *args], env=_environment(), stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=_state_dir())
    if result.returncode != 0:
        raise SupersetError(f"`superset {args[0]}` failed (exit {result.returncode}); see {log}")


def _migration_head() -> str | None:
    """The single head revision of the installed Superset's migrations (None if not exactly one)."""
    found = list(settings().superset_venv.glob("lib/python*/site-packages/superset/migrations/versions"))
    if not found:
        return None
    revisions, parents = set(), set()
    for path in found[0].glob("*.py"):
        text = path.read_text(encoding="utf-8")
        rev = re.search(r'^revision\s*=\s*"([^"]+)"', text, re.M)
        down = re.search(r"^down_revision\s*=\s*(.+)$", text, re.M)
        if rev:
            revisions.add(rev.group(1))
        if down:
            parents.update(re.findall(r'"([^"]+)"', down.group(1)))
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def _metadata_query(query: str, params: tuple = ()) -> list[tuple]:
    try:
        with pg.connect("superset", db="superset") as conn:
            return conn.execute(query, params).fetchall()
    except psycopg.errors.UndefinedTable:
        return []


def _prepare_metadata() -> None:
    """Migrate, create the admin and sync roles, each only when the metadata database needs it."""
    current = _metadata_query("select version_num from alembic_version")
    head = _migration_head()
    migrated = not (head and current == [(head,)])
    if migrated:
        _cli("db", "upgrade")
    user, password = admin_login()
    if not _metadata_query("select 1 from ab_user where username = %s", (user,)):
        _cli("fab", "create-admin", "--username", user, "--password", password, "--firstname", "Quản trị",
             "--lastname", "chiso", "--email", f"{user}@chiso.invalid")
    if migrated or not _metadata_query("select 1 from ab_role where name = 'Gamma'"):
        _cli("init")


# --- the web server --------------------------------------------------------------------------------------


def _healthy() -> bool:
    try:
        return httpx.get(f"{base_url()}/health", timeout=3).text.strip() == "OK"
    except httpx.HTTPError:
        return False


def _start_server() -> None:
    s = settings()
    if _bin("gunicorn").exists():
        cmd = [str(_bin("gunicorn")), "--bind", f"127.0.0.1:{s.superset_port}", "--workers",
               str(s.superset_workers), "--worker-class", "gthread", "--threads", "8", "--timeout", "120",
               "--limit-request-line", "0", "--limit-request-field_size", "0", "--no-control-socket",
               "superset.app:create_app()"]
    else:
        cmd = [str(_bin("superset")), "run", "--host", "127.0.0.1", "--port", str(s.superset_port),
               "--with-threads"]
    pid = services.start("superset", cmd, s.superset_port, env=_environment(), timeout=START_TIMEOUT,
                         cwd=_state_dir())
    deadline = time.monotonic() + START_TIMEOUT
    while not _healthy():  # listening comes before the app is ready to answer
        if not services.pid_of("superset"):
            raise SupersetError(f"Superset (pid {pid}) exited during start-up; see {log_file()}")
        if time.monotonic() > deadline:
            raise SupersetError(f"Superset did not answer /health within {START_TIMEOUT} s; see {log_file()}")
        time.sleep(1)


def up(import_assets: bool = True) -> str:
    """Start (or reuse) Superset and import the dashboards; returns its base URL."""
    if pg.is_private():
        pg.start_private()
    pg.bootstrap()
    with _lock("up"):
        if _healthy() and not services.pid_of("superset"):  # someone else's Superset, other logins
            raise SupersetError(f"port {settings().superset_port} serves a Superset this checkout did not "
                                "start; stop it or set CHISO_SUPERSET_PORT")
        if not _healthy():
            if services.pid_of("superset"):  # started but not healthy: restart it
                down()
            if services.port_open(settings().superset_port):
                raise SupersetError(f"port {settings().superset_port} is taken by another program; "
                                    "set CHISO_SUPERSET_PORT or free it")
            _prepare_metadata()
            _start_server()
    if import_assets:
        import_bundle()
    return base_url()


def down() -> bool:
    """Stop the server started by `up()`; False when none was running."""
    return services.stop("superset", timeout=30)


def status() -> str:
    pid = services.pid_of("superset")
    if _healthy():
        return f"running at {base_url()}" + (f" (pid {pid})" if pid else " (not started by chiso)")
    return f"starting or unhealthy (pid {pid}); see {log_file()}" if pid else "stopped"


# --- assets ------------------------------------------------------------------------------------------------


DBT_FILLED = "dbt_model"  # a virtual dataset's key naming the dbt model its columns come from (removed)
TEMPORAL_TYPES = ("date", "timestamp")


def _model_docs(manifest: dict) -> dict[str, dict]:
    """Models of the marts schema by name: description, columns (type, description, label) and metrics."""
    models = {}
    for node in manifest.get("nodes", {}).values():
        if node.get("resource_type") != "model" or node.get("schema") != "marts":
            continue
        meta = {**node.get("meta", {}), **node.get("config", {}).get("meta", {})}
        columns = {}
        for name, column in node.get("columns", {}).items():
            column_meta = {**column.get("meta", {}), **(column.get("config") or {}).get("meta", {})}
            columns[name] = {"type": column.get("data_type"), "label": column_meta.get("label_vi"),
                             "description": column.get("description") or None}
        models[node["name"]] = {"description": node.get("description") or None, "columns": columns,
                                "metrics": meta.get("superset_metrics") or []}
    return models


def apply_dbt_docs(dataset: dict, models: dict[str, dict]) -> dict:
    """Fill a dataset (parsed YAML) from its dbt model's docs: a physical dataset in schema marts maps the
    model of its table_name, a virtual one the model named by its `dbt_model` key. dbt's description wins
    for the dataset (physical only) and for each documented column (description and verbose_name); columns
    the YAML lacks are added with the contract's type; `meta.superset_metrics` become metrics unless the
    YAML defines one of the same name. Everything else in the YAML is kept."""
    name = dataset.pop(DBT_FILLED, None)
    physical = not dataset.get("sql")
    if physical and dataset.get("schema") == "marts":
        name = dataset.get("table_name")
    model = models.get(name)
    if model is None:
        return dataset
    if physical and model["description"]:
        dataset["description"] = model["description"]
    columns = {c["column_name"]: c for c in dataset.get("columns") or []}
    for column_name, doc in model["columns"].items():
        column = columns.get(column_name)
        if column is None:
            data_type = (doc["type"] or "").lower()
            column = {"column_name": column_name, "type": data_type.upper() or None, "groupby": True,
                      "filterable": True, "is_dttm": data_type.startswith(TEMPORAL_TYPES)}
        if doc["description"]:
            column["description"] = doc["description"]
        if doc["label"]:
            column["verbose_name"] = doc["label"]
        columns[column_name] = column
    ordered = [columns.pop(c) for c in model["columns"]]  # the model's order, then the YAML's own columns
    dataset["columns"] = ordered + list(columns.values())
    metrics = {m["metric_name"]: m for m in dataset.get("metrics") or []}
    for metric in model["metrics"]:
        metrics.setdefault(metric["metric_name"], {"metric_type": None, "d3format": None, "extra": {},
                                                   "warning_text": None, "verbose_name": None,
                                                   "description": None, **metric})
    dataset["metrics"] = list(metrics.values())
    return dataset


def _manifest() -> dict:
    """The compiled dbt manifest (`dbt parse`, redone when a dbt project file is newer than it)."""
    from ingestion import transform

    path = transform.manifest_path()
    sources = [p for p in transform.DBT_PROJECT_DIR.rglob("*") if p.suffix in (".yml", ".sql", ".csv")
               and "target" not in p.parts and "logs" not in p.parts]
    if not path.exists() or max(p.stat().st_mtime for p in sources) > path.stat().st_mtime:
        transform.compile_manifest()
    return json.loads(path.read_text(encoding="utf-8"))


def bundle_datasets(manifest: dict | None = None) -> dict[str, dict]:
    """The bundle's datasets as imported (path under superset/assets -> parsed YAML documented from the dbt
    manifest, apply_dbt_docs)."""
    import yaml  # PyYAML comes with dbt

    models = _model_docs(manifest if manifest is not None else _manifest())
    return {path.relative_to(ASSETS_DIR).as_posix():
            apply_dbt_docs(yaml.safe_load(path.read_text(encoding="utf-8")), models)
            for path in sorted((ASSETS_DIR / "datasets").rglob("*.yaml"))}


def check_security(datasets: dict[str, dict]) -> None:
    """Every dataset declares its row-level security in superset/security.yaml, naming only columns it has
    (superset_rls.check_bundle; RlsError otherwise)."""
    superset_rls.check_bundle({d["table_name"]: {c["column_name"] for c in d.get("columns") or []}
                               for d in datasets.values()})


def render_bundle(manifest: dict | None = None) -> tuple[bytes, dict[str, str]]:
    """The asset bundle as a zip: the warehouse URL (password masked) filled in, datasets documented from
    the dbt manifest (see apply_dbt_docs); and the passwords to send. A dataset without a row-level security
    declaration, or declaring a column it lacks, stops it (check_security)."""
    import yaml  # PyYAML comes with dbt

    datasets = bundle_datasets(manifest)
    check_security(datasets)
    reader = pg.url("reader", driver="postgresql+psycopg2")
    password = unquote(urlsplit(reader).password or "")
    masked = reader.replace(f":{urlsplit(reader).password}@", f":{PASSWORD_MASK}@", 1)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bundle:
        for path in sorted(ASSETS_DIR.rglob("*.yaml")):
            name = path.relative_to(ASSETS_DIR).as_posix()
            text = path.read_text(encoding="utf-8")
            if name == DATABASE_FILE:
                text = text.replace(READER_URL, masked)
            elif name in datasets:
                text = yaml.safe_dump(datasets[name], allow_unicode=True, sort_keys=False)
            bundle.writestr(f"chiso_assets/{name}", text)
    return buffer.getvalue(), {DATABASE_FILE: password}


def api_client(login: tuple[str, str] | None = None) -> httpx.Client:
    """A client logged in as the admin, with a CSRF token for writes; or as `login` (user, password)."""
    user, password = login or admin_login()
    client = httpx.Client(base_url=base_url(), timeout=120, headers={"Referer": base_url()})
    response = client.post("/api/v1/security/login",
                           json={"username": user, "password": password, "provider": "db", "refresh": False})
    if response.status_code == 401 and login is None:  # the admin exists with another password: set ours
        _cli("fab", "reset-password", "--username", user, "--password", password)
        response = client.post("/api/v1/security/login", json={"username": user, "password": password,
                                                                 "provider": "db", "refresh": False})
    response.raise_for_status()
    client.headers["Authorization"] = f"Bearer {response.json()['access_token']}"
    if login is not None:  # the CSRF token API is the admin's; /api/v1/chart/data needs none
        return client
    csrf = client.get("/api/v1/security/csrf_token/")
    csrf.raise_for_status()
    client.headers["X-CSRFToken"] = csrf.json()["result"]
    return client


def import_bundle() -> superset_rls.SyncResult:
    """Import superset/assets, overwriting the database, datasets, charts and dashboards by uuid; then bring
    the row-level security roles in line with the units and datasets (ingestion.superset_rls)."""
    data, passwords = render_bundle()
    client = api_client()
    try:
        response = client.post("/api/v1/assets/import/", files={"bundle": ("chiso_assets.zip", data)},
                               data={"passwords": json.dumps(passwords)})
        if response.status_code != 200:
            raise SupersetError(f"asset import failed ({response.status_code}): {response.text[:2000]}")
        return superset_rls.sync(client)
    finally:
        client.close()
