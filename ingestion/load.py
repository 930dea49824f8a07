"""Audited, idempotent loading of source pages into raw.* (any source).

One call = one row in audit.extract_runs. Pages are landed as they arrive and each is checked and typed as it
is staged: PostgreSQL parses the page (or takes the Python (context, record) pairs) and computes every
record's checks, derived values and typed columns once, into the load's work table (see _Staging). Two
database sessions stage pages in turn while a helper thread fetches, lands and NFC-normalises the next ones,
so Python and PostgreSQL work on both cores at once. At the end, one transaction: decide each staged
record's fate from its typed row (repeats, conflicts, duplicate keys, window, versions already in raw),
reject the bad ones to quarantine.records with a reason (once per record and reason, however many runs see
it), replace the window's rows in the raw table (or, for a table that keeps history, add the versions it
does not hold yet), run the caller's `on_commit` (e.g. move a watermark) and finish the audit row. A
failure anywhere leaves raw as it was and the audit row 'failed' with a one-line error; a load whose
process or database dies is marked failed by the next load or `chiso status` (reap_dead_runs), which also
drops its work tables. Counts reconcile by construction: received = loaded + quarantined (exact repeats of
a record, when the target drops them, are counted apart in details.repeats).
"""

from __future__ import annotations

import logging
import queue
import re
import sys
import threading
import time
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
import psycopg
from psycopg import sql
from psycopg.adapt import Dumper
from psycopg.pq import Format

from ingestion import landing, pg
from ingestion.progress import Progress

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
    total: int | None = None  # records the whole list holds, when the server says (progress's ETA)


