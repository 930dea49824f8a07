"""S1: the national public-service portal (DVCQG) reporting API -> raw.dvcqg_service_results/_group_details.

`extract(start, end)` reads every month in the window: the national table (34 provinces), the home
province's units table (paged), and the six group-detail endpoints for the province (paged). Each of the
eight entities is one audited load (ingestion.load) that replaces exactly the window's rows.
"""

from __future__ import annotations

import calendar
import logging
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
from psycopg import sql

from ingestion import connections, reference
from ingestion.clock import LOCAL_TZ
from ingestion.config import settings
from ingestion.http import HttpClient, Page, Response, SourceError, paginate
from ingestion.load import RunResult, SourcePage, Target, run_load

log = logging.getLogger(__name__)

SOURCE = "dvcqg"
API = "/api/v1/reporting/"
GROUPS = ("CKMB", "TDGQ", "CLGQ", "TTTT", "MDHL", "MDSH")
# endpoint -> group it details (contract S1); handling-satisfaction takes fromDate/toDate, not a period
GROUP_ENDPOINTS = {"transparency": "CKMB", "dvc-progress-tree": "TDGQ", "provide-online-tree": "CLGQ",
                   "formality-online-payment-tree": "TTTT", "dossier-digitized": "MDSH",
                   "handling-satisfaction": "MDHL"}


# --- the wire -------------------------------------------------------------------------------------


class DvcqgClient:
    """POST <base>/api/v1/reporting/<path> with a JSON body; checks the envelope; pages per-province calls."""

    def __init__(self, base_url: str | None = None, *, page_size: int | None = None,
                 http: HttpClient | None = None, **http_options: Any) -> None:
        s = settings()
        self.page_size = page_size or s.dvcqg_page_size
        self.http = http or HttpClient(SOURCE, base_url or connections.source(SOURCE).base_url,
                                       **http_options)

    def __enter__(self) -> DvcqgClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()

    def call(self, path: str, body: dict[str, Any]) -> Response:
        resp = self.http.post_json(API + path, body)
        env = resp.data
        if not isinstance(env, dict) or env.get("code") != "OK":
            code = env.get("code") if isinstance(env, dict) else type(env).__name__
            message = env.get("message") if isinstance(env, dict) else ""
            raise SourceError(SOURCE, resp.url, f"error envelope code={code!r} message={message!r}",
                              status=resp.status, tries=resp.tries)
        if env.get("data") is not None and not isinstance(env["data"], dict):
            raise SourceError(SOURCE, resp.url, "envelope data is not an object", status=resp.status,
                              tries=resp.tries)
        return resp

    def paged(self, path: str, body: dict[str, Any], items_key: str) -> Iterator[Page]:
        """Every page of a per-province call, 1-based, until the totals (or a short page) say done."""

        def fetch(number: int) -> Page:
            resp = self.call(path, {**body, "currentPage": number, "pageSize": self.page_size})
            data = resp.data.get("data") or {}
            total, pages = _totals(data)
            return Page(number, list(data.get(items_key) or []), total, pages, resp)

        # Never more pages than a full list could need, plus slack for records arriving while we page.
        yield from paginate(fetch, page_size=self.page_size, max_pages=10_000)


def _totals(data: dict[str, Any]) -> tuple[int | None, int | None]:
    """(total rows, total pages) from whichever field the server gives."""
    pag = data.get("pagination") if isinstance(data.get("pagination"), dict) else data
    total = next((pag[k] for k in ("total", "totalElements", "totalRecords", "totalCount")
                  if isinstance(pag.get(k), int)), None)
    pages = pag.get("totalPages") if isinstance(pag.get("totalPages"), int) else None
    return total, pages


# --- pure parsing ---------------------------------------------------------------------------------


def _num(value: Any) -> Decimal | None:
    return None if value is None or value == "" else Decimal(str(value))


