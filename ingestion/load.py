"""Audited, idempotent loading of source pages into raw.* (any source).

One call = one row in audit.extract_runs. Pages are landed as they arrive and their records go into session
temp tables (Python does no per-record typing: PostgreSQL does it). A page can come either as Python
(context, record) pairs (COPied as jsonb) or, faster, as its raw JSON text plus the key of its record list:
then PostgreSQL parses the page (NFC-normalised as text first) and explodes the records itself. At the end,
one transaction: reject bad records to quarantine.records with a reason, delete the window's rows from the raw
table, insert the typed rows, run the caller's `on_commit` (e.g. move a watermark) and finish the audit row.
A failure anywhere leaves raw as it was and the audit row 'failed' with a one-line error. Counts reconcile by
construction: received = loaded + quarantined (exact repeats of a record, when the target drops them, are
counted apart in details.repeats).
"""

from __future__ import annotations

import logging
import time
import unicodedata
from collections.abc import Callable, Iterable
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
    items: list[tuple[dict[str, Any], Any]] = field(default_factory=list)
    request: dict[str, Any] | None = None  # what was asked; kept in the audit row's details
    # Set content_key to have PostgreSQL take the records from raw[content_key] (a JSON array; the caller
    # has checked that), each with `context`; `items` are then loaded too (e.g. a rejected page).
    content_key: str | None = None
    context: dict[str, Any] | None = None