@dataclass(frozen=True)
class Target:
    """How records become rows of one raw table. SQL expressions read `c` (context) and `r` (record)."""

    table: str  # schema-qualified, e.g. raw.dvcqg_service_results
    columns: dict[str, str]  # raw column -> SQL expression over c and r
    key: tuple[str, ...]  # natural key (raw columns); must be non-null and unique within a load
    # (reason, SQL that is true when the record must be rejected), checked in order before typing; a record
    # failing one is not typed (the checks guard expressions that could raise)
    checks: tuple[tuple[str, str], ...] = ()
    # (name, SQL over c and r) computed once per record that passed `checks`, before the columns; columns
    # and typed_checks read them by name (e.g. a field's text used by several expressions)
    derived: tuple[tuple[str, str], ...] = ()
    # (reason, SQL over the typed columns and derived values by name, and c, r), checked in order after
    # typing (so each value is computed once); the columns must then never raise for a record that passed
    # `checks`
    typed_checks: tuple[tuple[str, str], ...] = ()
    record_key: str = "null"  # SQL text expression identifying a record in quarantine
    record: str = "r"  # what raw.<table>.record keeps (e.g. r minus personal data)
    quarantine_record: str = "r"  # what quarantine.records.record keeps (it is readable beyond the loader)
    # Sources that may send a record twice while paging: identical copies (same key, same content) are
    # loaded once and counted in details.repeats instead of being quarantined as duplicates.
    repeats: bool = False
    # Records of one page sharing these columns (the source's id, or id and version) but differing in
    # content are all quarantined.
    conflict_key: tuple[str, ...] = ()
    # Raw keeps the history of what was received (the key names a version, e.g. id and update time): a load
    # adds the versions it has not seen and never deletes. A version already in raw is counted as loaded
    # (details.already_in_raw) when it is the same record, and quarantined when it is not (raw keeps the
    # first). Without history the load replaces the window's rows (lists and published figures).
    history: bool = False


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
    """Land and load `pages` (consumed lazily, after the audit row exists) into the window of the table.

    `window` is a SQL predicate over the raw table's columns selecting the rows this load replaces (or, for
    a target that keeps history, adds to); a record whose typed row falls outside it is quarantined, so a
    load never touches rows outside it.
    `session`: settings (name -> value, e.g. chiso.pii_salt) the target's SQL reads with current_setting().
    `verify(conn)`: called once the pages are consumed, with the staged records in view `_chiso_load`;
    returns more pages to stage (then it is called again) or None when satisfied; raising fails the run.
    `on_commit(conn, result)`: runs inside the load's transaction, after the rows are in.
    Raises whatever the pages iterator raised (after recording the failure).
    """
    started = time.monotonic()
    with pg.connect("loader", autocommit=True) as conn:
        reap_dead_runs(conn)
        with conn.transaction():  # the run's lock is held before anyone can see it 'running'
            run_id = conn.execute(
                "insert into audit.extract_runs (source, entity, window_start, window_end, status, details)"
                " values (%s, %s, %s, %s, 'running', %s) returning run_id",
                (source, entity, window_start, window_end, orjson.dumps(details or {}).decode()),
            ).fetchone()[0]
            conn.execute("select pg_advisory_lock(%s, %s)", (RUN_LOCK, run_id))
        result = RunResult(run_id, source, entity, details=dict(details or {}))
        result.landing_path = landing.relative(landing.run_dir(source, entity, run_id))
        progress = Progress(source, entity, run_id)
        checksums: list[str] = []
        requests: list[dict[str, Any]] = []
        staging: _Staging | None = None
        try:
            staging = _Staging(conn, target, window, run_id, session or {}, on_page=progress.page)

            def prepare(page: SourcePage) -> _Prepared:
                """In the helper thread: land the page and NFC-normalise its text (Python, no database)."""
                result.pages += 1
                progress.expect(page.total)
                path, checksum, size = landing.land_page(source, entity, run_id, result.pages, page.raw)
                checksums.append(checksum)
                result.bytes += size
                if page.request is not None:
                    requests.append({"page": result.pages, **page.request})
                body = nfc_json(page.raw) if page.content_key is not None else None
                return _Prepared(page, result.pages, landing.relative(path), body)

            def stage(batch: Iterable[SourcePage]) -> None:
                staging.stage_all(_prefetch(batch, prepare))

            stage(pages)
            while verify is not None and (more := verify(conn)) is not None:
                stage(more)
            result.checksum = landing.combined_checksum(checksums)
            result.details["requests"] = requests
            with conn.transaction():
                staging.finish(result)
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
            except psycopg.Error as db_error:  # the connection died: the next run or `chiso status` reaps it
                log.error("could not mark run %s failed: %s", run_id, one_line(db_error))
            log.error("%s/%s run %s failed: %s", source, entity, run_id, result.error)
            raise
        finally:
            if staging is not None:
                staging.close()
    log.info("%s/%s run %s: %d pages, %d received, %d loaded, %d quarantined", source, entity, run_id,
             result.pages, result.records_received, result.records_loaded, result.records_quarantined)
    return result


RUN_LOCK = 766  # advisory lock class of a load in progress: (RUN_LOCK, run_id), held by the load's session
DIED = "the run died: its database session ended before it finished (process killed or database restarted)"


def reap_dead_runs(conn: psycopg.Connection) -> list[int]:
    """Runs left 'running' by a session that is gone (the lock a live load holds is free): each is marked
    failed with the reason; then every work table of a load that is not running is dropped (they hold
    personal data in clear). Safe at any time, from any session of the loader (autocommit)."""
    dead = []
    running = conn.execute("select run_id from audit.extract_runs where status = 'running'").fetchall()
    for (run_id,) in running:
        if conn.execute("select pg_try_advisory_lock(%s, %s)", (RUN_LOCK, run_id)).fetchone()[0]:
            try:
                conn.execute("update audit.extract_runs set status = 'failed', error = %s,"
                             " finished_at = clock_timestamp() where run_id = %s and status = 'running'",
                             (DIED, run_id))
            finally:
                conn.execute("select pg_advisory_unlock(%s, %s)", (RUN_LOCK, run_id))
            dead.append(run_id)
            log.warning("run %s died before it finished: marked failed", run_id)
    leftovers = conn.execute(
        "select t.tablename from pg_tables t left join audit.extract_runs a"
        "  on a.run_id::text = substring(t.tablename from '[0-9]+$')"
        " where t.schemaname = 'loading' and t.tablename ~ '^(typed|keys)_[0-9]+$'"
        "  and a.status is distinct from 'running'").fetchall()
    for (name,) in leftovers:
        conn.execute(sql.SQL("drop table if exists {}").format(sql.Identifier("loading", name)))
    return dead