def parse_service_results(payload: bytes | dict[str, Any]) -> list[dict[str, Any]]:
    """Rows of a service-results reply (envelope, or a captured {request, response} sample).

    Same names as raw.dvcqg_service_results; scores as Decimal so two-decimal sums stay exact.
    """
    doc = orjson.loads(payload) if isinstance(payload, bytes | str) else payload
    env = doc.get("response", doc)
    if env.get("code") != "OK":
        raise ValueError(f"error envelope: {env.get('code')!r} {env.get('message')!r}")
    rows = []
    for r in (env.get("data") or {}).get("evaluation") or []:
        groups = r.get("groupScores") or {}
        rows.append({"department_id": r.get("departmentId"), "department_code": r.get("departmentCode"),
                     "department_name": r.get("departmentName"), "total_score": _num(r.get("totalScore")),
                     "ratio": _num(r.get("ratio")), "score_delta": _num(r.get("scoreDelta")),
                     **{g.lower(): _num(groups.get(g)) for g in GROUPS}})
    return rows


def rank_by_total(rows: list[dict[str, Any]], key: str = "total_score",
                  code: str = "department_code") -> dict[str, int]:
    """Competition ranking by total, descending; ties share a rank (DOMAIN.md); no score, no rank."""
    scored = sorted((r for r in rows if r.get(key) is not None), key=lambda r: -r[key])
    ranks: dict[str, int] = {}
    for i, r in enumerate(scored):
        ranks[r[code]] = i + 1 if i == 0 or r[key] != scored[i - 1][key] else ranks[scored[i - 1][code]]
    return ranks


# --- periods --------------------------------------------------------------------------------------