@dataclass(frozen=True)
class Target:
    """How records become rows of one raw table. SQL expressions read `c` (context) and `r` (record)."""

    table: str  # schema-qualified, e.g. raw.dvcqg_service_results
    columns: dict[str, str]  # raw column -> SQL expression over c and r
    key: tuple[str, ...]  # natural key (raw columns); must be non-null and unique within a load
    # (reason, SQL that is true when the record must be rejected), checked in order before typing
    checks: tuple[tuple[str, str], ...] = ()
    record_key: str = "null"  # SQL text expression identifying a record in quarantine
    record: str = "r"  # what raw.<table>.record keeps (e.g. r minus personal data)
    quarantine_record: str = "r"  # what quarantine.records.record keeps (it is readable beyond the loader)
    # Sources that may send a record twice while paging: identical copies (same key, same content) are
    # loaded once and counted in details.repeats instead of being quarantined as duplicates.
    repeats: bool = False
    # Records of one page sharing these columns (the source's id) but differing in content are all
    # quarantined.
    conflict_key: tuple[str, ...] = ()
    # With conflict_key: keep only the newest version (this column) of an id seen twice in one load; older
    # ones (it changed while we paged) are counted in details.superseded.
    newest: str | None = None


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
             window_end: datetime | None = None, details: dict[str, Any] | None = None,
             session: dict[str, str] | None = None,
             verify: Callable[[psycopg.Connection], Iterable[SourcePage] | None] | None = None,
             on_commit: Callable[[psycopg.Connection, RunResult], None] | None = None) -> RunResult:
    """Land and load `pages` (consumed lazily, after the audit row exists) replacing `window` in the table.

    `window` is a SQL predicate over the raw table's columns selecting the rows this load replaces; a
    record whose typed row falls outside it is quarantined, so a load never touches rows outside it.
    `session`: settings (name -> value, e.g. chiso.pii_salt) the target's SQL reads with current_setting().
    `verify(conn)`: called once the pages are consumed, with the staged records in view `_chiso_load`;
    returns more pages to stage (then it is called again) or None when satisfied; raising fails the run.
    `on_commit(conn, result)`: runs inside the load's transaction, after the rows are in.
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
            _stage_tables(conn)
            for name, value in (session or {}).items():
                conn.execute("select set_config(%s, %s, false)", (name, value))

            def stage(batch: Iterable[SourcePage]) -> None:
                for page in batch:
                    result.pages += 1
                    path, checksum, size = landing.land_page(source, entity, run_id, result.pages, page.raw)
                    checksums.append(checksum)
                    result.bytes += size
                    if page.request is not None:
                        requests.append({"page": result.pages, **page.request})
                    _stage_page(conn, page, result.pages, landing.relative(path))

            stage(pages)
            while verify is not None and (more := verify(conn)) is not None:
                stage(more)
            result.checksum = landing.combined_checksum(checksums)
            result.details["requests"] = requests
            with conn.transaction():
                _finish(conn, target, window, result)
                if on_commit is not None:
                    on_commit(conn, result)
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
            if not conn.closed and not conn.broken:
                conn.execute("drop table if exists _chiso_items, _chiso_pages cascade")
    log.info("%s/%s run %s: %d pages, %d received, %d loaded, %d quarantined", source, entity, run_id,
             result.pages, result.records_received, result.records_loaded, result.records_quarantined)
    return result


PAGE_SEQ = 1_000_000  # seq = page_no * PAGE_SEQ + position: record order without a sequence


def _stage_tables(conn: psycopg.Connection) -> None:
    """Session temp tables of a load, and view _chiso_load (seq, page_no, landing_file, c, r) over them."""
    # JIT would compile the long check/typing expressions (seconds) to save less than it costs here
    conn.execute("set jit = off")
    conn.execute("drop table if exists _chiso_items, _chiso_pages cascade")
    conn.execute("create temp table _chiso_items (seq bigint, page_no integer, landing_file text, c jsonb,"
                 " r jsonb)")
    conn.execute("create temp table _chiso_pages (page_no integer, landing_file text, c jsonb, doc jsonb)")
    try:  # lz4 keeps big pages cheap to store and read back; not every server build has it
        with conn.transaction():
            conn.execute("alter table _chiso_pages alter column doc set compression lz4")
    except psycopg.Error:
        pass
    conn.execute(
        "create temp view _chiso_load as"
        " select seq, page_no, landing_file, c, r from _chiso_items"
        " union all"
        f" select p.page_no::bigint * {PAGE_SEQ} + e.n, p.page_no, p.landing_file, p.c, e.r"
        " from _chiso_pages p cross join lateral jsonb_array_elements(p.doc) with ordinality e (r, n)")


def _stage_page(conn: psycopg.Connection, page: SourcePage, page_no: int, rel: str) -> None:
    if len(page.items) >= PAGE_SEQ:
        raise ValueError(f"page {page_no} has {len(page.items)} records; at most {PAGE_SEQ - 1} per page")
    if page.content_key is not None:
        # The page's text NFC-normalised as a whole (JSON syntax is ASCII; one C call, ~6x faster than
        # PostgreSQL's normalize()), then parsed once by PostgreSQL.
        text = unicodedata.normalize("NFC", page.raw.decode())
        try:
            with conn.transaction():
                conn.execute(
                    "insert into _chiso_pages select %s, %s, %s::jsonb, d from"
                    " (select %s::jsonb -> %s as d) x where jsonb_typeof(d) = 'array'",
                    (page_no, rel, orjson.dumps(page.context or {}).decode(), text, page.content_key))
        except psycopg.DataError as exc:  # e.g. a \u0000 escape jsonb refuses: the page goes to quarantine
            page.items = [*page.items, ({"_reject": f"page not loadable: {one_line(exc, 200)}"}, None)]
    if page.items:
        with conn.cursor().copy("copy _chiso_items (seq, page_no, landing_file, c, r) from stdin") as cp:
            for i, (ctx, rec) in enumerate(page.items, start=PAGE_SEQ // 2 if page.content_key else 1):
                cp.write_row((page_no * PAGE_SEQ + i, page_no, rel, orjson.dumps(ctx).decode(),
                              orjson.dumps(rec).decode()))


def _finish(conn: psycopg.Connection, target: Target, window: sql.Composable, result: RunResult) -> None:
    """Inside the caller's transaction: quarantine, replace the window, insert typed rows.

    One narrow pass decides every record's fate (_chiso_verdict: seq, reason, repeat); the typed rows are
    then computed once more straight into the raw table, skipping the records the verdict set aside.
    """
    conn.execute("set local work_mem = '256MB'")
    checks = [("record is not loadable", "c ? '_reject'"), *target.checks]
    reason = sql.SQL("case {} else null end").format(sql.SQL(" ").join(
        sql.SQL("when ({}) then {}").format(
            sql.SQL(expr), sql.SQL("c->>'_reject'") if i == 0 else sql.Literal(why))
        for i, (why, expr) in enumerate(checks)))
    typed = sql.SQL(", ").join(sql.SQL("case when k.reason is null then ({}) end as {}").format(
        sql.SQL(expr), sql.Identifier(col)) for col, expr in target.columns.items())
    keys = sql.SQL(", ").join(sql.Identifier(k) for k in target.key)
    key_missing = sql.SQL(" or ").join(sql.SQL("{} is null").format(sql.Identifier(k)) for k in target.key)
    h = sql.SQL("jsonb_hash_extended(r, 0)") if target.repeats or target.conflict_key else sql.SQL("0")
    false = sql.SQL("false")
    # identical content is the same record, rejected or not (a rejected one is quarantined once)
    repeat = (sql.SQL("coalesce(h is not null and row_number() over (partition by {}, h order by seq) > 1,"
                      " false)").format(keys) if target.repeats else false)
    # Copies of one id in one page that differ: an older one is stale (the newest is kept, the stale copy
    # quarantined); copies at the same version cannot be told apart (all quarantined).
    stale = conflict = superseded = false
    if target.conflict_key:
        ids = sql.SQL(", ").join(sql.Identifier(k) for k in target.conflict_key)
        page_ids = sql.SQL("partition by page_no, {}").format(ids)
        if target.newest:
            v = sql.Identifier(target.newest)
            stale = sql.SQL("coalesce(reason is null and {v} < max({v}) over ({p}), false)").format(
                v=v, p=page_ids)
            conflict = sql.SQL("coalesce(reason is null and min(h) over ({p}, {v}) <> max(h) over ({p}, {v}),"
                               " false)").format(v=v, p=page_ids)
            superseded = sql.SQL("coalesce(reason is null and {v} < max({v}) over (partition by {ids}),"
                                 " false)").format(v=v, ids=ids)
        else:
            conflict = sql.SQL("coalesce(reason is null and min(h) over ({p}) <> max(h) over ({p}), false)"
                               ).format(p=page_ids)
    conn.execute(sql.SQL(
        "create temp table _chiso_verdict on commit drop as"
        " select seq, page_no, dropped as repeat, superseded and dropped and not plain_repeat as superseded,"
        "  case when dropped then null when reason is not null then reason"
        "  when row_number() over (partition by dropped, {keys} order by seq desc) > 1"
        "   then 'duplicate key within the load (the later page wins)' end as reason"
        " from (select seq, page_no, {keys}, superseded, repeat as plain_repeat,"
        "   repeat or (superseded and verdict is null) as dropped, verdict as reason"
        "  from (select *, case when repeat then null"
        "    when reason is not null then reason"
        "    when {key_missing} then 'missing key value'"
        "    when stale then 'stale copy of an id in the same page (the newest is kept)'"
        "    when conflict then 'conflicting copies of one id in a page'"
        "    when not in_window then 'outside the load window' end as verdict"
        "   from (select seq, page_no, reason, {keys}, in_window, {repeat} as repeat, {stale} as stale,"
        "     {conflict} as conflict, {superseded} as superseded"
        # offset 0 keeps each level a real subquery: flattened, the planner would copy the check
        # expressions into every column that uses them (seconds of planning, and work per row)
        "    from (select l.seq, l.page_no, k.reason, t.*, {h} as h from _chiso_load l"
        "     cross join lateral (select {reason} as reason offset 0) k"
        "     cross join lateral (select {typed} offset 0) t offset 0) x"
        "    cross join lateral (select coalesce(({window}), false) as in_window) wnd) y) z) f"
    ).format(key_missing=key_missing, keys=keys, repeat=repeat, stale=stale, conflict=conflict,
             superseded=superseded, h=h, reason=reason, typed=typed, window=window))
    received, repeats, older = conn.execute(
        "select count(*) filter (where not repeat), count(*) filter (where repeat and not superseded),"
        " count(*) filter (where superseded) from _chiso_verdict").fetchone()
    conn.execute("create index on _chiso_verdict (seq) where repeat or reason is not null")
    conn.execute("analyze _chiso_verdict")
    cur = conn.execute(sql.SQL(
        "insert into quarantine.records (run_id, source, entity, landing_file, page_no, record_key, record,"
        " reason) select {run}, {src}, {ent}, l.landing_file, l.page_no, {rk}, {qrec}, v.reason"
        " from _chiso_load l join _chiso_verdict v on v.seq = l.seq"
        " where v.reason is not null and l.page_no = any(array("
        "  select distinct page_no from _chiso_verdict where reason is not null))"
        " order by l.seq").format(run=sql.Literal(result.run_id), src=sql.Literal(result.source),
                                  ent=sql.Literal(result.entity), rk=sql.SQL(target.record_key),
                                  qrec=sql.SQL(target.quarantine_record)))
    result.records_quarantined = cur.rowcount
    table = _ident(target.table)
    conn.execute(sql.SQL("delete from {} where {}").format(table, window))
    cols = list(target.columns)
    col_ids = sql.SQL(", ").join(sql.Identifier(c) for c in cols)
    exprs = sql.SQL(", ").join(sql.SQL("({})").format(sql.SQL(e)) for e in target.columns.values())
    cur = conn.execute(sql.SQL(
        "insert into {table} ({cols}, record, run_id, landing_file, page_no)"
        " select {exprs}, {rec}, {run}, landing_file, page_no from _chiso_load l where not exists ("
        "  select 1 from _chiso_verdict v where v.seq = l.seq and (v.repeat or v.reason is not null))"
    ).format(table=table, cols=col_ids, exprs=exprs, rec=sql.SQL(target.record),
             run=sql.Literal(result.run_id)))
    result.records_loaded = cur.rowcount
    result.records_received = received
    if target.repeats:
        result.details["repeats"] = repeats
    if target.newest:
        result.details["superseded"] = older
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