PAGE_SEQ = 1_000_000  # seq = page_no * PAGE_SEQ + position: record order without a sequence
PREFETCH = 2  # pages the helper thread may have ready ahead of the database


# --- NFC ------------------------------------------------------------------------------------------------


# Blocks with no character NFC changes or composes (CJK and Hangul syllables, unassigned and private planes);
# skipped when building the pattern (tests/unit/test_nfc_json.py checks the result against a full scan).
_NFC_SAFE_BLOCKS = ((0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xAC00, 0xD7A3), (0x20000, 0x2F7FF),
                    (0x30000, 0xDFFFF), (0xF0000, 0x10FFFF))


def _nfc_unsafe(skip: tuple[tuple[int, int], ...] = _NFC_SAFE_BLOCKS) -> re.Pattern[bytes]:
    """UTF-8 byte prefixes of every character that NFC may change or combine with what precedes it.

    A character is safe when it has no canonical combining class, NFC leaves it alone and it is not the
    second half of a canonical composition (conjoining Hangul jamo included). The pattern matches the
    first two bytes of every unsafe character (a superset: a false hit only costs a normalisation).
    """
    unsafe: set[int] = set(range(0x1100, 0x1200))  # conjoining jamo
    begin = 0x80
    for start, end in (*skip, (sys.maxunicode + 1, sys.maxunicode + 1)):
        for cp in range(begin, start):
            if 0xD800 <= cp <= 0xDFFF:
                continue
            ch = chr(cp)
            if unicodedata.combining(ch) or unicodedata.normalize("NFC", ch) != ch:
                unsafe.add(cp)
            parts = unicodedata.decomposition(ch).split()
            if len(parts) == 2 and not parts[0].startswith("<"):
                unsafe.add(int(parts[1], 16))
        begin = end + 1
    seconds: dict[int, set[int]] = {}
    for u in unsafe:
        b = chr(u).encode()
        seconds.setdefault(b[0], set()).add(b[1])
    return re.compile(b"|".join(
        re.escape(bytes([lead])) + b"[" + b"".join(re.escape(bytes([x])) for x in sorted(tails)) + b"]"
        for lead, tails in sorted(seconds.items())))


_UNSAFE: re.Pattern[bytes] | None = None


def nfc_json(raw: bytes) -> bytes:
    """The UTF-8 text of a JSON document in Unicode NFC, normalising only the strings that need it.

    NFC never acts across an ASCII character (ASCII has combining class 0 and is never the second half of
    a composition), so the text between two double quotes around each unsafe character is normalised on
    its own and the rest is kept byte for byte: ~4x faster than normalising the whole page. Bytes that are
    not UTF-8 are left as they are (PostgreSQL then refuses the page and it goes to quarantine).
    """
    global _UNSAFE
    if _UNSAFE is None:
        _UNSAFE = _nfc_unsafe()
    match = _UNSAFE.search(raw)
    if match is None:
        return raw
    out, pos = [], 0
    while match is not None:
        i = match.start()
        start = raw.rfind(b'"', pos, i)
        start = pos if start < 0 else start
        end = raw.find(b'"', i)
        end = len(raw) if end < 0 else end
        out.append(raw[pos:start])
        try:
            out.append(unicodedata.normalize("NFC", raw[start:end].decode()).encode())
        except UnicodeDecodeError:
            out.append(raw[start:end])
        pos = end
        match = _UNSAFE.search(raw, pos)
    out.append(raw[pos:])
    return b"".join(out)


