"""What the provincial sources S2-S4 share: auth, paging of the S2-style envelope, windows and watermarks.

Paging (contract: `{"content": [...], "number", "size", "totalElements", "totalPages"}`, 0-based pages) must
survive records changing while it runs. Where the contract orders a list by its update time (S2 dossiers,
S3 feedback and ratings: by NgayCapNhat then id, `updatedFrom` inclusive), pages are read by keyset: after a
full page the next request starts again at page 0 from the newest NgayCapNhat seen, so a record that moves
(it changed, so its NgayCapNhat grew) is met again further on, and records before the cursor can no longer
slide under it. The records at the cursor's second are read twice; the loader keeps identical copies once,
and every version of an id (raw keeps the history; staging takes the newest). Lists with no stated order
are paged by number. Either way a final check asks the server how many records the window holds now and
compares with the distinct versions staged (a server that lists each record once as it is now: distinct
ids, CHISO_PROVINCIAL_LISTING=latest); if any are missing the window is read again (twice at most), else
the run fails without loading anything.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql

from ingestion import clock, pg
from ingestion.clock import LOCAL_TZ
from ingestion.config import settings
from ingestion.http import HttpClient, Response, SourceError
from ingestion.load import RunResult, SourcePage, Target, run_load

log = logging.getLogger(__name__)

TOKEN_PATH = "/auth/realms/digo/protocol/openid-connect/token"
OVERLAP = timedelta(hours=2)  # incremental windows re-read this much before the watermark (late changes)
FIRST_LOOKBACK = timedelta(days=30)  # an entity with no watermark yet starts this far back
RESWEEPS = 2  # times a window is read again when the final check finds records missing
LISTINGS = ("versions", "latest")  # CHISO_PROVINCIAL_LISTING (ingestion/config.py)
_LOCAL_STAMP = re.compile(r"^\d{14}$")


# --- auth -------------------------------------------------------------------------------------------


class OAuthClient:
    """GETs with a Bearer token from OAuth2 client credentials (S2, S3).

    The token is cached until shortly before `expires_in`; a 401 means it expired early (or was revoked):
    fetch a new one and retry that request once.
    """

    def __init__(self, http: HttpClient, client_id: str, client_secret: str) -> None:
        self.http, self.client_id, self.client_secret = http, client_id, client_secret
        self._token: str | None = None
        self._expires = 0.0
        self.tokens_fetched = 0

    def token(self, renew: bool = False) -> str:
        if renew or self._token is None or time.monotonic() >= self._expires:
            resp = self.http.request_json("POST", TOKEN_PATH, data={
                "grant_type": "client_credentials", "client_id": self.client_id,
                "client_secret": self.client_secret})
            data = resp.data if isinstance(resp.data, dict) else {}
            if not isinstance(data.get("access_token"), str):
                raise SourceError(self.http.source, resp.url, "token answer has no access_token",
                                  status=resp.status, tries=resp.tries)
            lifetime = float(data.get("expires_in") or 60)
            self._token = data["access_token"]
            self._expires = time.monotonic() + lifetime - min(30.0, lifetime / 10)
            self.tokens_fetched += 1
        return self._token

    def get_json(self, path: str, params: dict[str, Any] | None = None) -> Response:
        try:
            return self.http.get_json(path, params, headers={"Authorization": f"Bearer {self.token()}"})
        except SourceError as exc:
            if exc.status != 401:
                raise
        return self.http.get_json(path, params, headers={"Authorization": f"Bearer {self.token(renew=True)}"})

    def close(self) -> None:
        self.http.close()


class ApiKeyClient:
    """GETs with an `X-Api-Key` header (S4)."""

    def __init__(self, http: HttpClient) -> None:
        self.http = http

    def get_json(self, path: str, params: dict[str, Any] | None = None) -> Response:
        return self.http.get_json(path, params)

    def close(self) -> None:
        self.http.close()


Client = OAuthClient | ApiKeyClient


# --- what to read --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entity:
    """One list of a source and the raw table it fills."""

    source: str
    name: str  # audit entity and watermark name
    path: str
    target: Target
    id_sql: str  # SQL over r: the record's id (for the final completeness check)
    time_field: str | None = None  # the record's update/observation time; None: a full list
    time_format: str = "local"  # 'local' yyyyMMddHHmmss or 'iso'
    time_column: str | None = None  # the raw column holding it (the window's rows)
    params: tuple[str, str] = ("updatedFrom", "updatedTo")
    keyset: bool = True  # the contract orders the list by time_field then id

    def window(self, start: datetime, end: datetime) -> sql.Composable:
        if self.time_column is None:
            return sql.SQL("true")
        return sql.SQL("{col} >= {s} and {col} < {e}").format(
            col=sql.Identifier(self.time_column), s=sql.Literal(start), e=sql.Literal(end))


@dataclass
class Paging:
    """What one paged read saw, for the completeness check and the audit row."""

    requests: int = 0
    malformed: int = 0
    sweeps: int = 0
    server_total: int | None = None
    staged_ids: int | None = None


def _envelope(data: Any) -> tuple[list[Any], int | None, int | None] | None:
    """(content, totalElements, totalPages) of an S2-style page, None when it is not one."""
    if not isinstance(data, dict) or not isinstance(data.get("content"), list):
        return None
    ints = [data.get(k) if isinstance(data.get(k), int) else None for k in ("totalElements", "totalPages")]
    return data["content"], ints[0], ints[1]


def _record_time(entity: Entity, item: Any) -> datetime | None:
    value = item.get(entity.time_field) if isinstance(item, dict) else None
    if not isinstance(value, str):
        return None
    try:
        if entity.time_format == "local":
            if not _LOCAL_STAMP.match(value):
                return None
            return datetime.strptime(value, "%Y%m%d%H%M%S").replace(tzinfo=LOCAL_TZ)
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _iso(moment: datetime) -> str:
    return moment.astimezone(LOCAL_TZ).isoformat()


def read_pages(client: Client, entity: Entity, *, size: int, start: datetime | None = None,
               end: datetime | None = None, state: Paging | None = None,
               context: dict[str, Any] | None = None) -> Iterator[SourcePage]:
    """Every page of a list (full, or the window [start, end) of a timed one), as loader pages.

    A page that is valid JSON but not the envelope is fetched once more, then kept in quarantine (as one
    rejected item) and skipped, so it never stops the other pages.
    """
    state = state if state is not None else Paging()
    state.sweeps += 1
    cursor, number, limit, requests = start, 0, None, 0
    timed = entity.time_field is not None and start is not None and end is not None
    while True:
        params: dict[str, Any] = {"page": number, "size": size}
        if timed:
            params = {entity.params[0]: _iso(cursor), entity.params[1]: _iso(end), **params}
        resp, env = None, None
        for _ in range(2):
            resp = client.get_json(entity.path, params)
            state.requests += 1
            env = _envelope(resp.data)
            if env is not None:
                break
        assert resp is not None
        request = {"path": entity.path, "params": params}
        if env is None and isinstance(resp.data, list) and not timed:  # a bare list: the whole list at once
            yield SourcePage(resp.content, [(context or {}, r) for r in resp.data], request)
            return
        if env is None:
            state.malformed += 1
            yield SourcePage(resp.content, [({"_reject": "malformed page (not the paging envelope)"}, None)],
                             request)
            number += 1
            requests += 1
            if limit is not None and requests > limit:
                raise SourceError(entity.source, resp.url, f"paging did not end after {requests} pages")
            continue
        items, total, pages = env
        yield SourcePage(resp.content, request=request, content_key="content", context=context or {},
                         total=total)
        requests += 1
        if limit is None:  # bound runaway paging (a server ignoring page numbers): each page twice + slack
            limit = 2 * max(pages or 0, (total or 0) // max(size, 1) + 1) + 10
        if requests > limit:
            raise SourceError(entity.source, resp.url, f"paging did not end after {requests} pages")
        if len(items) < size or (not entity.keyset and pages is not None and number + 1 >= pages):
            return
        last = None
        if timed and entity.keyset:
            last = next((t for t in map(lambda i: _record_time(entity, i), reversed(items)) if t), None)
        if last is not None and cursor is not None and last > cursor:
            cursor, number = last, 0  # keyset: restart from the newest update seen
        else:
            number += 1  # a full page within one second (or no order): page on by number


def verifier(client: Client, entity: Entity, *, size: int, start: datetime, end: datetime, state: Paging,
             context: dict[str, Any] | None = None) -> Callable[[psycopg.Connection], Any]:
    """The loader's `verify` hook: compare the window's count on the server now with the distinct versions
    (or ids: CHISO_PROVINCIAL_LISTING) staged; read the window again while some are missing (RESWEEPS
    times), then fail."""

    listing = settings().provincial_listing
    if listing not in LISTINGS:
        raise ValueError(f"CHISO_PROVINCIAL_LISTING must be one of {', '.join(LISTINGS)}, not {listing!r}")
    # what the server counts in totalElements: every version changed in the window, or each id once
    counted = sql.SQL(entity.id_sql)
    if listing == "versions" and entity.time_field is not None:
        counted = sql.SQL("({}, r->>{})").format(counted, sql.Literal(entity.time_field))

    def verify(conn: psycopg.Connection) -> Iterator[SourcePage] | None:
        resp = client.get_json(entity.path, {entity.params[0]: _iso(start), entity.params[1]: _iso(end),
                                             "page": 0, "size": 1})
        env = _envelope(resp.data)
        if env is None or env[1] is None:
            raise SourceError(entity.source, resp.url, "completeness check: no totalElements in the answer",
                              status=resp.status, tries=resp.tries)
        state.server_total = env[1]
        state.staged_ids = conn.execute(sql.SQL(
            "select count(distinct {}) from _chiso_load where jsonb_typeof(r) = 'object'").format(
                counted)).fetchone()[0]
        missing = state.server_total - state.staged_ids - state.malformed * size
        if missing <= 0:
            return None
        if state.sweeps > RESWEEPS:
            raise SourceError(entity.source, resp.url, f"{missing} records of the window still missing after "
                              f"{state.sweeps} reads ({state.server_total} on the server, "
                              f"{state.staged_ids} read)")
        log.warning("%s/%s: %d records missing after paging; reading the window again", entity.source,
                    entity.name, missing)
        return read_pages(client, entity, size=size, start=start, end=end, state=state, context=context)

    return verify


# --- windows and watermarks ---------------------------------------------------------------------------


def as_moment(value: date | datetime, *, end: bool = False) -> datetime:
    """A window bound: dates are whole local days (an end date is included), naive datetimes local time."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=LOCAL_TZ)
    day = value + timedelta(days=1) if end else value
    return datetime(day.year, day.month, day.day, tzinfo=LOCAL_TZ)


