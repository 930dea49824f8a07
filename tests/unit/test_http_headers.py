"""What every request says about itself and how long it waits: User-Agent, Retry-After in both of its forms
(RFC 9110 section 10.2.3), per-source timeouts. Against a small server on 127.0.0.1 that answers what each
test queues and records what it was sent."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import metadata

import httpx
import pytest

from ingestion.config import http_timeout
from ingestion.http import HttpClient, retry_after

SENT = 1_800_000_000  # the server's Date on its answers: a fixed moment, not the clock


class Recorder(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.answers: list[tuple[int, dict[str, str]]] = []
        self.agents: list[str | None] = []


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
        self.server.agents.append(self.headers.get("User-Agent"))
        status, headers = self.server.answers.pop(0) if self.server.answers else (200, {})
        body = b'{"ok": true}'
        self.send_response_only(status)
        self.send_header("Date", formatdate(SENT, usegmt=True))
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server() -> Iterator[Recorder]:
    srv = Recorder()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _client(srv: Recorder, sleeps: list[float]) -> HttpClient:
    host, port = srv.server_address[:2]
    return HttpClient("dvcqg", f"http://{host}:{port}", max_tries=3, backoff_max=600, sleep=sleeps.append)


def test_every_request_names_chiso_and_its_version(server: Recorder) -> None:
    with _client(server, []) as c:
        c.get_json("/x")
    assert server.agents == [f"chiso/{metadata.version('chiso')} httpx/{httpx.__version__}"]


def test_retry_after_as_an_http_date_is_counted_from_the_servers_date(server: Recorder) -> None:
    server.answers = [(429, {"Retry-After": formatdate(SENT + 90, usegmt=True)}),
                      (503, {"Retry-After": "7"})]
    sleeps: list[float] = []
    with _client(server, sleeps) as c:
        assert c.get_json("/x").tries == 3
    assert sleeps == [90.0, 7.0]


@pytest.mark.parametrize(("value", "expected"), [
    ("120", 120.0), ("-5", 0.0), (formatdate(SENT - 30, usegmt=True), 0.0),  # a date already passed
    ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0), ("soon", None), ("", None)])
def test_retry_after_values(value: str, expected: float | None) -> None:
    response = httpx.Response(429, headers={"Retry-After": value, "Date": formatdate(SENT, usegmt=True)})
    assert retry_after(response) == expected


def test_timeouts_are_per_source(monkeypatch: pytest.MonkeyPatch) -> None:
    from ingestion import config

    monkeypatch.setenv("CHISO_HTTP_TIMEOUT", "30")
    monkeypatch.setenv("CHISO_DVCQG_HTTP_TIMEOUT", "120")
    config.settings.cache_clear()
    try:
        assert (http_timeout("dvcqg"), http_timeout("dossiers")) == (120.0, 30.0)
        client = HttpClient("dvcqg", "http://127.0.0.1:9")
        assert client._client.timeout.read == 120.0
        client.close()
    finally:
        config.settings.cache_clear()
