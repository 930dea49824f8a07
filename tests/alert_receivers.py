"""Real alert receivers for tests: a webhook (an HTTP server) and an SMTP server (aiosmtpd), both on
127.0.0.1 and free ports, recording what they were sent; and the two AIRFLOW_CONN_* values that point
ingestion.alerts at them.

    with alert_receivers() as rx:
        monkeypatch.setenv(...) for each of rx.environ  # or pass rx.environ to an Airflow process
        ...
        rx.wait_for(webhooks=1, mails=1)                # when another process sends (scheduler, triggerer)
        assert rx.webhooks[0]["text"] == rx.mails[0]["subject"]

`webhook_status` makes the webhook answer every request with that status (a broken channel);
`smtp_reply` makes the SMTP server answer DATA with that reply (e.g. "554 5.0.0 rejected").
"""

from __future__ import annotations

import email
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

WEBHOOK_ENV = "AIRFLOW_CONN_CHISO_ALERTS_WEBHOOK"
SMTP_ENV = "AIRFLOW_CONN_CHISO_ALERTS_SMTP"
RECIPIENTS = ["dieu-hanh@so-noi-vu.example", "truc-ban@chiso.example"]
SENDER = "chiso-canh-bao@chiso.example"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Receivers:
    webhook_url: str
    smtp_port: int
    webhook_status: int = 200
    smtp_reply: str = "250 OK"
    requests: list[dict] = field(default_factory=list)  # every request the webhook got, with its status
    messages: list[dict] = field(default_factory=list)  # every message the SMTP server accepted
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def webhooks(self) -> list[dict]:
        """The JSON bodies the webhook accepted (answered 2xx)."""
        with self.lock:
            return [r["json"] for r in self.requests if r["status"] < 300]

    @property
    def mails(self) -> list[dict]:
        """Accepted e-mails: subject and body decoded, sender, recipients, the parsed message."""
        with self.lock:
            return list(self.messages)

    @property
    def environ(self) -> dict[str, str]:
        """The connections (JSON form) of both channels."""
        return {WEBHOOK_ENV: self.webhook_connection(), SMTP_ENV: self.smtp_connection()}

    def webhook_connection(self) -> str:
        return json.dumps({"conn_type": "http", "host": self.webhook_url})

    def smtp_connection(self, port: int | None = None) -> str:
        return json.dumps({"conn_type": "smtp", "host": "127.0.0.1", "port": port or self.smtp_port,
                           "extra": {"to": ", ".join(RECIPIENTS), "from_email": SENDER,
                                     "disable_tls": True, "disable_ssl": True, "timeout": 30}})

    def clear(self) -> None:
        with self.lock:
            self.requests.clear()
            self.messages.clear()

    def counts(self) -> tuple[int, int]:
        return len(self.webhooks), len(self.mails)

    def wait_for(self, webhooks: int = 0, mails: int = 0, timeout: float = 300) -> None:
        """Until at least that many were accepted (for senders in other processes); raises after
        `timeout` seconds, saying what arrived."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if len(self.webhooks) >= webhooks and len(self.mails) >= mails:
                return
            time.sleep(0.2)
        raise AssertionError(f"expected {webhooks} webhook(s) and {mails} mail(s), got {self.counts()}: "
                             f"{[w.get('text') for w in self.webhooks]} {[m['subject'] for m in self.mails]}")


def _webhook_handler(rx: Receivers):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                payload = json.loads(body.decode("utf-8"))
            except ValueError:
                payload = None
            with rx.lock:
                rx.requests.append({"path": self.path, "headers": dict(self.headers), "body": body,
                                    "json": payload, "status": rx.webhook_status})
            self.send_response(rx.webhook_status)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"ok": true}' if rx.webhook_status < 300 else b'{"ok": false}')

        def log_message(self, *args) -> None:
            pass

    return Handler


class _SmtpHandler:
    def __init__(self, rx: Receivers) -> None:
        self.rx = rx

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 (aiosmtpd's name)
        if not self.rx.smtp_reply.startswith("250"):
            return self.rx.smtp_reply
        msg = email.message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        part = msg.get_body(preferencelist=("html", "plain"))
        with self.rx.lock:
            self.rx.messages.append({
                "subject": str(msg["Subject"]), "from": envelope.mail_from, "to": list(envelope.rcpt_tos),
                "body": part.get_content() if part else "",
                "charset": part.get_content_charset() if part else None, "message": msg})
        return "250 OK"


@contextmanager
def alert_receivers(webhook_status: int = 200, smtp_reply: str = "250 OK") -> Iterator[Receivers]:
    from aiosmtpd.controller import Controller

    http = ThreadingHTTPServer(("127.0.0.1", 0), None)
    rx = Receivers(webhook_url=f"http://127.0.0.1:{http.server_address[1]}/chiso/canh-bao",
                   smtp_port=free_port(), webhook_status=webhook_status, smtp_reply=smtp_reply)
    http.RequestHandlerClass = _webhook_handler(rx)
    thread = threading.Thread(target=http.serve_forever, name="alert-webhook", daemon=True)
    thread.start()
    smtp = Controller(_SmtpHandler(rx), hostname="127.0.0.1", port=rx.smtp_port)
    smtp.start()
    try:
        yield rx
    finally:
        smtp.stop()
        http.shutdown()
        http.server_close()
        thread.join()