def now() -> datetime:
    return clock.now().replace(microsecond=0)


def watermark(source: str, entity: str) -> datetime | None:
    with pg.connect("loader") as conn:
        row = conn.execute("select watermark from audit.watermarks where source = %s and entity = %s",
                           (source, entity)).fetchone()
    return row[0] if row else None


def window_for(entity: Entity, start: date | datetime | None,
               end: date | datetime | None) -> tuple[datetime, datetime]:
    """[start, end): explicit bounds as given, but never past now (a watermark in the future would skip
    what changes later today); else from the watermark less OVERLAP (or FIRST_LOOKBACK ago) to now."""
    stop = min(as_moment(end, end=True), now()) if end is not None else now()
    if start is not None:
        begin = as_moment(start)
    else:
        mark = watermark(entity.source, entity.name)
        begin = min(mark, stop) - OVERLAP if mark is not None else stop - FIRST_LOOKBACK
    if stop <= begin:
        raise ValueError(f"{entity.source}/{entity.name}: window end {stop} is not after its start {begin}")
    return begin, stop


def advance_watermark(conn: psycopg.Connection, source: str, entity: str, start: datetime, end: datetime,
                      run_id: int) -> None:
    """Inside the load's transaction: the watermark becomes `end` when that moves it forward without a gap
    (the window starts at or before it), or when there is none yet. A back-fill never moves it back."""
    conn.execute(
        "insert into audit.watermarks as w (source, entity, watermark, run_id) values (%s, %s, %s, %s)"
        " on conflict (source, entity) do update set watermark = excluded.watermark,"
        " run_id = excluded.run_id, updated_at = now()"
        " where w.watermark < excluded.watermark and w.watermark >= %s",
        (source, entity, end, run_id, start))


