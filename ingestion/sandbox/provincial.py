"""Sandbox servers of the provincial sources S2 (dossiers), S3 (feedback) and S4 (service centres).

They follow contracts/SOURCES.md (S2-S4) and serve the deterministic sandbox province
(`ingestion.sandbox.province`): same seed and scale give the same data on every run.

S2 and S3: OAuth2 client credentials, `POST /auth/realms/digo/protocol/openid-connect/token` (form fields
grant_type=client_credentials, client_id, client_secret; HTTP Basic also accepted) ->
`{"access_token", "token_type": "Bearer", "expires_in"}`; the API wants `Authorization: Bearer <token>`,
an unknown or expired token gets 401. Lists answer `{"content", "number", "size", "totalElements",
"totalPages"}` (0-based `page`, `size` 1..1000, default page 0 and size 1000).
- S2: `/api/v1/dossiers?updatedFrom=&updatedTo=&page=&size=` (from inclusive, to exclusive; ordered by
  NgayCapNhat then MaHoSo), `/api/v1/procedures`, `/api/v1/units`. `listing="versions"` (`--listing`)
  lists every version of a dossier changed in the window (one per change, each as it was then); the
  default lists each dossier once, as it is now (the shift faults act on that listing only). Times:
  ISO-8601 with an offset or Z, naive (local time) or a bare date; a fraction of a second rounds up to
  the next whole second.
- S3: `/api/v1/feedback` and `/api/v1/ratings` with the same parameters (ordered by NgayCapNhat then
  MaPAKN / MaDanhGia).
- S4: header `X-Api-Key` (missing: 401, wrong: 403 with a JSON body); `/api/v1/centres`,
  `/api/v1/centres/snapshots?from=&to=&page=&size=` (ThoiDiem in [from, to), ordered by ThoiDiem then
  MaTrungTam; a snapshot is published an hour after its ThoiDiem; an offline centre has none).
Bad parameters get 400 `{"status": 400, "error": "Bad Request", "message": ...}`.

The clock: data are shown "as of" the server's clock, by default the project's (ingestion.clock: the real
time unless CHISO_TODAY fixes it), rounded down to the minute, so paging a window within a minute sees one
state; `POST /_sandbox/clock` with `{"as_of": "2026-11-20T08:00:00+07:00"}` fixes it, `{"advance": seconds}`
moves a fixed clock on, `{"as_of": null}` goes back to the project's clock; `GET /_sandbox/clock` tells it.

Faults (`POST /_sandbox/faults`, a list; see ingestion/sandbox/__init__.py for the shared ones: status
429/403/5xx with retry_after, delay, truncate, close, and "path"/"skip" to aim them) apply to every
request outside /_sandbox/, the token endpoint included. Provincial ones (aimed at "/api/" unless a
"path" is given):
  {"envelope_error": true}      HTTP 200 with a Spring-style error body and no "content"
  {"expire_tokens": true}       every token issued so far expires now (this request gets 401)
  {"shift": true|"move"|"arrive"}  S2 dossiers: before this page is answered the list changes. "move":
                                the window's first record (page 0) gets a newer NgayCapNhat, one second
                                after the window's last record (still inside the window, not after the
                                clock), so it moves to the last page and every record between shifts
                                one place back; "arrive": a new record arrives with that same time
                                (totalElements grows by one); true: both. The change stays.
  {"duplicate_conflict": true}  this page carries one record twice: before the original, a stale copy
                                (NgayCapNhat one second older, an earlier TrangThaiHoSo / TrangThai /
                                MucDo); the page has size + 1 items. Keep the newest NgayCapNhat.
`GET /_sandbox/stats` adds `moved` and `arrived` (ids changed by shift faults) and `tokens` (issued).
`POST /_sandbox/reset` clears queued faults and the shift changes.

Run: `python -m ingestion.sandbox.provincial --source dossiers|feedback|centres --port 8702|8703|8704
[--dossiers-per-day N --history-days D --seed S --start YYYY-MM-DD --as-of ISO --token-lifetime s]`.
Credentials from CHISO_DOSSIERS_CLIENT_ID (default chiso) / CHISO_DOSSIERS_CLIENT_SECRET,
CHISO_FEEDBACK_CLIENT_ID / CHISO_FEEDBACK_CLIENT_SECRET, CHISO_CENTRES_API_KEY; an unset secret comes
from `ingestion.config.credentials()`. In-process: `serve_dossiers(...)`, `serve_feedback(...)`,
`serve_centres(...)` context managers yield the base URL (port 0 = a free port).
"""

