"""The one HTTP layer every source uses: timeouts, bounded retries with backoff, one-line errors.

Retries follow the usual "full jitter" exponential backoff (sleep a random time up to base * 2**n, capped),
but a server's `Retry-After` wins when it gives one (seconds, or an HTTP-date as RFC 9110 allows): a WAF or
rate limiter knows better than we do. Every request names chiso and its version in `User-Agent`, so a source's
operator can tell its traffic apart; timeouts are per source (config.http_timeout).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from importlib import metadata
from typing import Any

import httpx
import orjson

from ingestion.config import http_timeout, settings

log = logging.getLogger(__name__)

# 403 is retried because the sources' web application firewalls answer 403 to bursts (contract: common rules).
RETRY_STATUSES = frozenset({403, 408, 425, 429, 500, 502, 503, 504})


class SourceError(RuntimeError):
    """A source call that failed for good; str() is one line saying what, where and after how many tries."""

    def __init__(self, source: str, url: str, message: str, *, status: int | None = None, tries: int = 1):
        self.source, self.url, self.status, self.tries, self.message = source, url, status, tries, message
        where = f"HTTP {status}" if status is not None else "no HTTP status"
        super().__init__(f"{source}: {message} ({where}, {tries} tr{'y' if tries == 1 else 'ies'}) at {url}")


class _Retryable(Exception):
    """Internal: this attempt failed in a way that may pass on a later try."""

    def __init__(self, message: str, status: int | None = None, retry_after: float | None = None):
        super().__init__(message)
        self.status, self.retry_after = status, retry_after


def _user_agent() -> str:
    try:
        version = metadata.version("chiso")
    except metadata.PackageNotFoundError:  # run from a checkout that was not installed
        version = "unknown"
    return f"chiso/{version} httpx/{httpx.__version__}"


USER_AGENT = _user_agent()


def retry_after(response: httpx.Response) -> float | None:
    """Seconds the server asks us to wait, or None. An HTTP-date is measured from the response's own `Date`
    (the server's clock, so no skew between the two machines), or from ours when it sends none."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        until = parsedate_to_datetime(value)
        sent = response.headers.get("Date")
        now = parsedate_to_datetime(sent).timestamp() if sent else time.time()
    except (TypeError, ValueError):  # neither form: our own backoff decides
        return None
    return max(0.0, until.timestamp() - now)


@dataclass
class Response:
    status: int
    content: bytes  # the raw body, exactly as received (landed as is)
    data: Any  # the parsed JSON body
    url: str
    tries: int


class HttpClient:
    """httpx client bound to one source; `request_json` returns parsed JSON or raises SourceError."""

    def __init__(self, source: str, base_url: str, *, timeout: float | None = None,
                 max_tries: int | None = None, backoff_base: float | None = None,
                 backoff_max: float | None = None, headers: dict[str, str] | None = None,
                 sleep: Callable[[float], None] = time.sleep, rng: Callable[[], float] = random.random,
                 retry_statuses: frozenset[int] = RETRY_STATUSES) -> None:
        s = settings()
        self.source = source
        self.max_tries = max(1, max_tries if max_tries is not None else s.http_max_tries)
        self.backoff_base = backoff_base if backoff_base is not None else s.http_backoff_base
        self.backoff_max = backoff_max if backoff_max is not None else s.http_backoff_max
        self.sleep, self.rng, self.retry_statuses = sleep, rng, retry_statuses
        self._client = httpx.Client(
            base_url=base_url.rstrip("/"),
            timeout=httpx.Timeout(timeout if timeout is not None else http_timeout(source)),
            headers={"Accept": "application/json", "User-Agent": USER_AGENT, **(headers or {})},
            follow_redirects=True,
        )

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def backoff(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait after failed try number `attempt` (1-based)."""
        if retry_after is not None:
            return min(retry_after, self.backoff_max)
        return self.rng() * min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1))

    def request_json(self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None,
                     data: dict[str, Any] | None = None, headers: dict[str, str] | None = None,
                     ok_statuses: tuple[int, ...] = (200, 201)) -> Response:
        url = str(self._client.build_request(method, path, params=params).url)
        content = orjson.dumps(json) if json is not None else None
        hdrs = {"Content-Type": "application/json", **(headers or {})} if content is not None else headers
        for attempt in range(1, self.max_tries + 1):
            try:
                try:
                    resp = self._client.request(method, path, params=params, content=content, data=data,
                                                headers=hdrs)
                except httpx.TimeoutException as exc:
                    raise _Retryable(f"timed out ({type(exc).__name__})") from exc
                except httpx.TransportError as exc:
                    raise _Retryable(f"connection error ({type(exc).__name__}: {exc})") from exc
                if resp.status_code in self.retry_statuses:
                    raise _Retryable(f"HTTP {resp.status_code} {resp.reason_phrase}", resp.status_code,
                                     retry_after(resp))
                if resp.status_code not in ok_statuses:
                    raise SourceError(self.source, url, f"unexpected answer: {_snippet(resp.content)}",
                                      status=resp.status_code, tries=attempt)
                try:
                    parsed = orjson.loads(resp.content)
                except orjson.JSONDecodeError as exc:  # truncated or garbled body: transient
                    raise _Retryable(f"invalid JSON body ({exc})", resp.status_code) from exc
                return Response(resp.status_code, resp.content, parsed, url, attempt)
            except _Retryable as exc:
                if attempt >= self.max_tries:
                    raise SourceError(self.source, url, f"gave up: {exc}", status=exc.status,
                                      tries=attempt) from None
                wait = self.backoff(attempt, exc.retry_after)
                log.warning("%s: %s at %s; try %d/%d, retrying in %.2fs", self.source, exc, url, attempt,
                            self.max_tries, wait)
                self.sleep(wait)
        raise AssertionError("unreachable")

    def post_json(self, path: str, body: Any, **kwargs: Any) -> Response:
        return self.request_json("POST", path, json=body, **kwargs)

    def get_json(self, path: str, params: dict[str, Any] | None = None, **kwargs: Any) -> Response:
        return self.request_json("GET", path, params=params, **kwargs)


def _snippet(content: bytes, limit: int = 160) -> str:
    text = content.decode("utf-8", "replace").replace("\n", " ").strip()
    return text[:limit] + ("..." if len(text) > limit else "")


@dataclass
class Page:
    number: int
    items: list[Any]
    total_items: int | None = None  # as the server reports them, when it does
    total_pages: int | None = None
    response: Response | None = None


def paginate(fetch: Callable[[int], Page], *, first: int = 1, page_size: int | None = None,
             max_pages: int = 100_000) -> Iterator[Page]:
    """Yield pages from `fetch(number)` until the totals say we are done (or a short/empty page says so).

    Guards against servers that ignore the page number (same page again) or report no end: at most
    `max_pages` pages, and never more than the totals allow.
    """
    number, seen_items, previous = first, 0, None
    while True:
        if number - first >= max_pages:
            raise RuntimeError(f"paging did not end after {max_pages} pages")
        page = fetch(number)
        if previous is not None and page.items and page.items == previous:
            raise RuntimeError(f"page {number} repeats page {number - 1}: the server ignores paging")
        yield page
        seen_items += len(page.items)
        if not page.items:
            return
        if page.total_pages is not None and number - first + 1 >= page.total_pages:
            return
        if page.total_items is not None and seen_items >= page.total_items:
            return
        no_totals = page.total_pages is None and page.total_items is None
        if no_totals and page_size and len(page.items) < page_size:
            return
        previous, number = page.items, number + 1
