"""Sandbox servers standing in for the sources locally (demo, tests, benchmarks): shared plumbing.

Each source's sandbox is a stdlib ThreadingHTTPServer whose data is computed on demand from hashes
(deterministic, no state), plus fault injection "when asked to": `POST /_sandbox/faults` with a JSON list of
faults queues them for the next API requests; a random fault rate can be set for demos (off by default).

A fault is a dict with one of:
  {"status": 429|403|5xx, "retry_after": seconds?}  answer that status (403 as a WAF HTML page)
  {"delay": seconds}        answer normally after a pause (client timeouts)
  {"envelope_error": true}  HTTP 2xx with an error envelope (source-specific)
  {"truncate": true}        send only the first half of the body
  {"close": true}           close the connection without answering
and optionally "path": "<substring>" (only requests whose path contains it) and "skip": n (let n matching
requests pass first).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson

RANDOM_FAULTS: tuple[dict[str, Any], ...] = (
    {"status": 429, "retry_after": 1}, {"status": 503}, {"status": 403, "retry_after": 1}, {"truncate": True},
)


class Faults:
    """Thread-safe queue of injected faults plus an optional random fault rate."""

    def __init__(self, rate: float = 0.0, seed: int = 766) -> None:
        self._lock = threading.Lock()
        self._queue: list[dict[str, Any]] = []
        self.rate = rate
        self._rng = random.Random(seed)
        self.requests = 0  # API requests seen (for tests counting tries)
        self.injected = 0

    def add(self, faults: list[dict[str, Any]]) -> int:
        with self._lock:
            self._queue.extend(dict(f) for f in faults)
            return len(self._queue)

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()

    def take(self, path: str) -> dict[str, Any] | None:
        """The fault for this request, if any (queued first, then random)."""
        with self._lock:
            self.requests += 1
            for i, fault in enumerate(self._queue):
                if fault.get("path") and fault["path"] not in path:
                    continue
                if fault.get("skip", 0) > 0:
                    fault["skip"] -= 1
                    return None
                self.injected += 1
                return self._queue.pop(i)
            if self.rate and self._rng.random() < self.rate:
                self.injected += 1
                return dict(self._rng.choice(RANDOM_FAULTS))
        return None

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {"requests": self.requests, "injected": self.injected, "queued": len(self._queue),
                    "fault_rate": self.rate}


class SandboxHandler(BaseHTTPRequestHandler):
    """Base handler: JSON replies, the /_sandbox admin endpoints, fault application."""

    server_version = "chiso-sandbox/0.1"
    protocol_version = "HTTP/1.1"  # keep-alive, like the real servers

    @property
    def faults(self) -> Faults:
        return self.server.faults  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        if getattr(self.server, "verbose", False):
            super().log_message(format, *args)

    def read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def send_bytes(self, status: int, body: bytes, content_type: str = "application/json; charset=utf-8",
                   headers: dict[str, str] | None = None, declared_length: int | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(declared_length if declared_length is not None else len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def send_json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        self.send_bytes(status, orjson.dumps(obj), headers=headers)

    def handle_admin(self, method: str) -> bool:
        """The /_sandbox/* endpoints; True when the request was one of them."""
        if not self.path.startswith("/_sandbox/"):
            return False
        name = self.path.split("?")[0].removeprefix("/_sandbox/")
        if method == "GET" and name in ("health", "stats"):
            self.send_json(200, {"status": "ok", **self.faults.stats()})
        elif method == "POST" and name == "faults":
            body = orjson.loads(self.read_body() or b"[]")
            queued = self.faults.add(body if isinstance(body, list) else [body])
            self.send_json(200, {"queued": queued})
        elif method in ("POST", "DELETE") and name == "reset":
            self.read_body()
            self.faults.clear()
            self.send_json(200, {"queued": 0})
        elif method == "POST" and name == "config":
            body = orjson.loads(self.read_body() or b"{}")
            if "fault_rate" in body:
                self.faults.rate = float(body["fault_rate"])
            self.send_json(200, self.faults.stats())
        else:
            self.send_json(404, {"code": "NOT_FOUND", "message": f"no admin endpoint {name}"})
        return True

    def fault_before(self, fault: dict[str, Any] | None) -> bool:
        """Apply a fault that replaces the answer; True when the request is finished."""
        if not fault:
            return False
        if fault.get("close"):
            self.close_connection = True
            return True
        if "delay" in fault:
            time.sleep(float(fault["delay"]))
        status = fault.get("status")
        if status:
            headers = {"Retry-After": str(fault["retry_after"])} if "retry_after" in fault else {}
            if status == 403:  # what a WAF sends: HTML, not the API's envelope
                self.send_bytes(403, b"<html><body><h1>403 Forbidden</h1>Request blocked.</body></html>",
                                "text/html; charset=utf-8", headers)
            else:
                self.send_json(status, {"code": f"HTTP_{status}", "message": "injected fault"}, headers)
            return True
        return False

    def send_with_fault(self, status: int, body: bytes, fault: dict[str, Any] | None) -> None:
        if fault and fault.get("truncate"):
            cut = body[: max(1, len(body) // 2)]
            self.send_bytes(status, cut)
        else:
            self.send_bytes(status, body)


class SandboxServer(ThreadingHTTPServer):
    daemon_threads = True  # a delayed answer must not hold up shutdown
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: type[SandboxHandler], faults: Faults,
                 verbose: bool = False) -> None:
        super().__init__(address, handler)
        self.faults, self.verbose = faults, verbose

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"


@contextmanager
def running(server: SandboxServer) -> Iterator[str]:
    """Serve in a background thread; yields the base URL; shuts down on exit."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server.base_url
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
