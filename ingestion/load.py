"""Audited, idempotent loading of source pages into raw.* (any source).

One call = one row in audit.extract_runs. Pages are landed as they arrive and their records COPied as
jsonb into a session temp table (Python does no per-record typing: PostgreSQL does it). At the end, one
transaction: reject bad records to quarantine.records with a reason, delete the window's rows from the raw
table, insert the typed rows, and finish the audit row. A failure anywhere leaves raw as it was and the
audit row 'failed' with a one-line error. Counts reconcile by construction: received = loaded + quarantined.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
import psycopg
from psycopg import sql

from ingestion import landing, pg

log = logging.getLogger(__name__)


@dataclass
class SourcePage:
    """One page as the source sent it, and the records to load from it.

    `items` are (context, record) pairs: the record is kept whole in raw.*.record; the context carries
    what the record itself does not say (period, scope, endpoint...), for the Target's SQL expressions.
    """

    raw: bytes
    items: list[tuple[dict[str, Any], Any]]
    request: dict[str, Any] | None = None  # what was asked; kept in the audit row's details


@dataclass(frozen=True)
class Target:
    """How records become rows of one raw table. SQL expressions read `c` (context) and `r` (record)."""

    table: str  # schema-qualified, e.g. raw.dvcqg_service_results
    columns: dict[str, str]  # raw column -> SQL expression over c and r
    key: tuple[str, ...]  # natural key (raw columns); must be non-null and unique within a load
    # (reason, SQL that is true when the record must be rejected), checked in order before typing
    checks: tuple[tuple[str, str], ...] = ()
    record_key: str = "null"  # SQL text expression identifying a record in quarantine


@dataclass
class RunResult:
    run_id: int
    source: str
    entity: str
    status: str = "running"
    pages: int = 0
    records_received: int = 0
    records_loaded: int = 0
    records_quarantined: int = 0
    bytes: int = 0
    checksum: str | None = None
    landing_path: str | None = None
    error: str | None = None
    seconds: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)


def one_line(exc: BaseException, limit: int = 500) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:limit]


def _ident(qualified: str) -> sql.Identifier:
    return sql.Identifier(*qualified.split("."))


def run_load(*, source: str, entity: str, target: Target, pages: Iterable[SourcePage],
             window: sql.Composable, window_start: datetime | None = None,
             window_end: datetime | None = None, details: dict[str, Any] | None = None) -> RunResult:
    """Land and load `pages` (consumed lazily, after the audit row exists) replacing `window` in the table.

    `window` is a SQL predicate over the raw table's columns selecting the rows this load replaces; a
    record whose typed row falls outside it is quarantined, so a load never touches rows outside it.
    Raises whatever the pages iterator raised (after recording the failure).
    """
    started = time.monotonic()
    with pg.connect("loader", autocommit=True) as conn:
        run_id = conn.execute(
            "insert into audit.extract_runs (source, entity, window_start, window_end, status, details)"
            " values (%s, %s, %s, %s, 'running', %s) returning run_id",
            (source, entity, window_start, window_end, orjson.dumps(details or {}).decode()),
        ).fetchone()[0]
        result = RunResult(run_id, source, entity, details=dict(details or {}))
        result.landing_path = landing.relative(landing.run_dir(source, entity, run_id))
        checksums: list[str] = []
        requests: list[dict[str, Any]] = []
        try:
            conn.execute("drop table if exists _chiso_load")
            conn.execute("create temp table _chiso_load (seq bigserial, page_no integer, landing_file text,"
                         " c jsonb, r jsonb)")
            for page in pages:
                result.pages += 1
                path, checksum, size = landing.land_page(source, entity, run_id, result.pages, page.raw)
                checksums.append(checksum)
                result.bytes += size
                rel = landing.relative(path)
                if page.request is not None:
                    requests.append({"page": result.pages, **page.request})
                with conn.cursor().copy("copy _chiso_load (page_no, landing_file, c, r) from stdin") as cp:
                    for ctx, rec in page.items:
                        cp.write_row((result.pages, rel, orjson.dumps(ctx).decode(),
                                      orjson.dumps(rec).decode()))
            result.checksum = landing.combined_checksum(checksums)
            result.details["requests"] = requests
            with conn.transaction():
                _finish(conn, target, window, result)
                result.seconds = time.monotonic() - started
                _update_audit(conn, result, "success")
        except BaseException as exc:
            result.error = one_line(exc)
            result.checksum = landing.combined_checksum(checksums) if checksums else None
            result.details["requests"] = requests
            result.records_loaded = result.records_quarantined = result.records_received = 0
            result.seconds = time.monotonic() - started
            try:
                _update_audit(conn, result, "failed")
            except psycopg.Error:  # the connection itself died: the row stays 'running', the log says why
                log.exception("could not mark run %s failed", run_id)
            log.error("%s/%s run %s failed: %s", source, entity, run_id, result.error)
            raise
        finally:
            if not conn.closed:
                conn.execute("drop table if exists _chiso_load")
    log.info("%s/%s run %s: %d pages, %d received, %d loaded, %d quarantined", source, entity, run_id,
             result.pages, result.records_received, result.records_loaded, result.records_quarantined)
    return result


def _finish(conn: psycopg.Connection, target: Target, window: sql.Composable, result: RunResult) -> None:
    """Inside the caller's transaction: quarantine, replace the window, insert typed rows."""
    checks = sql.SQL(" ").join(
        sql.SQL("when ({}) then {}").format(sql.SQL(expr), sql.Literal(reason))
        for reason, expr in target.checks)
    reason = sql.SQL("case {} else null end").format(checks) if target.checks else sql.SQL("null::text")
    conn.execute(sql.SQL("create temp table _chiso_checked on commit drop as select seq, page_no,"
                         " landing_file, c, r, {} as reason from _chiso_load").format(reason))
    cols = list(target.columns)
    typed = sql.SQL(", ").join(sql.SQL("({}) as {}").format(sql.SQL(expr), sql.Identifier(col))
                               for col, expr in target.columns.items())
    conn.execute(sql.SQL("create temp table _chiso_typed on commit drop as select seq, page_no, landing_file,"
                         " c, r, {} from _chiso_checked where reason is null").format(typed))
    keys = [sql.Identifier(k) for k in target.key]
    key_missing = sql.SQL(" or ").join(sql.SQL("{} is null").format(k) for k in keys)
    conn.execute(sql.SQL(
        "create temp table _chiso_final on commit drop as select t.*, case"
        " when {key_missing} then 'missing key value'"
        " when not coalesce(({window}), false) then 'outside the load window'"
        " when row_number() over (partition by {keys} order by seq desc) > 1"
        "  then 'duplicate key within the load (the later page wins)'"
        " else null end as reason from _chiso_typed t").format(
            key_missing=key_missing, window=window, keys=sql.SQL(", ").join(keys)))
    record_key = sql.SQL(target.record_key)
    cur = conn.execute(sql.SQL(
        "insert into quarantine.records (run_id, source, entity, landing_file, page_no, record_key, record,"
        " reason) select {run}, {src}, {ent}, landing_file, page_no, {rk}, r, reason from ("
        " select seq, landing_file, page_no, c, r, reason from _chiso_checked where reason is not null"
        " union all"
        " select seq, landing_file, page_no, c, r, reason from _chiso_final where reason is not null"
        ") q order by seq").format(run=sql.Literal(result.run_id), src=sql.Literal(result.source),
                                   ent=sql.Literal(result.entity), rk=record_key))
    result.records_quarantined = cur.rowcount
    table = _ident(target.table)
    conn.execute(sql.SQL("delete from {} where {}").format(table, window))
    col_ids = sql.SQL(", ").join(sql.Identifier(c) for c in cols)
    cur = conn.execute(sql.SQL(
        "insert into {table} ({cols}, record, run_id, landing_file, page_no)"
        " select {cols}, r, {run}, landing_file, page_no from _chiso_final where reason is null order by seq"
    ).format(table=table, cols=col_ids, run=sql.Literal(result.run_id)))
    result.records_loaded = cur.rowcount
    result.records_received = conn.execute("select count(*) from _chiso_load").fetchone()[0]
    if result.records_received != result.records_loaded + result.records_quarantined:  # cannot happen
        raise RuntimeError(f"counts do not reconcile: {result.records_received} received, "
                           f"{result.records_loaded} loaded, {result.records_quarantined} quarantined")


def _update_audit(conn: psycopg.Connection, result: RunResult, status: str) -> None:
    result.status = status
    conn.execute(
        "update audit.extract_runs set status = %s, finished_at = clock_timestamp(), pages = %s,"
        " records_received = %s, records_loaded = %s, records_quarantined = %s, bytes = %s, checksum = %s,"
        " landing_path = %s, error = %s, details = %s where run_id = %s",
        (status, result.pages, result.records_received, result.records_loaded, result.records_quarantined,
         result.bytes, result.checksum, result.landing_path, result.error,
         orjson.dumps({**result.details, "seconds": round(result.seconds, 3)}).decode(), result.run_id))