# --- one entity, end to end -----------------------------------------------------------------------------


@dataclass
class Extraction:
    """Summary of one source's extract() call (what it returns, as a dict)."""

    source: str
    run_label: str | None
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        keys = ("pages", "received", "loaded", "quarantined")
        total = {k: sum(r[k] for r in self.runs.values()) for k in keys}
        return {"source": self.source, "run_label": self.run_label, "runs": self.runs, **total}


def load_entity(client: Client, entity: Entity, out: Extraction, *, size: int,
                start: date | datetime | None = None, end: date | datetime | None = None,
                session: dict[str, str] | None = None,
                on_commit: Callable[[psycopg.Connection, RunResult], None] | None = None) -> RunResult:
    """Read and load one entity: a full list, or a window (default: incremental from the watermark)."""
    details: dict[str, Any] = {"run_label": out.run_label}
    state = Paging()
    if entity.time_field is None:
        begin = stop = None
        pages = read_pages(client, entity, size=size, state=state)
        verify, hook = None, on_commit
    else:
        begin, stop = window_for(entity, start, end)
        details["incremental"] = start is None
        pages = read_pages(client, entity, size=size, start=begin, end=stop, state=state)
        verify = verifier(client, entity, size=size, start=begin, end=stop, state=state)

        def hook(conn: psycopg.Connection, result: RunResult) -> None:
            advance_watermark(conn, entity.source, entity.name, begin, stop, result.run_id)
            if on_commit is not None:
                on_commit(conn, result)

    details["paging"] = state.__dict__  # filled while paging; stored with the audit row at the end
    result = run_load(source=entity.source, entity=entity.name, target=entity.target, pages=pages,
                      window=entity.window(begin, stop) if begin else sql.SQL("true"), window_start=begin,
                      window_end=stop, details=details, session=session, verify=verify, on_commit=hook)
    out.runs[entity.name] = {
        "run_id": result.run_id, "window_start": begin.isoformat() if begin else None,
        "window_end": stop.isoformat() if stop else None, "pages": result.pages,
        "received": result.records_received, "loaded": result.records_loaded,
        "quarantined": result.records_quarantined, "repeats": result.details.get("repeats", 0),
        "already_in_raw": result.details.get("already_in_raw", 0)}
    return result


