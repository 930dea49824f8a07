"""Alerts: one line in Vietnamese per event, delivered through Airflow's notifiers to a webhook (HttpNotifier)
and to e-mail (SmtpNotifier).

Four events raise an alert:
- a task that failed after its last retry (`on_failure_callback`, which Airflow calls only on the final
  failure, not on a retry);
- a failed GX gate (the same callback: the gate task raises `quality.GateFailed`, whose result names the
  failing suites);
- a night that has not published by 04:00 (an Airflow deadline alert on the DAG; the scheduler marks the
  deadline missed and the triggerer awaits this notifier); only for the runs the scheduler starts for a
  night (NIGHT_RUN_TYPES), not for manual runs or back-fills, whose deadlines may lie in the past from the
  start; `airflow dags test` (in-process runs) sets no deadline at all (see publish_deadline);
- a unit red on the heat map today that was not red the day before (a task after the warehouse
  publication), once per unit and day: what was delivered is recorded in audit.alerts_sent, so a re-run or
  a retry of the night does not repeat it.

Each channel is an Airflow connection, usually from the environment. A connection that is not defined turns
its channel off (logged at INFO): alerting that is off never fails a task.
- `AIRFLOW_CONN_CHISO_ALERTS_WEBHOOK` (http): the whole webhook URL as the host, in JSON:
  `{"conn_type": "http", "host": "https://hooks.example.vn/chiso"}`; or Airflow's HTTP URI, whose path is
  the scheme: `http://hooks.example.vn:443/https` (posts to the root). The body is JSON: {"text": the line,
  "kind", "dag_id", "run_id", ...}.
- `AIRFLOW_CONN_CHISO_ALERTS_SMTP` (smtp): host, port, login/password, and in the extra "to" (addresses,
  a list or comma-separated), "from_email", and the SMTP provider's "disable_tls"/"disable_ssl" (a plain
  local relay needs both true), e.g. `{"conn_type": "smtp", "host": "mail.example.vn", "port": 587,
  "login": "chiso", "password": "...", "extra": {"to": "dieuhanh@example.vn", "from_email":
  "chiso@example.vn", "disable_ssl": true}}`.
Settings read here (CHISO_ prefix):
- `CHISO_ALERT_EMAILS`: recipients when the SMTP connection's extra has no "to".
- `CHISO_ALERT_DASHBOARD_URL`: the link in hotspot alerts; default the local Superset's daily dashboard.
Links to task logs and runs use Airflow's `[api] base_url` (AIRFLOW__API__BASE_URL).

This module is imported by the DAG files at parse time: it imports only the Airflow SDK at the top; the
providers, the database and GX are imported where they are used.
"""

from __future__ import annotations

import asyncio
import html
import logging
import os
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from airflow.sdk import AsyncCallback, BaseNotifier, DeadlineAlert

from ingestion.clock import LOCAL_TZ

log = logging.getLogger(__name__)

WEBHOOK_CONN_ID = "chiso_alerts_webhook"
SMTP_CONN_ID = "chiso_alerts_smtp"
EMAILS_ENV = "CHISO_ALERT_EMAILS"  # recipients when the SMTP connection's extra has no "to"
DASHBOARD_ENV = "CHISO_ALERT_DASHBOARD_URL"  # the link in hotspot alerts; default: the local Superset's
DASHBOARD_SLUG = "dieu-hanh-hang-ngay"  # "Điều hành hằng ngày", where today's hotspots are
# Runs the scheduler starts for a night. A missed deadline of any other run (an in-process `dags test`, a
# back-fill of past days) says nothing about tonight: those deadlines lie in the past from the start.
NIGHT_RUN_TYPES = ("scheduled", "asset_triggered")
RUN_STATES_VI = {"queued": "đang chờ", "running": "đang chạy", "failed": "thất bại", "success": "đã xong"}
GATE_SUITES_SHOWN = 3
DETAIL_CHARS = 300
SUBJECT_CHARS = 150


class AlertDeliveryFailed(RuntimeError):
    pass