def months(start: date, end: date) -> list[date]:
    """First days of every month touching [start, end]."""
    if end < start:
        raise ValueError(f"window end {end} is before its start {start}")
    out, current = [], date(start.year, start.month, 1)
    while current <= end:
        out.append(current)
        current = date(current.year + current.month // 12, current.month % 12 + 1, 1)
    return out


def _month_end(first: date) -> date:
    return first.replace(day=calendar.monthrange(first.year, first.month)[1])


def _period_body(endpoint: str, month: date) -> dict[str, Any]:
    if endpoint == "handling-satisfaction":
        return {"fromDate": month.isoformat(), "toDate": _month_end(month).isoformat()}
    return {"timeType": "month", "year": month.year, "month": month.month}


# --- raw tables -----------------------------------------------------------------------------------


def _number(path: str) -> str:
    return f"nullif(r #>> '{{{path}}}', '')::numeric(7, 2)"


def _not_number(paths: list[str]) -> str:
    """True when a field is neither a number nor empty, or too large for numeric(7, 2)."""
    parts = []
    for p in paths:
        v = f"(r #> '{{{p}}}')"
        parts.append(f"(case jsonb_typeof({v}) when 'number' then abs(({v} #>> '{{}}')::numeric) >= 99999.995"
                     f" when 'string' then {v} #>> '{{}}' <> '' when 'null' then false"
                     f" else {v} is not null end)")
    return " or ".join(parts)


_COMMON_CHECKS = (
    ("record is not a JSON object", "jsonb_typeof(r) is distinct from 'object'"),
    ("departmentId missing", "coalesce(r->>'departmentId', '') = ''"),
)
_SCORE_FIELDS = ["totalScore", "ratio", "scoreDelta", *(f"groupScores,{g}" for g in GROUPS)]

SERVICE_RESULTS = Target(
    table="raw.dvcqg_service_results",
    columns={
        "period_type": "c->>'period_type'",
        "period_start": "(c->>'period_start')::date",
        "scope": "c->>'scope'",
        "department_id": "r->>'departmentId'",
        "department_code": "nullif(r->>'departmentCode', '')",
        "department_name": "normalize(nullif(r->>'departmentName', ''), nfc)",
        "total_score": _number("totalScore"),
        "ratio": _number("ratio"),
        "score_delta": _number("scoreDelta"),
        **{g.lower(): _number(f"groupScores,{g}") for g in GROUPS},
    },
    key=("period_type", "period_start", "scope", "department_id"),
    checks=(*_COMMON_CHECKS, ("a score is not a two-decimal number", _not_number(_SCORE_FIELDS))),
    record_key="concat_ws('/', c->>'scope', c->>'period_start', r->>'departmentCode', r->>'departmentId')",
)

GROUP_DETAILS = Target(
    table="raw.dvcqg_group_details",
    columns={
        "endpoint": "c->>'endpoint'",
        "group_code": "c->>'group_code'",
        "period_type": "c->>'period_type'",
        "period_start": "(c->>'period_start')::date",
        "root_department_id": "c->>'root_department_id'",
        "department_id": "r->>'departmentId'",
        "department_code": "nullif(r->>'departmentCode', '')",
        "department_name": "normalize(nullif(r->>'departmentName', ''), nfc)",
        "is_parent": "(c->>'is_parent')::boolean",
        # tree children say score/maxScore, overviews and parents totalScore/totalMaxScore
        "score": "nullif(coalesce(r->>'score', r->>'totalScore'), '')::numeric(7, 2)",
        "max_score": "nullif(coalesce(r->>'maxScore', r->>'totalMaxScore'), '')::numeric(7, 2)",
    },
    key=("endpoint", "period_type", "period_start", "root_department_id", "department_id"),
    checks=(*_COMMON_CHECKS, ("a score is not a two-decimal number",
                              _not_number(["score", "totalScore", "maxScore", "totalMaxScore"]))),
    record_key="concat_ws('/', c->>'endpoint', c->>'period_start', r->>'departmentCode', r->>'departmentId')",
)


def _window(months_: list[date], **equals: str) -> sql.Composable:
    parts = [sql.SQL("period_type = 'month'"),
             sql.SQL("period_start between {} and {}").format(sql.Literal(months_[0]),
                                                              sql.Literal(months_[-1]))]
    parts += [sql.SQL("{} = {}").format(sql.Identifier(k), sql.Literal(v)) for k, v in equals.items()]
    return sql.SQL(" and ").join(parts)


# --- pages ----------------------------------------------------------------------------------------


def _national_pages(client: DvcqgClient, months_: list[date], found: dict[str, str]) -> Iterator[SourcePage]:
    for month in months_:
        body = {**_period_body("service-results", month), "departmentType": "ADMINISTRATIVE_UNIT"}
        resp = client.call("evaluation/service-results", body)
        rows = (resp.data.get("data") or {}).get("evaluation") or []
        for r in rows:
            if isinstance(r, dict) and r.get("departmentCode") and r.get("departmentId"):
                found[r["departmentCode"]] = r["departmentId"]
        ctx = {"period_type": "month", "period_start": month.isoformat(), "scope": "national"}
        yield SourcePage(resp.content, [(ctx, r) for r in rows],
                         {"path": "evaluation/service-results", "body": body})


def _units_pages(client: DvcqgClient, months_: list[date], root_id: str) -> Iterator[SourcePage]:
    for month in months_:
        body = {**_period_body("service-results", month), "departmentType": "ADMINISTRATIVE_UNIT",
                "rootDepartmentId": root_id}
        ctx = {"period_type": "month", "period_start": month.isoformat(), "scope": root_id}
        for page in client.paged("evaluation/service-results", body, "evaluation"):
            assert page.response is not None
            yield SourcePage(page.response.content, [(ctx, r) for r in page.items],
                             {"path": "evaluation/service-results", "body": body, "currentPage": page.number})


def _group_pages(client: DvcqgClient, endpoint: str, months_: list[date],
                 root_id: str) -> Iterator[SourcePage]:
    tree = "tree" in endpoint
    items_key, head_key = ("children", "parent") if tree else ("evaluation", "overview")
    for month in months_:
        body = {**_period_body(endpoint, month), "rootDepartmentId": root_id}
        ctx = {"endpoint": endpoint, "group_code": GROUP_ENDPOINTS[endpoint], "period_type": "month",
               "period_start": month.isoformat(), "root_department_id": root_id, "is_parent": False}
        for page in client.paged("evaluation/" + endpoint, body, items_key):
            assert page.response is not None
            items = [(ctx, r) for r in page.items]
            head = (page.response.data.get("data") or {}).get(head_key)
            if page.number == 1 and isinstance(head, dict):  # the province's own row, once per month
                items.insert(0, ({**ctx, "is_parent": True}, head))
            yield SourcePage(page.response.content, items,
                             {"path": "evaluation/" + endpoint, "body": body, "currentPage": page.number})


# --- extract --------------------------------------------------------------------------------------


def root_department_id(province_code: str, found: dict[str, str]) -> str:
    """From the national table just read, else from the reference list of provinces."""
    if province_code in found:
        return found[province_code]
    row = reference.province_by_dvcqg_code(province_code)
    if row is None:
        raise ValueError(f"unknown DVCQG province code {province_code!r}")
    return row["dvcqg_rootDepartmentId"]


def extract(start: date, end: date, *, base_url: str | None = None, province_code: str | None = None,
            run_label: str | None = None, client: DvcqgClient | None = None) -> dict[str, Any]:
    """Extract and load every month in [start, end]; returns run ids and counts per entity.

    Raises SourceError (one line) on the first entity that fails; that entity's audit row is 'failed' and its
    raw rows untouched; entities loaded before it stay loaded (each is idempotent on its own).
    """
    months_ = months(start, end)
    code = province_code or settings().province_dvcqg_code
    window_start = datetime.combine(months_[0], datetime.min.time(), LOCAL_TZ)
    last = months_[-1]
    window_end = datetime.combine(_month_end(last) + timedelta(days=1), datetime.min.time(), LOCAL_TZ)
    details = {"province_code": code, "months": [m.isoformat() for m in months_], "run_label": run_label}
    summary: dict[str, Any] = {"source": SOURCE, "province_code": code, "start": months_[0].isoformat(),
                               "end": _month_end(last).isoformat(), "months": len(months_), "runs": {},
                               "pages": 0, "records": 0, "quarantined": 0}
    own = client is None
    client = client or DvcqgClient(base_url)

    def load(entity: str, target: Target, pages: Iterator[SourcePage], window: sql.Composable) -> RunResult:
        result = run_load(source=SOURCE, entity=entity, target=target, pages=pages, window=window,
                          window_start=window_start, window_end=window_end, details=details)
        summary["runs"][entity] = {"run_id": result.run_id, "pages": result.pages,
                                   "records": result.records_loaded,
                                   "quarantined": result.records_quarantined}
        summary["pages"] += result.pages
        summary["records"] += result.records_loaded
        summary["quarantined"] += result.records_quarantined
        return result

    try:
        found: dict[str, str] = {}
        load("service-results-national", SERVICE_RESULTS, _national_pages(client, months_, found),
             _window(months_, scope="national"))
        root_id = root_department_id(code, found)
        summary["root_department_id"] = root_id
        details["root_department_id"] = root_id
        load("service-results-units", SERVICE_RESULTS, _units_pages(client, months_, root_id),
             _window(months_, scope=root_id))
        for endpoint in GROUP_ENDPOINTS:
            load(endpoint, GROUP_DETAILS, _group_pages(client, endpoint, months_, root_id),
                 _window(months_, endpoint=endpoint, root_department_id=root_id))
    finally:
        if own:
            client.http.close()
    log.info("dvcqg %s..%s: %d pages, %d records loaded, %d quarantined", summary["start"], summary["end"],
             summary["pages"], summary["records"], summary["quarantined"])
    return summary