# --- SQL fragments the targets share -------------------------------------------------------------------


def text(field_: str) -> str:
    """A field as text, '' and null alike as null (the record is NFC already: the page was normalised)."""
    return f"nullif(r->>'{field_}', '')"


def fields(*names: str) -> tuple[tuple[str, str], ...]:
    """Target.derived: each field's text read once per record, under the field's own name."""
    return tuple((f, f"r->>'{f}'") for f in names)


def local_ts(field_: str) -> str:
    """A yyyyMMddHHmmss field as timestamptz (null when empty or impossible). The field must be one of the
    Target's derived `fields`: raw.local_ts inlines and reads its argument many times."""
    return f'raw.local_ts("{field_}")'


def bad_local_ts(columns: dict[str, str]) -> str:
    """A typed check: a date field (column -> field) has a value that is not a possible yyyyMMddHHmmss."""
    return " or ".join(f"(\"{f}\" <> '' and {col} is null)" for col, f in columns.items())


def unit(code_field: str, name_field: str | None = None) -> str:
    """The current unit of a record (through raw.unit_crosswalk): by its unit code, else that field as a name
    (pre-merger records may carry the old unit's name there), else `name_field` without a leading 'UBND'."""
    def lookup(kind: str, key: str) -> str:
        return (f"(select x.unit_code from raw.unit_crosswalk x where x.key_kind = '{kind}'"
                f" and x.source_key = {key})")

    parts = [lookup("code", f"r->>'{code_field}'"), lookup("name", f"lower(r->>'{code_field}')")]
    if name_field is not None:
        parts.append(lookup("name", f"lower(regexp_replace(r->>'{name_field}', '^UBND\\s+', '', 'i'))"))
    return f"coalesce({', '.join(parts)})"


NOT_OBJECT = ("record is not a JSON object", "jsonb_typeof(r) is distinct from 'object'")


def require_crosswalk(source: str) -> None:
    with pg.connect("loader") as conn:
        if not conn.execute("select exists (select from raw.unit_crosswalk)").fetchone()[0]:
            raise RuntimeError(f"{source}: raw.unit_crosswalk is empty; extract `dossiers` first "
                               "(it loads the unit list every record is checked against)")
