"""Run dbt (dbt_project/) on the warehouse as the transform role; record each run in audit.dbt_runs."""

from __future__ import annotations

import json
import os
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit

from ingestion import clock, pg
from ingestion.config import PROJECT_ROOT, settings

DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"
SELECTORS_FILE = DBT_PROJECT_DIR / "selectors.yml"
FAILED = {"error", "fail", "runtime error"}


@dataclass(frozen=True)
class Selection:
    """A selector of dbt_project/selectors.yml as dbt's --select/--exclude arguments (what Cosmos renders):
    an empty select is everything."""

    select: tuple[str, ...]
    exclude: tuple[str, ...]


def _selection_argument(item: object, where: str) -> str:
    """One `method: fqn` item -> a --select/--exclude argument: its value, +value for `parents: true`."""
    if not (isinstance(item, dict) and item.get("method") == "fqn" and isinstance(item.get("value"), str)
            and set(item) <= {"method", "value", "parents"} and item.get("parents", False) in (True, False)):
        raise ValueError(f"{SELECTORS_FILE.name}: {where}: only `method: fqn` items (value, optional parents:"
                         f" true) are read here, not {item!r}")
    return ("+" if item.get("parents") else "") + item["value"]


def read_selectors(path: Path = SELECTORS_FILE) -> dict[str, Selection]:
    """selectors.yml without dbt (DAG files must load fast): each selector a single fqn item or a union of fqn
    items and at most one exclude list of fqn items; any other shape raises, so none is misread."""
    import yaml

    selections = {}
    for selector in yaml.safe_load(path.read_text(encoding="utf-8"))["selectors"]:
        name, definition = selector["name"], selector["definition"]
        items = definition["union"] if isinstance(definition, dict) and set(definition) == {"union"} \
            else [definition]
        select, exclude = [], []
        for item in items:
            if isinstance(item, dict) and set(item) == {"exclude"} and not exclude:
                exclude = [_selection_argument(e, f"{name}: exclude") for e in item["exclude"]]
            else:
                select.append(_selection_argument(item, name))
        everything = "*" in select
        if (everything and len(select) > 1) or not select:
            raise ValueError(f"{path.name}: {name}: select \"*\" alone or named models, not {select}")
        selections[name] = Selection(() if everything else tuple(select), tuple(exclude))
    return selections


# Which DAG builds what (dbt_project/selectors.yml): the national DAG its marts and what they are built from,
# chiso_index_reconciliation the mart that reads both, the warehouse DAG everything else but those marts
# (ingestion/dbt_cosmos.py, bench/). The names below are derived from the file, never written out again.
SELECTIONS = read_selectors()
NATIONAL_MARTS = tuple(arg.lstrip("+") for arg in SELECTIONS["national"].select)
RECONCILIATION_MARTS = tuple(arg.lstrip("+") for arg in SELECTIONS["reconciliation"].select)
WAREHOUSE_EXCLUDES = SELECTIONS["warehouse"].exclude


class DbtError(RuntimeError):
    pass


def dbt_env() -> dict[str, str]:
    """Environment for dbt: the transform role's connection (profiles.yml reads CHISO_DBT_*) and the dirs."""
    env = {"DBT_PROFILES_DIR": str(DBT_PROJECT_DIR), "DBT_PROJECT_DIR": str(DBT_PROJECT_DIR)}
    try:
        u = urlsplit(pg.url("transform", driver="postgresql"))
    except pg.PostgresError:  # no server yet: parse/compile still work on the profile's defaults
        return env
    env.update({
        "CHISO_DBT_HOST": u.hostname or "127.0.0.1",
        "CHISO_DBT_PORT": str(u.port or 5432),
        "CHISO_DBT_USER": unquote(u.username or ""),
        "CHISO_DBT_PASSWORD": unquote(u.password or ""),
        "CHISO_DBT_DBNAME": u.path.lstrip("/"),
    })
    return env


@contextmanager
def _environ(values: dict[str, str]):
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _invoke(args: list[str]):
    from dbt.cli.main import dbtRunner  # imported late: dbt is slow to import and DAG files must load fast

    full = [*args, "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR)]
    with _environ(dbt_env()):
        return dbtRunner().invoke(full)


def _current_invocation_id() -> str | None:
    try:
        from dbt_common.invocation import get_invocation_id

        return get_invocation_id()
    except ImportError:
        return None


def _node_results(result) -> list[dict]:
    rows = []
    for r in getattr(result.result, "results", None) or []:
        timing = {t.name: [t.started_at.isoformat() if t.started_at else None,
                           t.completed_at.isoformat() if t.completed_at else None] for t in r.timing}
        rows.append({"unique_id": r.node.unique_id, "status": str(r.status),
                     "execution_time": round(r.execution_time or 0, 3), "failures": r.failures,
                     "message": (r.message or "")[:500], "timing": timing})
    return rows


def _record(invocation_id: str, command: str, pipeline_run: str | None, started: datetime,
            finished: datetime, status: str, nodes: list[dict], error: str | None) -> None:
    failures = sum(1 for n in nodes if n["status"] in FAILED)
    details = {"nodes": nodes, "elapsed_s": round((finished - started).total_seconds(), 3)}
    if error:
        details["error"] = error
    with pg.connect("loader") as conn:
        conn.execute(
            "insert into audit.dbt_runs (invocation_id, command, pipeline_run, started_at, finished_at,"
            " status, nodes, failures, results) values (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (invocation_id, command, pipeline_run, started, finished, status, len(nodes), failures,
             json.dumps(details)))


def run_dbt(args: list[str], pipeline_run: str | None = None, record: bool = True):
    """Run `dbt <args>` in-process; record it in audit.dbt_runs; raise DbtError (one line) if it failed.

    Returns dbt's dbtRunnerResult (success, result, exception).
    """
    before = _current_invocation_id()
    started = clock.event_time()
    result = _invoke(list(args))
    finished = clock.event_time()
    invocation_id = _current_invocation_id()
    if invocation_id is None or invocation_id == before:  # dbt stopped before starting an invocation
        invocation_id = str(uuid.uuid4())
    nodes = _node_results(result)
    failed = [n for n in nodes if n["status"] in FAILED]
    error = None
    if result.exception is not None:
        first_line = (str(result.exception).strip().splitlines() or [""])[0]
        error = f"{type(result.exception).__name__}: {first_line}"
    elif not result.success:
        first = failed[0] if failed else None
        error = (f"{len(failed)} of {len(nodes)} nodes failed, first {first['unique_id']}: "
                 f"{first['message'].splitlines()[0] if first['message'] else first['status']}"
                 if first else "dbt reported failure")
    status = "success" if result.success else ("error" if result.exception is not None else "failed")
    if record:
        _record(invocation_id, " ".join(["dbt", *args]), pipeline_run, started, finished,
                status, nodes, error)
    if not result.success:
        log_dir = args[args.index("--log-path") + 1] if "--log-path" in args[:-1] else "dbt_project/logs"
        raise DbtError(f"dbt {' '.join(args[:1])} failed: {error}; see {log_dir}/dbt.log")
    return result


def manifest_path() -> Path:
    """Where the compiled manifest lives: under the state folder, so a test run and a demo don't share it."""
    return settings().home / "dbt-target" / "manifest.json"


def compile_manifest() -> Path:
    """`dbt parse` -> the manifest Cosmos renders (LoadMode.DBT_MANIFEST); see manifest_path()."""
    path = manifest_path()
    run_dbt(["parse", "--target-path", str(path.parent)], record=False)
    if not path.exists():
        raise DbtError(f"dbt parse wrote no manifest at {path}")
    return path