class _Utf8(bytes):
    """UTF-8 bytes sent as a text parameter in binary format (no decode in Python; the server checks it)."""


class _Utf8Dumper(Dumper):
    format = Format.BINARY
    oid = 25  # text

    def dump(self, obj: bytes) -> bytes:
        return obj


# --- staging: pages in, typed rows out ---------------------------------------------------------------------


@dataclass
class _Prepared:
    page: SourcePage
    page_no: int
    landing_file: str
    body: bytes | None  # NFC text of the page (content_key pages)


def _prefetch(pages: Iterable[SourcePage], prepare: Callable[[SourcePage], _Prepared]) -> Iterator[_Prepared]:
    """`prepare(page)` for each page in a helper thread, PREFETCH pages ahead of the consumer.

    The pages iterator (HTTP, landing, NFC: Python work) then runs while the database types the page before,
    on the other core. Its exceptions are raised here, in order; closing this generator stops the thread.
    """
    ready: queue.Queue = queue.Queue(maxsize=PREFETCH)
    stop = threading.Event()
    done = object()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for page in pages:
                if stop.is_set() or not put(prepare(page)):
                    return
            put(done)
        except BaseException as exc:  # handed to the consumer
            put(exc)

    thread = threading.Thread(target=work, name="chiso-load-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = ready.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


class _Staging:
    """Where one load's records wait for the final transaction, typed.

    `loading.typed_<run_id>` (UNLOGGED: nothing to recover after a crash) holds one row per staged record:
    seq, page_no, landing_file, c, r, reason (the first failed check), in_window and the target's typed
    columns. Two sessions fill it, a page each at a time (PostgreSQL parses and types a page on one core
    while the other session does the next one). The load's own session also has temp view `_chiso_load`
    (seq, page_no, landing_file, c, r) over it and runs the final transaction. Schema `loading` is the
    loader's alone (records still carry personal data here); the table is dropped when the load ends.
    """

    SESSIONS = 2

    def __init__(self, conn: psycopg.Connection, target: Target, window: sql.Composable, run_id: int,
                 session: dict[str, str], on_page: Callable[[int], None] | None = None) -> None:
        self.conn, self.target, self.window, self.session = conn, target, window, session
        self.on_page = on_page  # told the records of each page once staged
        self.table = sql.Identifier("loading", f"typed_{run_id}")
        self.rows = 0
        self._lock = threading.Lock()
        self._helpers: list[psycopg.Connection] = []
        self._prepare_session(conn)
        dummy = sql.SQL("select 0::bigint as seq, 0 as page_no, ''::text as landing_file, '{}'::jsonb as c,"
                        " '{}'::jsonb as r")
        # no autovacuum: the table lives for one load and is written once (it would compete for the cores)
        conn.execute(sql.SQL("create unlogged table {} with (autovacuum_enabled = false) as {}"
                             " with no data").format(self.table, self._typing(dummy)))
        # The narrow side of each staged row (what the final verdict reads: keys, ids, reason, window, and
        # where the row is), so the verdict never scans the records themselves.
        narrow = [*dict.fromkeys(("page_no", *target.key, *target.conflict_key))]
        self.narrow = sql.SQL(", ").join(sql.Identifier(c) for c in narrow)
        self.keys = sql.Identifier("loading", f"keys_{run_id}")
        conn.execute(sql.SQL("create unlogged table {} with (autovacuum_enabled = false) as select seq,"
                             " ctid as tid, reason, in_window, {} from {} with no data").format(
                                 self.keys, self.narrow, self.table))
        conn.execute(sql.SQL("create temp view _chiso_load as select seq, page_no, landing_file, c, r"
                             " from {}").format(self.table))
        page = sql.SQL(
            "select %(base)s::bigint + e.n as seq, %(page)s::integer as page_no,"
            " %(file)s::text as landing_file, %(c)s::jsonb as c, e.r"
            " from (select (%(doc)b::jsonb) -> %(key)s::text as d offset 0) x"
            " cross join lateral jsonb_array_elements(case jsonb_typeof(x.d) when 'array' then x.d"
            "  else '[]' end) with ordinality e (r, n)")
        # the target's SQL goes into a statement with parameters: its % signs must not read as placeholders
        marker = "chiso_page_source_marker"
        self.page_sql = sql.SQL(self._insert(sql.SQL(marker)).as_string(conn).replace("%", "%%").replace(
            marker, page.as_string(conn)))
        self.items_sql = self._insert(sql.SQL("select seq, page_no, landing_file, c, r from _chiso_items"))

    def _insert(self, source: sql.Composable) -> sql.Composable:
        """One statement: the typed rows of `source` into the work table, their narrow side into the keys."""
        return sql.SQL("with staged as (insert into {table} {typing} returning seq, ctid, reason, in_window,"
                       " {narrow}) insert into {keys} select * from staged").format(
                           table=self.table, typing=self._typing(source), narrow=self.narrow, keys=self.keys)

    def _prepare_session(self, conn: psycopg.Connection) -> None:
        conn.adapters.register_dumper(_Utf8, _Utf8Dumper)
        for name, value in self.session.items():
            conn.execute("select set_config(%s, %s, false)", (name, value))
        # JIT would compile the long check/typing expressions (seconds) to save less than it costs here
        conn.execute("set jit = off")
        conn.execute("drop table if exists _chiso_items")
        conn.execute("create temp table _chiso_items (seq bigint, page_no integer, landing_file text,"
                     " c jsonb, r jsonb)")

    def close(self) -> None:
        for helper in self._helpers:
            helper.close()
        self._helpers.clear()
        if not self.conn.closed and not self.conn.broken:
            self.conn.execute(sql.SQL("drop table if exists {}, {} cascade").format(self.table, self.keys))
            self.conn.execute("drop table if exists _chiso_items")

    def stage_all(self, prepared: Iterator[_Prepared]) -> None:
        """Stage every page: this session and a helper session take the next page in turn, as each is free.
        The first failure stops both and is raised (a source's error included)."""
        lock, stop, errors = threading.Lock(), threading.Event(), []

        def take() -> _Prepared | None:
            with lock:
                if stop.is_set():
                    return None
                return next(prepared, None)

        def consume(conn: psycopg.Connection | None) -> None:
            try:
                first = take()
                if first is None:
                    return
                if conn is None:  # the helper session opens once there is a page for it
                    conn = pg.connect("loader", autocommit=True)
                    self._helpers.append(conn)
                    self._prepare_session(conn)
                page: _Prepared | None = first
                while page is not None:
                    self.stage(conn, page)
                    page = take()
            except BaseException as exc:
                errors.append(exc)
                stop.set()

        helpers = [threading.Thread(target=consume, args=(None,), name="chiso-load-stage", daemon=True)
                   for _ in range(self.SESSIONS - 1)]
        for thread in helpers:
            thread.start()
        try:
            consume(self.conn)
        finally:
            for thread in helpers:
                thread.join()
            close = getattr(prepared, "close", None)
            if close is not None:
                close()
        if errors:
            raise errors[0]

    def _typing(self, source: sql.Composable) -> sql.Composable:
        """SELECT of the typed rows of `source` (seq, page_no, landing_file, c, r): each check, derived value
        and column computed once per record; `offset 0` keeps each level a real subquery (flattened, the
        planner would copy the expressions into every place that uses them)."""
        t = self.target
        checks = [("record is not loadable", "c ? '_reject'"), *t.checks]
        reason = sql.SQL("case {} else null end").format(sql.SQL(" ").join(
            sql.SQL("when ({}) then {}").format(
                sql.SQL(expr), sql.SQL("c->>'_reject'") if i == 0 else sql.Literal(why))
            for i, (why, expr) in enumerate(checks)))
        typed_reason = sql.SQL("null::text")
        if t.typed_checks:
            typed_reason = sql.SQL("case {} else null end").format(sql.SQL(" ").join(
                sql.SQL("when ({}) then {}").format(sql.SQL(expr), sql.Literal(why))
                for why, expr in t.typed_checks))
        derived = sql.SQL("")
        if t.derived:
            derived = sql.SQL(" cross join lateral (select {} offset 0) d").format(sql.SQL(", ").join(
                sql.SQL("case when k.reason is null then ({}) end as {}").format(
                    sql.SQL(e), sql.Identifier(n))
                for n, e in t.derived))
        typed = sql.SQL(", ").join(sql.SQL("case when k.reason is null then ({}) end as {}").format(
            sql.SQL(expr), sql.Identifier(col)) for col, expr in t.columns.items())
        cols = sql.SQL(", ").join(sql.Identifier(c) for c in t.columns)
        return sql.SQL(
            "select seq, page_no, landing_file, c, r, reason, coalesce(({window}), false) as in_window,"
            " {cols} from (select s.seq, s.page_no, s.landing_file, s.c, s.r,"
            "  coalesce(k.reason, {typed_reason}) as reason, t.*"
            "  from ({source}) s"
            "  cross join lateral (select {reason} as reason offset 0) k{derived}"
            "  cross join lateral (select {typed} offset 0) t offset 0) y"
        ).format(window=self.window, cols=cols, typed_reason=typed_reason, source=source, reason=reason,
                 derived=derived, typed=typed)

    def stage(self, conn: psycopg.Connection, p: _Prepared) -> None:
        page, staged = p.page, 0
        if len(page.items) >= PAGE_SEQ:
            raise ValueError(f"page {p.page_no} has {len(page.items)} records;"
                             f" at most {PAGE_SEQ - 1} per page")
        if page.content_key is not None:
            params = {"base": p.page_no * PAGE_SEQ, "page": p.page_no, "file": p.landing_file,
                      "c": orjson.dumps(page.context or {}).decode(), "doc": _Utf8(p.body or b""),
                      "key": page.content_key}
            try:
                with conn.transaction():
                    rows = conn.execute(self.page_sql, params).rowcount
                staged += rows
            except psycopg.DataError as exc:
                # the page itself (e.g. a \u0000 escape jsonb refuses, or bytes that are not UTF-8) goes to
                # quarantine; an error of the target's SQL on a readable page fails the run
                try:
                    with conn.transaction():
                        conn.execute("select (%b::jsonb) is null", (_Utf8(p.body or b""),))
                except psycopg.DataError:
                    why = f"page not loadable: {one_line(exc, 200)}"
                    page.items = [*page.items, ({"_reject": why}, None)]
                else:
                    raise
        if page.items:
            with conn.cursor().copy("copy _chiso_items (seq, page_no, landing_file, c, r) from stdin") as cp:
                for i, (ctx, rec) in enumerate(page.items, start=PAGE_SEQ // 2 if page.content_key else 1):
                    cp.write_row((p.page_no * PAGE_SEQ + i, p.page_no, p.landing_file,
                                  orjson.dumps(ctx).decode(), orjson.dumps(rec).decode()))
            staged += conn.execute(self.items_sql).rowcount
            conn.execute("truncate _chiso_items")
        with self._lock:
            self.rows += staged
        if self.on_page is not None:
            self.on_page(staged)

    def finish(self, result: RunResult) -> None:
        """Inside the caller's transaction: decide, quarantine, replace the window (or add the new versions),
        insert typed rows.

        One narrow pass over the typed rows decides the fate of the records that are not loaded
        (_chiso_verdict: seq, tid, repeat, present, reason); the others go into the raw table as typed.
        """
        conn, target, typed = self.conn, self.target, self.table
        table = _ident(target.table)
        conn.execute("set local work_mem = '256MB'")
        # one load of a table decides against raw at a time (two would both find a version new)
        conn.execute("select pg_advisory_xact_lock(hashtext(%s))", (target.table,))
        keys = sql.SQL(", ").join(sql.Identifier(k) for k in target.key)
        key_missing = sql.SQL(" or ").join(
            sql.SQL("{} is null").format(sql.Identifier(k)) for k in target.key)
        false = sql.SQL("false")
        # identical content is the same record, rejected or not (a rejected one is quarantined once)
        repeat = (sql.SQL("coalesce(h is not null and row_number() over (partition by {}, h order by seq)"
                          " > 1, false)").format(keys) if target.repeats else false)
        conflict = false
        ids_missing = false
        # Only records sharing their key or id with another (or missing one) can be repeats, conflicting or
        # duplicates: the window functions (sorts) run over those few; every other record is decided by its
        # own row (hash aggregates find the shared keys and ids).
        shared = [sql.SQL("({}) in (select {} from _chiso_keys)").format(keys, keys)]
        ctes = [sql.SQL("_chiso_keys as (select {k} from {t} where not ({m}) group by {k}"
                        " having count(*) > 1)").format(k=keys, t=self.keys, m=key_missing)]
        if target.conflict_key:
            ids = sql.SQL(", ").join(sql.Identifier(k) for k in target.conflict_key)
            # copies of one id in one page that differ cannot be told apart: all quarantined
            conflict = sql.SQL("coalesce(reason is null and min(h) over (partition by page_no, {})"
                               " <> max(h) over (partition by page_no, {}), false)").format(ids, ids)
            ids_missing = sql.SQL(" or ").join(sql.SQL("{} is null").format(sql.Identifier(k))
                                               for k in target.conflict_key)
            shared.append(sql.SQL("({}) in (select {} from _chiso_ids)").format(ids, ids))
            ctes.append(sql.SQL("_chiso_ids as (select {k} from {t} where not ({m}) group by {k}"
                                " having count(*) > 1)").format(k=ids, t=self.keys, m=ids_missing))
        candidate = sql.SQL("({}) or ({}) or {}").format(key_missing, ids_missing,
                                                         sql.SQL(" or ").join(shared))
        conn.execute(sql.SQL(
            "create temp table _chiso_verdict on commit drop as with {ctes}"
            " select seq, tid, repeat, false as present, reason from (select seq, tid, repeat,"
            "  case when repeat then null when verdict is not null then verdict"
            "  when row_number() over (partition by repeat, {keys} order by seq desc) > 1"
            "   then 'duplicate key within the load (the later page wins)' end as reason"
            " from (select seq, tid, {keys}, repeat, case when repeat then null"
            "   when reason is not null then reason"
            "   when {key_missing} then 'missing key value'"
            "   when conflict then 'conflicting copies of one id in a page'"
            "   when not in_window then 'outside the load window' end as verdict"
            "  from (select seq, tid, reason, {keys}, in_window, {repeat} as repeat, {conflict} as conflict"
            "   from (select k.*, (select {h} from {typed} l where l.ctid = k.tid) as h"
            "    from {narrow} k where {candidate}) c) y) z) v"
            " where repeat or reason is not null"
            " union all"
            " select seq, tid, false, false, coalesce(reason, 'outside the load window') from {narrow}"
            " where not ({candidate}) and (reason is not null or not in_window)"
        ).format(ctes=sql.SQL(", ").join(ctes), key_missing=key_missing, keys=keys, repeat=repeat,
                 conflict=conflict, candidate=candidate, typed=typed, narrow=self.keys,
                 h=sql.SQL("jsonb_hash_extended(r, 0)" if target.repeats or target.conflict_key else "0")))
        conn.execute("create index on _chiso_verdict (seq)")
        if target.history:
            # versions already in raw: the same record is not inserted again; a different one is quarantined
            conn.execute(sql.SQL(
                "insert into _chiso_verdict select l.seq, l.ctid, false, x.record = ({rec}),"
                " case when x.record <> ({rec}) then 'a different record under this version''s key is already"
                " in raw (raw keeps the first)' end"
                " from {typed} l join (select * from {table} where {window}) x using ({keys})"
                " where not exists (select from _chiso_verdict v where v.seq = l.seq)"
            ).format(rec=sql.SQL(target.record), typed=typed, table=table, window=self.window, keys=keys))
        repeats, present = conn.execute(
            "select count(*) filter (where repeat), count(*) filter (where present) from _chiso_verdict"
        ).fetchone()
        result.records_received = self.rows - repeats
        conn.execute("analyze _chiso_verdict")
        result.records_quarantined = self._quarantine(result)
        if not target.history:
            conn.execute(sql.SQL("delete from {} where {}").format(table, self.window))
        cols = sql.SQL(", ").join(sql.Identifier(c) for c in target.columns)
        cur = conn.execute(sql.SQL(
            "insert into {table} ({cols}, record, run_id, landing_file, page_no)"
            " select {cols}, {rec}, {run}, landing_file, page_no from {typed} l"
            " where not exists (select from _chiso_verdict v where v.seq = l.seq)"
        ).format(table=table, cols=cols, rec=sql.SQL(target.record), run=sql.Literal(result.run_id),
                 typed=typed))
        result.records_loaded = cur.rowcount + present
        if target.repeats:
            result.details["repeats"] = repeats
        if target.history:
            result.details["already_in_raw"] = present
        if result.records_received != result.records_loaded + result.records_quarantined:  # cannot happen
            raise RuntimeError(f"counts do not reconcile: {result.records_received} received, "
                               f"{result.records_loaded} loaded, {result.records_quarantined} quarantined")

    def _quarantine(self, result: RunResult) -> int:
        """The rejected records into quarantine.records, one row per record and reason whatever the number of
        runs that saw it (a record seen again moves last_run_id and times_seen); returns how many this load
        rejected. A record that is not JSON (a page PostgreSQL cannot read) has no hash: one row per run."""
        conn, target = self.conn, self.target
        conn.execute(sql.SQL(
            "insert into quarantine.records as q (run_id, last_run_id, source, entity, landing_file, page_no,"
            " record_key, record, record_hash, reason)"
            " select {run}, {run}, {src}, {ent}, landing_file, page_no, record_key, record, record_hash,"
            "  reason"
            " from (select *, row_number() over (partition by record_hash, reason order by seq) as nth"
            "  from (select l.seq, l.landing_file, l.page_no, {rk} as record_key, {qrec} as record,"
            "   md5(({qrec})::text) as record_hash, v.reason"
            "   from {typed} l join _chiso_verdict v on v.seq = l.seq"
            "   where v.reason is not null and l.ctid = any(array(select tid from _chiso_verdict"
            "    where reason is not null))) x) y"
            " where record_hash is null or nth = 1"
            " order by seq"
            " on conflict (source, entity, reason, record_hash) where record_hash is not null"
            " do update set last_run_id = excluded.run_id, times_seen = q.times_seen + 1"
            "  where q.last_run_id is distinct from excluded.run_id"
        ).format(typed=self.table, run=sql.Literal(result.run_id), src=sql.Literal(result.source),
                 ent=sql.Literal(result.entity), rk=sql.SQL(target.record_key),
                 qrec=sql.SQL(target.quarantine_record)))
        return conn.execute("select count(*) from _chiso_verdict where reason is not null").fetchone()[0]


def _update_audit(conn: psycopg.Connection, result: RunResult, status: str) -> None:
    result.status = status
    conn.execute(
        "update audit.extract_runs set status = %s, finished_at = clock_timestamp(), pages = %s,"
        " records_received = %s, records_loaded = %s, records_quarantined = %s, bytes = %s, checksum = %s,"
        " landing_path = %s, error = %s, details = %s where run_id = %s",
        (status, result.pages, result.records_received, result.records_loaded, result.records_quarantined,
         result.bytes, result.checksum, result.landing_path, result.error,
         orjson.dumps({**result.details, "seconds": round(result.seconds, 3)}).decode(), result.run_id))