@dataclass
class Alert:
    kind: str  # task_failed | gate_failed | deadline_missed | new_red_hotspot
    text: str  # the one Vietnamese line
    fields: dict[str, Any] = field(default_factory=dict)

    def payload(self) -> dict[str, Any]:
        return {"text": self.text, "kind": self.kind, **self.fields}

    @property
    def subject(self) -> str:
        """The e-mail's subject: the line without its link (the body has it all), at most 150 characters."""
        head = self.text.rsplit(" — ", 1)[0] if self.fields.get("url") else self.text
        return head if len(head) <= SUBJECT_CHARS else head[:SUBJECT_CHARS - 1].rsplit(" ", 1)[0] + " …"


# --- the line ---------------------------------------------------------------------------------------


def _short(text: object) -> str:
    first = (str(text).strip().splitlines() or [""])[0]
    return first if len(first) <= DETAIL_CHARS else first[:DETAIL_CHARS - 1] + "…"


def message(kind: str, dag_id: str, *, task_id: str | None = None, tries: int | None = None,
            gate: str | None = None, detail: str | None = None, unit: str | None = None,
            day: str | None = None, url: str | None = None) -> str:
    """The alert's one line, e.g. "[chiso] Lỗi: DAG chiso_warehouse, tác vụ mart_gate (cổng GX mart) thất bại
    sau 2 lần thử; bộ kiểm tra không đạt: ... — log: <url>"; the link is last, after " — "."""
    if kind in ("task_failed", "gate_failed"):
        what = f"tác vụ {task_id}" + (f" (cổng GX {gate})" if gate else "")
        because = "; bộ kiểm tra không đạt: " if kind == "gate_failed" else ": "
        line = f"[chiso] Lỗi: DAG {dag_id}, {what} thất bại sau {tries} lần thử"
        line, link = line + (because + detail if detail else ""), "log"
    elif kind == "deadline_missed":
        line, link = f"[chiso] Trễ hạn: DAG {dag_id} chưa công bố số liệu trước {day} ({detail})", "log"
    elif kind == "new_red_hotspot":
        line = f"[chiso] Điểm nóng đỏ mới ngày {day}: {unit} — {detail} (DAG {dag_id})"
        link = "bảng điều hành"
    else:
        raise ValueError(f"unknown alert kind {kind!r}")
    return f"{line} — {link}: {url}" if url else line


# --- the events -------------------------------------------------------------------------------------


def failure_alert(context: dict) -> Alert:
    """A task's final failure; a gate's failure names the gate and its failing suites."""
    from ingestion.quality import GateFailed

    ti, error = context["ti"], context.get("exception")
    url = getattr(ti, "log_url", None)
    fields = {"dag_id": ti.dag_id, "run_id": ti.run_id, "task_id": ti.task_id, "tries": ti.try_number,
              "url": url}
    if isinstance(error, GateFailed):
        if error.result is not None:
            failed = [_short(o.summary()) for o in error.result.suites if not o.success]
            more = len(failed) - GATE_SUITES_SHOWN
            detail = "; ".join(failed[:GATE_SUITES_SHOWN]) + (f"; và {more} bộ khác" if more > 0 else "")
            gate = error.result.layer
            fields["suites"] = [o.suite for o in error.result.suites if not o.success]
        else:  # require_raw_gates: the sources' last raw gates did not pass
            detail, gate = _short(error), "raw"
        fields["gate"] = gate
        return Alert("gate_failed", message("gate_failed", ti.dag_id, task_id=ti.task_id, tries=ti.try_number,
                                            gate=gate, detail=detail, url=url), fields)
    detail = _short(f"{type(error).__name__}: {error}") if error is not None else None
    return Alert("task_failed", message("task_failed", ti.dag_id, task_id=ti.task_id, tries=ti.try_number,
                                        detail=detail, url=url), fields)


def _published(run_id: str, by: datetime) -> bool:
    from ingestion import pg

    with pg.connect("reader") as conn:
        return conn.execute("select exists (select 1 from audit.publications where pipeline_run = %s"
                            " and published_at <= %s)", (run_id, by)).fetchone()[0]


