"""The shared HTTP layer against the S1 sandbox over real HTTP on 127.0.0.1 (faults injected server-side)."""

from __future__ import annotations

import math
from collections.abc import Callable

import httpx
import pytest

from ingestion.http import HttpClient, Page, SourceError, paginate
from ingestion.sources.dvcqg import DvcqgClient

NATIONAL = {"timeType": "month", "year": 2026, "month": 9, "departmentType": "ADMINISTRATIVE_UNIT"}
DAKLAK = "019d2be3-6a85-74ec-a33c-a7c04919ba00"


class Sleeps(list):
    """Records the waits instead of waiting (the client's sleep is injectable)."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def client(base_url: str, sleeps: Callable[[float], None], **kw) -> DvcqgClient:
    opts = {"max_tries": 4, "backoff_base": 0.01, "backoff_max": 5.0, "timeout": 5.0, "sleep": sleeps, **kw}
    return DvcqgClient(base_url, **opts)


def test_envelope_error_with_2xx_is_an_error_and_not_retried(dvcqg_sandbox, dvcqg_faults) -> None:
    dvcqg_faults([{"envelope_error": True}])
    sleeps = Sleeps()
    with client(dvcqg_sandbox, sleeps) as c, pytest.raises(SourceError) as err:
        c.call("evaluation/service-results", NATIONAL)
    assert err.value.status == 201 and err.value.tries == 1 and not sleeps
    assert "error envelope" in str(err.value) and "\n" not in str(err.value)


def test_bad_request_gets_a_code_not_ok(dvcqg_sandbox) -> None:
    with client(dvcqg_sandbox, Sleeps()) as c, pytest.raises(SourceError, match="BAD_REQUEST"):
        c.call("evaluation/service-results", {"timeType": "fortnight", "year": 2026})


def test_sandbox_is_post_only(dvcqg_sandbox) -> None:
    resp = httpx.get(f"{dvcqg_sandbox}/api/v1/reporting/evaluation/service-results")
    assert resp.status_code == 405 and resp.json()["code"] != "OK"


def test_429_and_403_honour_retry_after(dvcqg_sandbox, dvcqg_faults) -> None:
    dvcqg_faults([{"status": 429, "retry_after": 1}, {"status": 403, "retry_after": 2}])
    sleeps = Sleeps()
    with client(dvcqg_sandbox, sleeps) as c:
        resp = c.call("evaluation/service-results", NATIONAL)
    assert resp.tries == 3 and sleeps == [1.0, 2.0]
    assert len(resp.data["data"]["evaluation"]) == 34


def test_503_burst_then_success_with_bounded_jittered_backoff(dvcqg_sandbox, dvcqg_faults) -> None:
    dvcqg_faults([{"status": 503}, {"status": 502}, {"status": 500}])
    sleeps = Sleeps()
    with client(dvcqg_sandbox, sleeps) as c:
        resp = c.call("evaluation/service-results", NATIONAL)
    assert resp.tries == 4 and len(sleeps) == 3
    assert all(0 <= s <= 0.01 * 2**i for i, s in enumerate(sleeps))


def test_burst_longer_than_max_tries_fails_with_a_clear_error(dvcqg_sandbox, dvcqg_faults) -> None:
    dvcqg_faults([{"status": 503}] * 5)
    sleeps = Sleeps()
    with client(dvcqg_sandbox, sleeps, max_tries=3) as c, pytest.raises(SourceError) as err:
        c.call("evaluation/service-results", NATIONAL)
    e = err.value
    assert (e.source, e.status, e.tries) == ("dvcqg", 503, 3) and len(sleeps) == 2
    assert str(e).startswith("dvcqg: gave up: HTTP 503") and e.url.endswith("/evaluation/service-results")
    assert "\n" not in str(e)


def test_timeout_then_success(dvcqg_sandbox, dvcqg_faults) -> None:
    dvcqg_faults([{"delay": 1.5}])
    sleeps = Sleeps()
    with client(dvcqg_sandbox, sleeps, timeout=0.3) as c:
        resp = c.call("evaluation/service-results", NATIONAL)
    assert resp.tries == 2 and len(sleeps) == 1


def test_truncated_body_and_dropped_connection_are_retried(dvcqg_sandbox, dvcqg_faults) -> None:
    dvcqg_faults([{"truncate": True}, {"close": True}])
    with client(dvcqg_sandbox, Sleeps()) as c:
        resp = c.call("evaluation/service-results", NATIONAL)
    assert resp.tries == 3


def test_connection_refused_fails_after_max_tries() -> None:
    sleeps = Sleeps()
    with HttpClient("dvcqg", "http://127.0.0.1:9", max_tries=2, backoff_base=0.01, sleep=sleeps) as c:
        with pytest.raises(SourceError, match="connection error") as err:
            c.post_json("/api/v1/reporting/evaluation/service-results", NATIONAL)
    assert err.value.tries == 2 and err.value.status is None


def test_paging_across_pages_returns_every_row_once(dvcqg_sandbox, dvcqg_faults) -> None:
    dvcqg_faults([{"status": 503, "path": "service-results", "skip": 2}])  # a hiccup mid-paging
    body = {**NATIONAL, "rootDepartmentId": DAKLAK}
    with client(dvcqg_sandbox, Sleeps(), page_size=7) as c:
        pages = list(c.paged("evaluation/service-results", body, "evaluation"))
    ids = [r["departmentId"] for p in pages for r in p.items]
    assert len(pages) == math.ceil(118 / 7) and [p.number for p in pages] == list(range(1, len(pages) + 1))
    assert len(ids) == len(set(ids)) == 118


def test_pager_stops_when_the_server_ignores_the_page_number() -> None:
    def fetch(n: int) -> Page:
        return Page(n, ["same", "rows"])  # no totals, full pages forever

    with pytest.raises(RuntimeError, match="repeats"):
        list(paginate(fetch, page_size=2))


def test_pager_without_totals_stops_on_a_short_page() -> None:
    data = list(range(23))
    pages = list(paginate(lambda n: Page(n, data[(n - 1) * 10: n * 10]), page_size=10))
    assert [len(p.items) for p in pages] == [10, 10, 3]