from __future__ import annotations

import argparse
import base64
import math
import os
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
import orjson

from ingestion import clock
from ingestion.sandbox import Faults, SandboxHandler, SandboxServer, running
from ingestion.sandbox import province as pv

TOKEN_PATH = "/auth/realms/digo/protocol/openid-connect/token"
DEFAULT_SIZE, MAX_SIZE = 1000, 1000
SOURCES = ("dossiers", "feedback", "centres")
DEFAULT_PORTS = {"dossiers": 8702, "feedback": 8703, "centres": 8704}
CREDENTIALS = {  # source -> (client id env, secret env, secret key in config.credentials())
    "dossiers": ("CHISO_DOSSIERS_CLIENT_ID", "CHISO_DOSSIERS_CLIENT_SECRET", "dossiers_client_secret"),
    "feedback": ("CHISO_FEEDBACK_CLIENT_ID", "CHISO_FEEDBACK_CLIENT_SECRET", "feedback_client_secret"),
    "centres": (None, "CHISO_CENTRES_API_KEY", "centres_api_key"),
}
PROVINCIAL_FAULTS = ("envelope_error", "expire_tokens", "shift", "duplicate_conflict")


class BadRequest(Exception):
    pass


def credential(source: str) -> tuple[str | None, str]:
    """(client id, secret or API key) of a source's sandbox: environment first, then the project's
    credentials file."""
    id_env, secret_env, key = CREDENTIALS[source]
    client_id = (os.environ.get(id_env) or "chiso") if id_env else None
    secret = os.environ.get(secret_env)
    if not secret:
        from ingestion.config import credentials

        secret = credentials()[key]
    return client_id, secret


# S2 dossiers: "latest" lists the window's dossiers once each, as they are now; "versions" lists every
# version, one per change in the window (the contract's "sent whole each time it changes").
LISTINGS = ("latest", "versions")