def _moment(value) -> datetime:
    """The deadline's time as the scheduler stored it: an aware datetime (or its ISO text)."""
    when = datetime.fromisoformat(value.replace("Z", "+00:00")) if isinstance(value, str) else value
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def deadline_alert(context: dict) -> Alert | None:
    """The alert for a missed deadline, from the context the scheduler gives the callback (the DAG run as the
    REST API shows it, the deadline); None when there is nothing to say."""
    from airflow.sdk.configuration import conf

    run, deadline = context["dag_run"], context["deadline"]
    dag_id, run_id, run_type = run["dag_id"], run["dag_run_id"], run["run_type"]
    if run_type not in NIGHT_RUN_TYPES:
        log.info("deadline of %s %s (a %s run) passed: not a night, no alert", dag_id, run_id, run_type)
        return None
    when = _moment(deadline["deadline_time"])
    try:
        if _published(run_id, when):  # published in time; only later tasks (e.g. the reports) ran long
            log.info("deadline of %s %s passed after its publication: no alert", dag_id, run_id)
            return None
    except Exception:  # the warehouse unreachable is no reason to stay silent about a late night
        log.warning("could not read audit.publications; alerting on the missed deadline", exc_info=True)
    base = conf.get("api", "base_url", fallback="http://localhost:8080/").rstrip("/")
    url = f"{base}/dags/{dag_id}/runs/{quote(run_id)}"  # as Airflow builds a task's log_url
    state = RUN_STATES_VI.get(run["state"], run["state"])
    text = message("deadline_missed", dag_id, day=when.astimezone(LOCAL_TZ).strftime("%H:%M ngày %d/%m/%Y"),
                   detail=f"lượt chạy {run_id}: {state}", url=url)
    return Alert("deadline_missed", text, {"dag_id": dag_id, "run_id": run_id, "deadline": when.isoformat(),
                                           "url": url})


NEW_RED_SQL = """
select h.unit_code, h.unit_name, h.as_of_date, h.reason_vi
from {schema}.mart_hotspots as h
left join {schema}.mart_heatmap_daily as y
    on y.unit_code = h.unit_code and y.kpi_date = h.as_of_date - 1
where h.hotspot_rule = 'red_status'
    and y.status is distinct from 'red'
    -- no day before in the heat map (the first day of the data): nothing to compare with, nothing is "new"
    and exists (select 1 from {schema}.mart_heatmap_daily as d where d.kpi_date = h.as_of_date - 1)
order by h.unit_code
"""