class State:
    """What a provincial sandbox server knows: the province, credentials, tokens, clock, shift changes
    and a small cache of window indexes (so the pages of one query see one sorted list)."""

    def __init__(
        self,
        source: str,
        province: pv.Province,
        *,
        client_id: str | None,
        secret: str,
        token_lifetime: int = 300,
        as_of: int | None = None,
        listing: str = "latest",
    ) -> None:
        self.source, self.province = source, province
        self.feedback = pv.Feedback(province)
        self.centres = pv.Centres(province)
        self.client_id, self.secret, self.token_lifetime = client_id, secret, token_lifetime
        self.clock = as_of
        if listing not in LISTINGS:
            raise ValueError(f"listing must be one of {', '.join(LISTINGS)}, not {listing!r}")
        self.versions = listing == "versions"
        self.lock = threading.RLock()
        self.tokens: dict[str, float] = {}  # token -> expiry (monotonic)
        self.issued = 0
        self.moved: dict[tuple[int, int], int] = {}  # shift fault: (day, num) -> new NgayCapNhat
        self.moved_ids: list[str] = []
        self.arrived_ids: list[str] = []
        self.version = 0
        self._cache: OrderedDict[tuple[Any, ...], Any] = OrderedDict()

    def now(self) -> int:
        if self.clock is not None:
            return self.clock
        return pv.now_ts() // 60 * 60

    def issue(self) -> str:
        token = secrets.token_urlsafe(24)
        with self.lock:
            self.tokens[token] = time.monotonic() + self.token_lifetime
            self.issued += 1
        return token

    def valid(self, token: str) -> bool:
        with self.lock:
            expiry = self.tokens.get(token)
            return expiry is not None and time.monotonic() < expiry

    def expire_tokens(self) -> None:
        with self.lock:
            self.tokens.clear()

    def index(self, entity: str, first: int, end: int, at: int) -> np.ndarray:
        """The window's sorted (time, ...) index. A window that starts later than a cached one with the same
        end is a suffix of it, so keyset paging (updatedFrom = the newest time seen) costs no new scan."""
        key = (entity, first, end, at, self.version)
        with self.lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
            for (e, f0, end0, at0, v0), cached in self._cache.items():
                if (e, end0, at0, v0) == (entity, end, at, self.version) and f0 <= first:
                    idx = cached[np.searchsorted(cached[:, 0], first, side="left"):]
                    break
            else:
                if entity == "dossiers":
                    idx = self.province.window_index(first, end, at, self.moved, self.versions)
                elif entity == "feedback":
                    idx = self.feedback.feedback_index(first, end, at)
                elif entity == "ratings":
                    idx = self.feedback.ratings_index(first, end, at)
                else:
                    idx = np.array(self.centres.index(first, end, at), dtype=np.int64).reshape(-1, 2)
            self._cache[key] = idx
            while len(self._cache) > 8:
                self._cache.popitem(last=False)
            return idx

    def shift(self, how: Any, first: int, end: int, at: int) -> None:
        """The shift fault on a dossier window (see the module docstring)."""
        with self.lock:
            idx = self.index("dossiers", first, end, at)
            if not len(idx):
                return
            t = min(int(idx[-1, 0]) + 1, end - 1, at)
            if how in (True, "move") and t > idx[0, 0]:
                day, num = int(idx[0, 1]), int(idx[0, 2])
                self.moved[(day, num)] = t
                self.moved_ids.append(self.province.records(idx[:1], at)[0]["MaHoSo"])
            if how in (True, "arrive"):
                day = t // pv.DAY
                num = self.province.count(date.fromordinal(day)) + len(self.arrived_ids)
                self.moved[(day, num)] = t
                rec = self.province.records(np.array([[t, day, num]], dtype=np.int64), at)[0]
                self.arrived_ids.append(rec["MaHoSo"])
            self.version += 1

    def reset(self) -> None:
        with self.lock:
            self.moved.clear()
            self.moved_ids.clear()
            self.arrived_ids.clear()
            self.version += 1
            self._cache.clear()


def _page_args(query: dict[str, list[str]]) -> tuple[int, int]:
    try:
        page = int(query.get("page", ["0"])[0] or 0)
        size = int(query.get("size", [str(DEFAULT_SIZE)])[0] or DEFAULT_SIZE)
    except ValueError:
        raise BadRequest("page and size must be integers") from None
    if page < 0 or not 1 <= size <= MAX_SIZE:
        raise BadRequest(f"page must be >= 0 and size between 1 and {MAX_SIZE}")
    return page, size


def _window(query: dict[str, list[str]], lo: str, hi: str) -> tuple[int, int]:
    try:
        first, end = pv.parse_time(query[lo][0]), pv.parse_time(query[hi][0])
    except (KeyError, IndexError):
        raise BadRequest(f"{lo} and {hi} are required (ISO-8601)") from None
    except ValueError:
        raise BadRequest(f"{lo} and {hi} must be ISO-8601 times") from None
    if end < first:
        raise BadRequest(f"{hi} is before {lo}")
    return first, end


def envelope(content: list[Any], page: int, size: int, total: int) -> dict[str, Any]:
    return {
        "content": content,
        "number": page,
        "size": size,
        "totalElements": total,
        "totalPages": math.ceil(total / size),
    }


def _stale(rec: dict[str, Any]) -> dict[str, Any]:
    """A stale copy of a record: one second older, an earlier state."""
    copy = dict(rec)
    t = pv.parse_time(rec["NgayCapNhat"]) - 1
    copy["NgayCapNhat"] = pv.fmt(t)
    if "TrangThaiHoSo" in copy:
        copy["TrangThaiHoSo"] = 4 if rec["TrangThaiHoSo"] != 4 else 2
    elif "TrangThai" in copy:
        copy["TrangThai"] = "DANG_XU_LY" if rec["TrangThai"] != "DANG_XU_LY" else "MOI"
    elif "MucDo" in copy:
        copy["MucDo"] = 1 + rec["MucDo"] % 3
    return copy