def new_red_hotspots(schema: str | None = None) -> list[dict]:
    """Today's red units (mart_hotspots, rule red_status) that were not red the day before on the heat map."""
    from psycopg import sql

    from ingestion import pg
    from ingestion.config import settings

    query = sql.SQL(NEW_RED_SQL).format(schema=sql.Identifier(schema or settings().mart_schema))
    with pg.connect("reader") as conn:
        cur = conn.execute(query)
        names = [c.name for c in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def dashboard_url() -> str:
    from ingestion import superset

    return os.environ.get(DASHBOARD_ENV) or f"{superset.base_url()}/superset/dashboard/{DASHBOARD_SLUG}/"


def _already_sent(kind: str, keys: list[tuple[str, Any]]) -> set[tuple[str, Any]]:
    from ingestion import pg

    if not keys:
        return set()
    with pg.connect("loader") as conn:
        rows = conn.execute("select alert_key, as_of_date from audit.alerts_sent where kind = %s"
                            " and (alert_key, as_of_date) in (select * from unnest(%s::text[], %s::date[]))",
                            (kind, [k for k, _ in keys], [d for _, d in keys])).fetchall()
    return {(k, d) for k, d in rows}


def _record_sent(alert: Alert, key: str, day, channels: int) -> None:
    from ingestion import clock, pg

    with pg.connect("loader") as conn:
        conn.execute("insert into audit.alerts_sent (kind, alert_key, as_of_date, dag_id, run_id, message,"
                     " channels, sent_at) values (%s, %s, %s, %s, %s, %s, %s, %s) on conflict do nothing",
                     (alert.kind, key, day, alert.fields.get("dag_id"), alert.fields.get("run_id"),
                      alert.text, channels, clock.event_time()))


def hotspot_alerts(context: dict, schema: str | None = None) -> list[str]:
    """The warehouse DAG's task after the publication: one alert per new red hotspot not alerted yet (a
    re-run or retry of the night does not repeat one that a channel took); none, nothing sent. A unit whose
    delivery failed is not recorded, so the task's retry sends it again; the task fails after trying all.
    `schema`: the marts' (default settings().mart_schema)."""
    from ingestion.pipeline import run_type_of

    dag_id, run = context["dag"].dag_id, context["dag_run"]
    if run_type_of(run) == "backfill":  # a past window: its red units are not this morning's news
        log.info("back-fill run %s: no hotspot alerts", run.run_id)
        return []
    rows = new_red_hotspots(schema)
    done = _already_sent("new_red_hotspot", [(r["unit_code"], r["as_of_date"]) for r in rows])
    url, sent, errors = dashboard_url(), [], []
    for row in rows:
        if (row["unit_code"], row["as_of_date"]) in done:
            continue
        unit = f"{row['unit_name'] or row['unit_code']} ({row['unit_code']})"
        text = message("new_red_hotspot", dag_id, unit=unit, day=row["as_of_date"].strftime("%d/%m/%Y"),
                       detail=row["reason_vi"], url=url)
        alert = Alert("new_red_hotspot", text, {"dag_id": dag_id, "run_id": run.run_id,
                                                "unit_code": row["unit_code"],
                                                "as_of_date": row["as_of_date"].isoformat(), "url": url})
        try:
            channels = deliver(alert)
        except AlertDeliveryFailed as exc:
            errors.append(str(exc))
            continue
        if channels:  # with every channel off nothing was said: turning one on later still tells today's
            _record_sent(alert, row["unit_code"], row["as_of_date"], channels)
        sent.append(text)
    log.info("%d new red hotspot(s), %d alerted before, %d not delivered", len(sent), len(done), len(errors))
    if errors:
        raise AlertDeliveryFailed(f"{len(errors)} hotspot alert(s) not delivered; first: {errors[0]}")
    return sent


# --- the channels -----------------------------------------------------------------------------------


def _recipients(smtp_conn) -> list[str]:
    raw = smtp_conn.extra_dejson.get("to") or os.environ.get(EMAILS_ENV, "")
    items = raw if isinstance(raw, list) else raw.replace(";", ",").split(",")
    return [a.strip() for a in items if a.strip()]


def _check_webhook(conn) -> None:
    """Airflow reads an HTTP connection URI's path as the scheme: http://host/hook would post to hook://host."""
    if "://" not in (conn.host or "") and (conn.schema or "http") not in ("http", "https"):
        raise ValueError(
            f"connection {WEBHOOK_CONN_ID}: its scheme would be {conn.schema!r} (an Airflow HTTP URI's path"
            f" is the scheme); give the whole URL as the host, e.g. AIRFLOW_CONN_{WEBHOOK_CONN_ID.upper()}="
            """'{"conn_type": "http", "host": "https://hooks.example.vn/chiso"}'""")


def _webhook_notifier(alert: Alert, conn):
    from airflow.providers.http.notifications.http import HttpNotifier

    _check_webhook(conn)
    return HttpNotifier(http_conn_id=WEBHOOK_CONN_ID, json=alert.payload())


def _smtp_notifier(alert: Alert, conn):
    to = _recipients(conn)
    if not to:
        log.info("e-mail alerts off: connection %s has no 'to' in its extra and %s is unset",
                 SMTP_CONN_ID, EMAILS_ENV)
        return None
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier

    return SmtpNotifier(to=to, smtp_conn_id=SMTP_CONN_ID, subject=alert.subject,
                        from_email=conn.extra_dejson.get("from_email") or "chiso@localhost",
                        html_content=f"<p>{html.escape(alert.text)}</p>", mime_charset="utf-8")


CHANNELS = ((WEBHOOK_CONN_ID, _webhook_notifier), (SMTP_CONN_ID, _smtp_notifier))


def _channel(alert: Alert, conn_id: str, make, conn):
    """(conn_id, HttpNotifier | SmtpNotifier | the error that stopped it), None when the channel is off. The
    notifiers are called through notify()/async_notify() directly, not __call__, which would render the line
    as a Jinja template."""
    if isinstance(conn, Exception):
        return conn_id, conn
    if conn is None:
        return None
    try:
        notifier = make(alert, conn)
    except Exception as exc:  # a misconfigured channel fails alone, after the others were tried
        return conn_id, exc
    return (conn_id, notifier) if notifier is not None else None


def _off(conn_id: str) -> None:
    log.info("alert channel %s is off: the connection is not defined (AIRFLOW_CONN_%s)", conn_id,
             conn_id.upper())


def _connection(conn_id: str):
    """The channel's connection; None when it is not defined; the error when it cannot be read."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        return BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        _off(conn_id)
        return None
    except Exception as exc:
        return exc


async def _aconnection(conn_id: str):
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        return await BaseHook.aget_connection(conn_id)
    except AirflowNotFoundException:
        _off(conn_id)
        return None
    except Exception as exc:
        return exc


def _failed(alert: Alert, errors: list[str]) -> None:
    if errors:
        raise AlertDeliveryFailed(f"alert not delivered ({'; '.join(errors)}): {alert.text}")


def _error(conn_id: str, exc: BaseException) -> str:
    return f"{conn_id}: {type(exc).__name__}: {_short(exc)}"


def deliver(alert: Alert) -> int:
    """Send to every channel that is on; returns how many took it. Raises AlertDeliveryFailed when a channel
    that is on failed, after trying the others."""
    log.info("alert: %s", alert.text)
    errors, sent = [], 0
    for conn_id, make in CHANNELS:
        channel = _channel(alert, conn_id, make, _connection(conn_id))
        if channel is None:
            continue
        notifier = channel[1]
        try:
            if isinstance(notifier, Exception):
                raise notifier
            notifier.notify({})
            sent += 1
        except Exception as exc:
            errors.append(_error(conn_id, exc))
    _failed(alert, errors)
    return sent


async def adeliver(alert: Alert) -> int:
    """deliver() for the triggerer's event loop: the notifiers' async paths, both channels at once."""
    log.info("alert: %s", alert.text)
    channels = [c for c in [_channel(alert, conn_id, make, await _aconnection(conn_id))
                            for conn_id, make in CHANNELS] if c is not None]

    async def send(notifier) -> None:
        if isinstance(notifier, Exception):
            raise notifier
        await notifier.async_notify({})

    results = await asyncio.gather(*(send(n) for _, n in channels), return_exceptions=True)
    _failed(alert, [_error(conn_id, r) for (conn_id, _), r in zip(channels, results, strict=True)
                    if isinstance(r, BaseException)])
    return len(channels)


# --- the notifier the DAGs use ----------------------------------------------------------------------


class ChisoNotifier(BaseNotifier):
    """Synchronously (`on_failure_callback`, in the failed task's process): the task-failure or gate alert.
    Awaited (a deadline alert's AsyncCallback, in the triggerer): the missed-deadline alert."""

    def notify(self, context) -> None:
        deliver(failure_alert(context))

    async def async_notify(self, context) -> None:
        alert = await asyncio.to_thread(deadline_alert, context)  # it reads the warehouse
        if alert is not None:
            await adeliver(alert)


def default_args() -> dict[str, Any]:
    """The DAGs' default_args for alerting: the notifier on every task's final failure."""
    return {"on_failure_callback": ChisoNotifier()}


def in_dags_test() -> bool:
    """This process is `airflow dags test` (how `chiso pipeline run` and the tests run a DAG in-process)."""
    return sys.argv[1:3] == ["dags", "test"]


def publish_deadline(reference, interval: timedelta) -> DeadlineAlert | None:
    """A deadline alert at `reference` + `interval` (the DAG file picks them so they fall at 04:00): the
    scheduler marks a run that has not succeeded by then as missed, the triggerer awaits ChisoNotifier.

    None under `airflow dags test`: there no scheduler ever checks a deadline, and Airflow 3.3.2's
    DAG.test() fails a successful run of a DAG with a deadline at its very end (its in-memory serialised
    copy keeps the encoded alerts where DagRun.update_state expects deadline_alert ids: apache/airflow#73428,
    fix proposed in #73430)."""
    if in_dags_test():
        return None
    return DeadlineAlert(reference=reference, interval=interval, name="cong-bo-truoc-04h",
                         callback=AsyncCallback(ChisoNotifier))