class Handler(SandboxHandler):
    @property
    def state(self) -> State:
        return self.server.state  # type: ignore[attr-defined]

    def handle_admin(self, method: str) -> bool:
        name = self.path.split("?")[0]
        state = self.state
        if name == "/_sandbox/clock":
            if method == "POST":
                body = orjson.loads(self.read_body() or b"{}")
                with state.lock:
                    if "as_of" in body:
                        state.clock = None if body["as_of"] is None else pv.parse_time(str(body["as_of"]))
                    if "advance" in body:
                        state.clock = state.now() + int(body["advance"])
            self.send_json(200, {"as_of": pv.fmt_iso(state.now()), "fixed": state.clock is not None})
            return True
        if name == "/_sandbox/stats" and method == "GET":
            self.send_json(
                200,
                {
                    "status": "ok",
                    **self.faults.stats(),
                    "moved": state.moved_ids,
                    "arrived": state.arrived_ids,
                    "tokens": state.issued,
                    "as_of": pv.fmt_iso(state.now()),
                },
            )
            return True
        if name == "/_sandbox/faults" and method == "POST":
            body = orjson.loads(self.read_body() or b"[]")
            faults = body if isinstance(body, list) else [body]
            for f in faults:  # provincial faults are meant for API calls, not the token endpoint
                if any(k in f for k in PROVINCIAL_FAULTS) and "path" not in f:
                    f["path"] = "/api/"
            self.send_json(200, {"queued": self.faults.add(faults)})
            return True
        if name == "/_sandbox/reset" and method in ("POST", "DELETE"):
            state.reset()
        return super().handle_admin(method)

    def error(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        reason = {
            400: "Bad Request",
            401: "Unauthorized",
            403: "Forbidden",
            404: "Not Found",
            405: "Method Not Allowed",
        }[status]
        self.send_json(
            status,
            {"status": status, "error": reason, "message": message, "path": self.path.split("?")[0]},
            headers,
        )

    def do_POST(self) -> None:  # noqa: N802 - stdlib naming
        if self.handle_admin("POST"):
            return
        raw = self.read_body()
        fault = self.faults.take(self.path)
        if self.fault_before(fault):
            return
        if self.path.split("?")[0] != TOKEN_PATH or self.state.source == "centres":
            self.error(405 if self.path.startswith("/api/") else 404, "no such endpoint")
            return
        form = {k: v[0] for k, v in parse_qs(raw.decode("utf-8", "replace")).items()}
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            cid, _, sec = base64.b64decode(auth[6:]).decode("utf-8", "replace").partition(":")
            form.setdefault("client_id", cid)
            form.setdefault("client_secret", sec)
        if form.get("grant_type") != "client_credentials":
            self.send_json(
                400,
                {
                    "error": "unsupported_grant_type",
                    "error_description": "grant_type must be client_credentials",
                },
            )
            return
        state = self.state
        if form.get("client_id") != state.client_id or not secrets.compare_digest(
            form.get("client_secret", "").encode(), state.secret.encode()
        ):
            self.send_json(
                401, {"error": "invalid_client", "error_description": "Invalid client credentials"}
            )
            return
        body = {"access_token": state.issue(), "token_type": "Bearer", "expires_in": state.token_lifetime}
        self.send_with_fault(200, orjson.dumps(body), fault)

    def do_GET(self) -> None:  # noqa: N802
        if self.handle_admin("GET"):
            return
        fault = self.faults.take(self.path)
        if self.fault_before(fault):
            return
        state = self.state
        if fault and fault.get("expire_tokens"):
            state.expire_tokens()
        if not self.authorised():
            return
        if fault and fault.get("envelope_error"):
            self.send_json(
                200,
                {
                    "timestamp": pv.fmt_iso(pv.now_ts()),
                    "status": 500,
                    "error": "Internal Server Error",
                    "message": "Hệ thống đang bận (injected)",
                    "path": self.path.split("?")[0],
                },
            )
            return
        split = urlsplit(self.path)
        query = parse_qs(split.query)
        route = ROUTES.get(state.source, {}).get(split.path.rstrip("/"))
        if route is None:
            self.error(404, f"no such endpoint: {split.path}")
            return
        try:
            body = route(state, query, fault or {})
        except BadRequest as exc:
            self.error(400, str(exc))
            return
        self.send_with_fault(200, orjson.dumps(body), fault)

    def authorised(self) -> bool:
        state = self.state
        if state.source == "centres":
            key = self.headers.get("X-Api-Key")
            if not key:
                self.error(401, "X-Api-Key header required")
                return False
            if not secrets.compare_digest(key.encode(), state.secret.encode()):
                self.error(403, "invalid API key")
                return False
            return True
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or not state.valid(auth[7:].strip()):
            self.send_json(
                401,
                {"error": "invalid_token", "error_description": "Token is not active"},
                {"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
            return False
        return True

    def do_DELETE(self) -> None:  # noqa: N802
        if not self.handle_admin("DELETE"):
            self.error(405, "method not allowed")

    def do_PUT(self) -> None:  # noqa: N802
        self.error(405, "method not allowed")

    do_PATCH = do_PUT  # noqa: N815


# --- routes ----------------------------------------------------------------------------------------


def _static(rows: Callable[[State], list[dict[str, Any]]]) -> Callable[..., dict[str, Any]]:
    def answer(state: State, query: dict[str, list[str]], fault: dict[str, Any]) -> dict[str, Any]:
        page, size = _page_args(query)
        allrows = rows(state)
        return envelope(allrows[page * size : (page + 1) * size], page, size, len(allrows))

    return answer


def _timed(entity: str) -> Callable[..., dict[str, Any]]:
    """A list over a time window (dossiers, feedback, ratings)."""

    def answer(state: State, query: dict[str, list[str]], fault: dict[str, Any]) -> dict[str, Any]:
        first, end = _window(query, "updatedFrom", "updatedTo")
        page, size = _page_args(query)
        at = state.now()
        if fault.get("shift") and entity == "dossiers":
            state.shift(fault["shift"], first, end, at)
        idx = state.index(entity, first, end, at)
        keys = idx[page * size : (page + 1) * size]
        if entity == "dossiers":
            rows = state.province.records(keys, at, state.versions)
        elif entity == "feedback":
            rows = state.feedback.feedback(keys, at)
        else:
            rows = state.feedback.ratings(keys)
        if fault.get("duplicate_conflict") and rows:
            k = len(rows) // 2
            rows.insert(k, _stale(rows[k]))
        return envelope(rows, page, size, len(idx))

    return answer


def _snapshots(state: State, query: dict[str, list[str]], fault: dict[str, Any]) -> dict[str, Any]:
    first, end = _window(query, "from", "to")
    page, size = _page_args(query)
    idx = state.index("snapshots", first, end, state.now())
    rows = [state.centres.snapshot(ts, c) for ts, c in idx[page * size : (page + 1) * size].tolist()]
    return envelope(rows, page, size, len(idx))


ROUTES: dict[str, dict[str, Callable[..., dict[str, Any]]]] = {
    "dossiers": {
        "/api/v1/dossiers": _timed("dossiers"),
        "/api/v1/procedures": _static(lambda s: [p.catalogue_row() for p in s.province.procedures]),
        "/api/v1/units": _static(lambda s: s.province.unit_rows()),
    },
    "feedback": {"/api/v1/feedback": _timed("feedback"), "/api/v1/ratings": _timed("ratings")},
    "centres": {
        "/api/v1/centres": _static(lambda s: s.centres.rows()),
        "/api/v1/centres/snapshots": _snapshots,
    },
}


# --- entry points ----------------------------------------------------------------------------------


class ProvincialServer(SandboxServer):
    def __init__(self, address: tuple[str, int], state: State, faults: Faults, verbose: bool = False) -> None:
        super().__init__(address, Handler, faults, verbose)
        self.state = state


def make_server(
    source: str,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    seed: int = pv.DEFAULT_SEED,
    dossiers_per_day: float = pv.DEFAULT_DOSSIERS_PER_DAY,
    history_days: int = pv.DEFAULT_HISTORY_DAYS,
    start: date | None = None,
    as_of: str | datetime | None = None,
    client_id: str | None = None,
    client_secret: str | None = None,
    api_key: str | None = None,
    token_lifetime: int = 300,
    fault_rate: float = 0.0,
    listing: str = "latest",
    verbose: bool = False,
) -> ProvincialServer:
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r} (one of {', '.join(SOURCES)})")
    secret = api_key if source == "centres" else client_secret
    if secret is None or (source != "centres" and client_id is None):
        env_id, env_secret = credential(source)
        client_id = client_id if client_id is not None else env_id
        secret = secret if secret is not None else env_secret
    fixed_at = (pv.to_ts(as_of) if isinstance(as_of, datetime) else pv.parse_time(as_of)) if as_of else None
    if start is None:  # the history ends at the clock (a fixed one, or the project's today)
        last = date.fromordinal(fixed_at // pv.DAY) if fixed_at else clock.today()
        start = last - timedelta(days=history_days)
    province = pv.Province(seed, dossiers_per_day, history_days, start)
    state = State(source, province, client_id=client_id, secret=secret, token_lifetime=token_lifetime,
                  as_of=fixed_at, listing=listing)
    return ProvincialServer((host, port), state, Faults(rate=fault_rate), verbose)


@contextmanager
def serve_dossiers(host: str = "127.0.0.1", port: int = 0, **kw: Any) -> Iterator[str]:
    """S2 sandbox in a thread; keywords as make_server (client_id, client_secret, token_lifetime,
    seed, dossiers_per_day, history_days, start, as_of, fault_rate). Yields the base URL."""
    with running(make_server("dossiers", host, port, **kw)) as url:
        yield url


@contextmanager
def serve_feedback(host: str = "127.0.0.1", port: int = 0, **kw: Any) -> Iterator[str]:
    """S3 sandbox in a thread (same keywords as serve_dossiers)."""
    with running(make_server("feedback", host, port, **kw)) as url:
        yield url


@contextmanager
def serve_centres(host: str = "127.0.0.1", port: int = 0, **kw: Any) -> Iterator[str]:
    """S4 sandbox in a thread (api_key instead of client credentials)."""
    with running(make_server("centres", host, port, **kw)) as url:
        yield url


def main(argv: list[str] | None = None) -> None:
    from ingestion import config

    parser = argparse.ArgumentParser(description="Sandbox of the provincial sources S2-S4")
    parser.add_argument("--source", choices=SOURCES, required=True)
    parser.add_argument("--host", default=config.settings().sandbox_host)
    parser.add_argument("--port", type=int, default=None)
    pv.province_options(parser)
    parser.add_argument("--token-lifetime", type=int, default=300)
    parser.add_argument("--fault-rate", type=float, default=0.0)
    parser.add_argument("--listing", choices=LISTINGS, default="latest",
                        help="S2 dossiers: list each dossier's current state once (latest), or every"
                             " version (each change) in the window (versions)")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    port = args.port
    if port is None:
        port = (
            config.sandbox_port(args.source)
            if hasattr(config, "sandbox_port")
            else DEFAULT_PORTS[args.source]
        )
    server = make_server(
        args.source,
        args.host,
        port,
        seed=args.seed,
        dossiers_per_day=args.dossiers_per_day,
        history_days=args.history_days,
        start=args.start,
        as_of=args.as_of,
        token_lifetime=args.token_lifetime,
        fault_rate=args.fault_rate,
        listing=args.listing,
        verbose=args.verbose,
    )
    print(
        f"{args.source} sandbox on {server.base_url} ({args.dossiers_per_day:g} dossiers/day from "
        f"{server.state.province.start})",
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
