"""Alerts (ingestion/alerts.py) received by a real webhook and a real SMTP server on 127.0.0.1
(tests/alert_receivers.py): one message per channel for a GX gate that fails inside a real `airflow dags
test` run (Airflow's on_failure_callback), for a night not published by its 04:00 deadline (the callback
run as the triggerer runs it: Airflow's CallbackTrigger, its kwargs through the trigger table's
serialisation, the context shaped as the scheduler's Deadline.handle_miss builds it), and for each unit
newly red on the heat map (the warehouse DAG's hotspot_alerts against the marts of a real night); nothing
for a clean night, a repeat run, a back-fill or an in-process run. The delivery itself: Vietnamese intact,
channels off without a connection, a broken channel failing after the other was tried."""

from __future__ import annotations

import asyncio
import html
import json
import subprocess
import sys
import textwrap
import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from types import SimpleNamespace
from urllib.parse import quote

import pytest
from alert_receivers import RECIPIENTS, SENDER, SMTP_ENV, WEBHOOK_ENV, alert_receivers, free_port
from pipeline_fixtures import LOGICAL_DATE

from ingestion import alerts, pg
from ingestion.config import PROJECT_ROOT

ICT = timezone(timedelta(hours=7))
TEXT = ("[chiso] Lỗi: DAG chiso_warehouse, tác vụ docs thất bại sau 2 lần thử: RuntimeError: Xã Ea H'Leo,"
        " Phường Buôn Ma Thuột <Đắk Lắk> & Sở Nội vụ")


def _assert_subject(subject: str, text: str) -> None:
    """A mail's subject is its line without the link, cut on a word at 150 characters."""
    head = text[:text.rindex(" — ")]
    if len(head) <= 150:
        assert subject == head
    else:
        assert subject.endswith(" …") and len(subject) <= 152 and head.startswith(subject[:-2]), subject


def _alert(text: str = TEXT) -> alerts.Alert:
    url = "http://127.0.0.1:8080/dags/chiso_warehouse/runs/scheduled__x/tasks/docs?try_number=2"
    return alerts.Alert("task_failed", f"{text} — log: {url}", {"dag_id": "chiso_warehouse", "url": url})


@pytest.fixture
def receivers(monkeypatch):
    """Both receivers, and both connections pointing at them in this process's environment (an `airflow dags
    test` started from here inherits them)."""
    with alert_receivers() as rx:
        for key, value in rx.environ.items():
            monkeypatch.setenv(key, value)
        monkeypatch.delenv("CHISO_ALERT_EMAILS", raising=False)
        yield rx


# --- delivery -------------------------------------------------------------------------------------------


def _assert_one_each(rx, alert: alerts.Alert) -> None:
    assert rx.webhooks == [alert.payload()]
    [mail] = rx.mails
    assert mail["subject"] == alert.subject == TEXT  # the line without its link
    assert mail["body"] == f"<p>{html.escape(alert.text)}</p>"  # the whole line, link included
    assert mail["charset"] == "utf-8"
    assert "=?utf-8?" in mail["message"].as_string().split("Subject:", 1)[1].splitlines()[0].lower()
    assert mail["from"] == SENDER and mail["to"] == RECIPIENTS
    [request] = rx.requests
    assert request["path"] == "/chiso/canh-bao"
    assert request["headers"]["Content-Type"] == "application/json"
    assert json.loads(request["body"])["text"] == alert.text


def test_each_channel_gets_the_line_once_in_vietnamese(receivers):
    alert = _alert()
    assert len(TEXT) < 150
    assert alerts.deliver(alert) == 2
    _assert_one_each(receivers, alert)

    receivers.clear()  # a long line: the subject is cut on a word, the body keeps it all
    long = _alert(TEXT + "; " + ", ".join(f"bộ kiểm tra số {i} của Sở Tư pháp không đạt" for i in range(9)))
    assert alerts.deliver(long) == 2
    [mail] = receivers.mails
    _assert_subject(mail["subject"], long.text)
    assert mail["subject"] != long.text and mail["body"] == f"<p>{html.escape(long.text)}</p>"


def test_async_delivery_for_the_triggerer_is_the_same(receivers):
    alert = _alert()
    assert asyncio.run(alerts.adeliver(alert)) == 2
    _assert_one_each(receivers, alert)


def test_a_channel_without_a_connection_is_off(receivers, monkeypatch):
    monkeypatch.delenv(SMTP_ENV)
    assert alerts.deliver(_alert()) == 1
    assert receivers.counts() == (1, 0)

    monkeypatch.delenv(WEBHOOK_ENV)
    assert alerts.deliver(_alert()) == 0
    assert asyncio.run(alerts.adeliver(_alert())) == 0
    assert receivers.counts() == (1, 0)


def test_recipients_come_from_the_connection_or_chiso_alert_emails(receivers, monkeypatch):
    smtp = json.loads(receivers.smtp_connection())
    del smtp["extra"]["to"]
    monkeypatch.setenv(SMTP_ENV, json.dumps(smtp))
    assert alerts.deliver(_alert()) == 1  # no recipient anywhere: e-mail is off
    assert receivers.counts() == (1, 0)

    monkeypatch.setenv("CHISO_ALERT_EMAILS", "a@chiso.example; b@chiso.example")
    assert alerts.deliver(_alert()) == 2
    assert receivers.mails[0]["to"] == ["a@chiso.example", "b@chiso.example"]


def test_connections_as_airflow_uris(receivers, monkeypatch):
    """Airflow's URI forms: an HTTP URI's path is its scheme (so the webhook gets the root), the SMTP
    provider's options in the query."""
    port = receivers.webhook_url.split(":")[2].split("/")[0]
    monkeypatch.setenv(WEBHOOK_ENV, f"http://127.0.0.1:{port}/http")
    to = ",".join(a.replace("@", "%40") for a in RECIPIENTS)
    monkeypatch.setenv(SMTP_ENV, f"smtp://127.0.0.1:{receivers.smtp_port}?disable_tls=true&disable_ssl=true"
                                 f"&from_email={SENDER.replace('@', '%40')}&to={to}")
    assert alerts.deliver(_alert()) == 2
    assert receivers.requests[0]["path"] == "/"
    assert receivers.mails[0]["to"] == RECIPIENTS and receivers.mails[0]["subject"] == TEXT


def test_a_webhook_uri_with_a_path_fails_clearly_and_e_mail_still_goes(receivers, monkeypatch):
    port = receivers.webhook_url.split(":")[2].split("/")[0]
    monkeypatch.setenv(WEBHOOK_ENV, f"http://127.0.0.1:{port}/chiso/canh-bao")  # would post to chiso/canh-bao://
    with pytest.raises(alerts.AlertDeliveryFailed, match="whole URL as the host"):
        alerts.deliver(_alert())
    assert receivers.counts() == (0, 1)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_broken_webhook_fails_after_e_mail_was_sent(monkeypatch, mode):
    with alert_receivers(webhook_status=500) as rx:
        for key, value in rx.environ.items():
            monkeypatch.setenv(key, value)
        with pytest.raises(alerts.AlertDeliveryFailed, match=alerts.WEBHOOK_CONN_ID) as failed:
            alerts.deliver(_alert()) if mode == "sync" else asyncio.run(alerts.adeliver(_alert()))
        assert alerts.SMTP_CONN_ID not in str(failed.value)
        assert rx.requests and rx.counts() == (0, 1)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_broken_smtp_server_fails_after_the_webhook_was_called(receivers, monkeypatch, mode):
    monkeypatch.setenv(SMTP_ENV, receivers.smtp_connection(port=free_port()))  # nothing listens there
    with pytest.raises(alerts.AlertDeliveryFailed, match=alerts.SMTP_CONN_ID) as failed:
        alerts.deliver(_alert()) if mode == "sync" else asyncio.run(alerts.adeliver(_alert()))
    assert alerts.WEBHOOK_CONN_ID not in str(failed.value)
    assert receivers.counts() == (1, 0)


def test_a_rejected_e_mail_is_a_failure(monkeypatch):
    with alert_receivers(smtp_reply="554 5.7.1 rejected") as rx:
        for key, value in rx.environ.items():
            monkeypatch.setenv(key, value)
        smtp = json.loads(rx.smtp_connection())
        smtp["extra"]["retry_limit"] = 0
        monkeypatch.setenv(SMTP_ENV, json.dumps(smtp))
        with pytest.raises(alerts.AlertDeliveryFailed, match="554"):
            alerts.deliver(_alert())
        assert rx.counts() == (1, 0)


# --- the DAGs carry the alerts ----------------------------------------------------------------------------

_WIRING_PROBE = textwrap.dedent("""
    import json, sys
    from datetime import datetime, timedelta, timezone
    from airflow.dag_processing.dagbag import DagBag
    from airflow.serialization.encoders import coerce_to_core_timetable
    from airflow.timetables.base import TimeRestriction
    ict = timezone(timedelta(hours=7))
    out = {}
    for dag_id, dag in DagBag(dag_folder=sys.argv[1]).dags.items():
        alerts = dag.deadline if isinstance(dag.deadline, list) else [dag.deadline] if dag.deadline else []
        alert = alerts[0] if len(alerts) == 1 else None
        night, timetable = None, coerce_to_core_timetable(dag.timetable)
        if timetable.periodic and alert:
            info = timetable.next_dagrun_info(  # the scheduler's first night after 2026-10-01 00:00
                last_automated_data_interval=None,
                restriction=TimeRestriction(datetime(2026, 10, 1, tzinfo=ict), None, True))
            if info is not None and info.logical_date is not None:
                night = [info.logical_date.isoformat(), (info.logical_date + alert.interval).isoformat()]
        out[dag_id] = {
            "deadlines": len(alerts), "reference": type(alert.reference).__name__ if alert else None,
            "interval": alert.interval.total_seconds() if alert else None,
            "callback": alert.callback.serialize() if alert else None, "night": night,
            "failure_callbacks": sorted({type(c).__name__ for t in dag.tasks for c in t.on_failure_callback}),
            "without": sorted(t.task_id for t in dag.tasks if not t.on_failure_callback),
            "hotspot_upstream": sorted(dag.task_dict["hotspot_alerts"].upstream_task_ids)
            if "hotspot_alerts" in dag.task_dict else None}
    print(json.dumps(out))
""")


def test_every_dag_alerts_on_failure_and_at_04_00(airflow_env):
    result = subprocess.run([sys.executable, "-c", _WIRING_PROBE, str(PROJECT_ROOT / "dags")],
                            env=airflow_env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    dags = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(dags) == {"chiso_provincial_ingest", "chiso_national_index", "chiso_warehouse",
                         "chiso_index_reconciliation"}
    for dag_id, info in dags.items():
        assert info["failure_callbacks"] == ["ChisoNotifier"] and info["without"] == [], dag_id
    # the reconciliation is for the data team, not the morning's dashboards: failures alert, no deadline
    assert dags.pop("chiso_index_reconciliation")["deadlines"] == 0
    for dag_id, info in dags.items():
        assert info["deadlines"] == 1, dag_id
        assert info["callback"] == {"path": "ingestion.alerts.ChisoNotifier", "kwargs": {}}, dag_id
    # the scheduled nights: their logical date plus the deadline's interval is 04:00 of the night
    for dag_id in ("chiso_provincial_ingest", "chiso_national_index"):
        logical, deadline = (datetime.fromisoformat(t).astimezone(ICT) for t in dags[dag_id]["night"])
        assert dags[dag_id]["reference"] == "DagRunLogicalDateDeadline"
        assert (deadline.hour, deadline.minute) == (4, 0), (dag_id, logical, deadline)
        assert timedelta(0) < deadline - logical <= timedelta(hours=27), dag_id
    assert dags["chiso_warehouse"]["reference"] == "DagRunQueuedAtDeadline"
    assert dags["chiso_warehouse"]["interval"] == 2.5 * 3600
    assert dags["chiso_warehouse"]["hotspot_upstream"] == ["publish"]


# --- a GX gate failing in a real DAG run ------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.e2e
def test_a_failed_gate_in_a_dag_run_alerts_each_channel_once_and_a_clean_run_none(national_pipeline,
                                                                                  receivers):
    """The national DAG's raw gate fails on a corrupted raw row (as in test_dags): `airflow dags test` runs
    the task's on_failure_callback (ChisoNotifier) in its process, which reaches both receivers once; the
    tasks after the gate never run, so they say nothing. Then the window again, clean: nothing."""
    from ingestion.orchestration import PipelineFailed, run_dag

    start, end = national_pipeline
    later = date(end.year + (end.month == 12), end.month % 12 + 1, 1)
    with pg.connect("loader") as conn:
        conn.execute("update raw.dvcqg_service_results set total_score = total_score + 7"
                     " where scope = 'national' and period_start = %s and department_code = 'H15'", (start,))
    try:
        with pytest.raises(PipelineFailed):
            run_dag("chiso_national_index", later, later, logical_date=LOGICAL_DATE)
    finally:
        with pg.connect("loader") as conn:
            conn.execute("update raw.dvcqg_service_results set total_score = total_score - 7"
                         " where scope = 'national' and period_start = %s and department_code = 'H15'",
                         (start,))
            for table in ("raw.dvcqg_service_results", "raw.dvcqg_group_details"):
                conn.execute(f"delete from {table} where period_start > %s", (end,))

    [payload] = receivers.webhooks
    [mail] = receivers.mails
    assert payload["kind"] == "gate_failed" and payload["gate"] == "raw"
    assert (payload["dag_id"], payload["task_id"], payload["tries"]) == ("chiso_national_index", "raw_gate",
                                                                         1)
    assert payload["suites"] and all(s.startswith("raw.dvcqg") for s in payload["suites"])
    assert payload["text"].startswith("[chiso] Lỗi: DAG chiso_national_index, tác vụ raw_gate (cổng GX raw)"
                                      " thất bại sau 1 lần thử; bộ kiểm tra không đạt: raw.dvcqg")
    assert payload["run_id"].startswith("manual__")  # `dags test` runs are manual
    assert payload["url"].endswith(f"/dags/chiso_national_index/runs/{quote(payload['run_id'])}"
                                   "/tasks/raw_gate?try_number=1")
    assert payload["text"].endswith(f" — log: {payload['url']}")
    _assert_subject(mail["subject"], payload["text"])
    assert mail["body"] == f"<p>{html.escape(payload['text'])}</p>"

    run_dag("chiso_national_index", start, end, logical_date=LOGICAL_DATE)  # a clean night
    assert receivers.counts() == (1, 1)


# --- new red hotspots against the marts of a real night ---------------------------------------------------

TEST_SCHEMA = "alerts_test_marts"


def _hotspots(run_type: str) -> list[str]:
    """The warehouse DAG's hotspot_alerts task over the test's marts, with what it reads of its context (the
    run type as the Task SDK gives it: an enum whose str() is not its value)."""
    from airflow.sdk.api.datamodels._generated import DagRunType

    run = SimpleNamespace(run_type=DagRunType(run_type), run_id=f"{run_type}__alerts-test")
    return alerts.hotspot_alerts({"dag": SimpleNamespace(dag_id="chiso_warehouse"), "dag_run": run},
                                 schema=TEST_SCHEMA)


@pytest.fixture
def hotspot_marts(warehouse_pipeline):
    """A copy of the night's mart_hotspots and of the heat map's last two days in a schema of its own, where
    the test decides the day before, given to alerts as their schema. Yields the as-of day and its red
    units, each red the day before too (a clean night)."""
    from psycopg import sql

    reader = pg.ROLES["reader"]
    with pg.connect("transform") as conn:
        conn.execute(sql.SQL("drop schema if exists {s} cascade; create schema {s}").format(
            s=sql.Identifier(TEST_SCHEMA)))
        conn.execute(sql.SQL("create table {s}.mart_hotspots as select * from marts.mart_hotspots").format(
            s=sql.Identifier(TEST_SCHEMA)))
        conn.execute(sql.SQL("create table {s}.mart_heatmap_daily as select * from marts.mart_heatmap_daily"
                             " where kpi_date >= (select max(as_of_date) - 1 from marts.mart_hotspots)")
                     .format(s=sql.Identifier(TEST_SCHEMA)))
        conn.execute(sql.SQL("grant usage on schema {s} to {r};"
                             " grant select on all tables in schema {s} to {r}")
                     .format(s=sql.Identifier(TEST_SCHEMA), r=sql.Identifier(reader)))
        as_of, red = conn.execute(sql.SQL(
            "select max(as_of_date), array_agg(distinct unit_code order by unit_code)"
            " filter (where hotspot_rule = 'red_status') from {s}.mart_hotspots").format(
            s=sql.Identifier(TEST_SCHEMA))).fetchone()
        conn.execute(sql.SQL("update {s}.mart_heatmap_daily set status = 'red' where kpi_date = %s - 1"
                             " and unit_code = any(%s)").format(s=sql.Identifier(TEST_SCHEMA)), (as_of, red))

    def forget() -> None:  # what an earlier session of this test recorded as sent
        with pg.connect("loader") as conn:
            conn.execute("delete from audit.alerts_sent where kind = 'new_red_hotspot' and as_of_date = %s"
                         " and alert_key = any(%s)", (as_of, red or []))

    forget()
    yield as_of, red or []
    forget()
    with pg.connect("transform") as conn:
        conn.execute(sql.SQL("drop schema {s} cascade").format(s=sql.Identifier(TEST_SCHEMA)))


def _set_day_before(as_of: date, statuses: dict[str, str]) -> None:
    from psycopg import sql

    with pg.connect("transform") as conn:
        for unit, status in statuses.items():
            conn.execute(sql.SQL("update {s}.mart_heatmap_daily set status = %s where kpi_date = %s - 1"
                                 " and unit_code = %s").format(s=sql.Identifier(TEST_SCHEMA)),
                         (status, as_of, unit))


@pytest.mark.slow
def test_new_red_sql_reads_the_real_marts(warehouse_pipeline):
    """NEW_RED_SQL on the night's own marts equals the rule computed here: red today (mart_hotspots,
    red_status), not red the day before on the heat map."""
    with pg.connect("reader") as conn:
        today = dict(conn.execute("select unit_code, as_of_date from marts.mart_hotspots"
                                  " where hotspot_rule = 'red_status'").fetchall())
        day = max(today.values(), default=None)
        before = {u: s for u, s in conn.execute(
            "select unit_code, status from marts.mart_heatmap_daily where kpi_date = %s",
            (day - timedelta(days=1),))} \
            if day else {}
    expected = sorted(u for u in today if before.get(u) != "red") if before else []
    rows = alerts.new_red_hotspots()
    assert [r["unit_code"] for r in rows] == expected
    assert all(set(r) == {"unit_code", "unit_name", "as_of_date", "reason_vi"} for r in rows)


@pytest.mark.slow
def test_one_alert_per_new_red_unit_once(hotspot_marts, receivers):
    as_of, red = hotspot_marts
    assert len(red) >= 3, f"the test night has {len(red)} red units; the test needs 3"

    # a clean night: every red unit was red the day before
    assert alerts.new_red_hotspots(TEST_SCHEMA) == []
    assert _hotspots("asset_triggered") == []
    assert receivers.counts() == (0, 0)

    # two units turn red (from yellow, from green); the third was red already
    new = {red[0]: "yellow", red[1]: "green"}
    _set_day_before(as_of, new)
    assert [r["unit_code"] for r in alerts.new_red_hotspots(TEST_SCHEMA)] == sorted(new)

    assert _hotspots("backfill") == []  # a past window is not this morning's news
    assert receivers.counts() == (0, 0)

    sent = _hotspots("asset_triggered")
    assert len(sent) == 2 and receivers.counts() == (2, 2)
    by_unit = {p["unit_code"]: p for p in receivers.webhooks}
    assert set(by_unit) == set(new)
    with pg.connect("reader") as conn:
        names = dict(conn.execute(f"select unit_code, unit_name from {TEST_SCHEMA}.mart_hotspots"
                                  " where unit_code = any(%s)", (list(new),)).fetchall())
    for unit, payload in by_unit.items():
        assert payload["kind"] == "new_red_hotspot" and payload["as_of_date"] == as_of.isoformat()
        assert payload["dag_id"] == "chiso_warehouse" and payload["run_id"] == "asset_triggered__alerts-test"
        assert payload["text"].startswith(f"[chiso] Điểm nóng đỏ mới ngày {as_of:%d/%m/%Y}:"
                                          f" {names[unit]} ({unit}) — ")
        assert payload["url"].endswith("/superset/dashboard/dieu-hanh-hang-ngay/")
        assert payload["text"].endswith(f" — bảng điều hành: {payload['url']}")
    for mail, payload in zip(sorted(receivers.mails, key=lambda m: m["subject"]),
                             sorted(by_unit.values(), key=lambda p: p["text"]), strict=True):
        _assert_subject(mail["subject"], payload["text"])
    assert sorted(sent) == sorted(p["text"] for p in by_unit.values())

    # the night again (a re-run, a retry): nothing new to say
    assert _hotspots("asset_triggered") == []
    assert _hotspots("manual") == []
    assert receivers.counts() == (2, 2)
    with pg.connect("reader") as conn:
        recorded = conn.execute("select alert_key, channels from audit.alerts_sent"
                                " where kind = 'new_red_hotspot' and as_of_date = %s order by 1",
                                (as_of,)).fetchall()
    assert recorded == [(u, 2) for u in sorted(new)]


@pytest.mark.slow
def test_a_hotspot_alert_not_delivered_is_sent_again_by_the_retry(hotspot_marts, receivers, monkeypatch):
    as_of, red = hotspot_marts
    assert red, "the test night has no red unit"
    _set_day_before(as_of, {red[0]: "yellow"})
    working_smtp = receivers.smtp_connection()
    monkeypatch.setenv(SMTP_ENV, receivers.smtp_connection(port=free_port()))  # the mail server is down
    with pytest.raises(alerts.AlertDeliveryFailed, match=alerts.SMTP_CONN_ID):
        _hotspots("asset_triggered")
    assert receivers.counts() == (1, 0)

    monkeypatch.setenv(SMTP_ENV, working_smtp)  # the task's retry, the server back
    assert len(_hotspots("asset_triggered")) == 1
    assert receivers.counts() == (2, 1)  # at least once: the webhook hears it twice
    assert _hotspots("asset_triggered") == []


def test_hotspot_alerts_with_every_channel_off_record_nothing(hotspot_marts, monkeypatch):
    """Nothing said is nothing recorded: a channel turned on before a re-run still tells today's news."""
    as_of, red = hotspot_marts
    _set_day_before(as_of, {red[0]: "green"})
    monkeypatch.delenv(WEBHOOK_ENV, raising=False)
    monkeypatch.delenv(SMTP_ENV, raising=False)
    assert len(_hotspots("scheduled")) == 1
    with pg.connect("reader") as conn:
        assert conn.execute("select count(*) from audit.alerts_sent where as_of_date = %s and alert_key = %s",
                            (as_of, red[0])).fetchone()[0] == 0


# --- a missed 04:00 deadline, as the triggerer runs its callback -----------------------------------------


def _deadline_context(dag_id: str, run_type: str, run_id: str, state: str, deadline: datetime) -> dict:
    """The context Deadline.handle_miss (airflow/models/deadline.py) gives the callback: the DAG run as the
    REST API's DAGRunResponse dumps it (mode="json"), and the deadline's id and time (a UTC datetime)."""
    from airflow.api_fastapi.core_api.datamodels.dag_run import DAGRunResponse

    logical = None if run_type == "asset_triggered" else deadline - timedelta(hours=1)
    queued = deadline - timedelta(hours=2, minutes=30)
    run = DAGRunResponse.model_validate({
        "run_id": run_id, "dag_id": dag_id, "logical_date": logical, "queued_at": queued,
        "start_date": queued + timedelta(seconds=5), "end_date": None, "duration": None,
        "data_interval_start": logical, "data_interval_end": logical, "run_after": queued,
        "last_scheduling_decision": deadline, "run_type": run_type, "state": state,
        "triggered_by": {"manual": "test"}.get(run_type, "timetable"), "triggering_user_name": None,
        "conf": {}, "note": None, "dag_versions": [], "bundle_version": None,
        "dag_model": {"dag_display_name": dag_id}, "partition_key": None, "partition_date": None})
    return {"dag_run": run.model_dump(mode="json"),
            "deadline": {"id": str(uuid.uuid4()), "deadline_time": deadline.astimezone(UTC)}}


def _triggerer_runs(context: dict) -> list[dict]:
    """The DAG's DeadlineAlert callback as the triggerer runs it: TriggererCallback.queue builds a
    CallbackTrigger from the callback's path and kwargs plus the context, its kwargs are stored encrypted in
    the trigger table, the triggerer decrypts and decodes them, builds the trigger and runs it."""
    from airflow.models.trigger import Trigger
    from airflow.sdk import DeadlineReference
    from airflow.serialization.decoders import smart_decode_trigger_kwargs
    from airflow.triggers.callback import CallbackTrigger

    alert = alerts.publish_deadline(DeadlineReference.DAGRUN_LOGICAL_DATE, timedelta(hours=1))
    data = alert.callback.serialize()
    classpath, kwargs = CallbackTrigger(callback_path=data["path"],
                                        callback_kwargs={**data["kwargs"], "context": context}).serialize()
    stored = Trigger.encrypt_kwargs(kwargs)
    decoded = {k: smart_decode_trigger_kwargs(v) for k, v in Trigger._decrypt_kwargs(stored).items()}
    assert classpath == "airflow.triggers.callback.CallbackTrigger"
    trigger = CallbackTrigger(**decoded)

    async def run() -> list[dict]:
        return [event.payload async for event in trigger.run()]

    return asyncio.run(run())


NIGHT_DEADLINE = datetime(2026, 10, 2, 4, 0, tzinfo=ICT)


@pytest.fixture
def publications(warehouse):
    """Publications the test records for its runs, removed afterwards."""
    runs: list[str] = []

    def publish(run_id: str, at: datetime) -> None:
        runs.append(run_id)
        with pg.connect("loader") as conn:
            conn.execute("insert into audit.publications (dataset, pipeline_run, window_start, window_end,"
                         " published_at) values ('chiso://marts/warehouse', %s, %s, %s, %s)",
                         (run_id, at.date(), at.date(), at))

    yield publish
    with pg.connect("loader") as conn:
        conn.execute("delete from audit.publications where pipeline_run = any(%s)", (runs,))


def test_a_night_not_published_by_04_00_alerts_each_channel_once(receivers, warehouse):
    run_id = f"scheduled__2026-09-30T18:00:00+00:00-{uuid.uuid4().hex[:8]}"
    context = _deadline_context("chiso_provincial_ingest", "scheduled", run_id, "running", NIGHT_DEADLINE)
    events = _triggerer_runs(context)
    assert [e["state"] for e in events] == ["running", "success"], events
    [payload] = receivers.webhooks
    [mail] = receivers.mails
    assert payload["kind"] == "deadline_missed" and payload["run_id"] == run_id
    assert payload["text"].startswith("[chiso] Trễ hạn: DAG chiso_provincial_ingest chưa công bố số liệu"
                                      f" trước 04:00 ngày 02/10/2026 (lượt chạy {run_id}: đang chạy) — log: ")
    assert payload["url"].endswith(f"/dags/chiso_provincial_ingest/runs/{quote(run_id)}")
    assert datetime.fromisoformat(payload["deadline"]) == NIGHT_DEADLINE
    _assert_subject(mail["subject"], payload["text"])


def test_a_night_published_late_alerts_one_published_in_time_none(receivers, publications):
    late, in_time = (f"asset_triggered__2026-10-01T18:{m}:00+00:00-{uuid.uuid4().hex[:8]}"
                     for m in ("31", "32"))
    publications(late, NIGHT_DEADLINE + timedelta(minutes=20))
    publications(in_time, NIGHT_DEADLINE - timedelta(minutes=20))  # only the unit reports ran long

    _triggerer_runs(_deadline_context("chiso_warehouse", "asset_triggered", in_time, "running",
                                      NIGHT_DEADLINE))
    assert receivers.counts() == (0, 0)
    _triggerer_runs(_deadline_context("chiso_warehouse", "asset_triggered", late, "success",
                                      NIGHT_DEADLINE))
    assert receivers.counts() == (1, 1)
    assert f"(lượt chạy {late}: đã xong)" in receivers.webhooks[0]["text"]


@pytest.mark.parametrize("run_type", ["manual", "backfill", "operator_triggered"])
def test_a_deadline_of_a_run_that_is_not_a_night_says_nothing(receivers, warehouse, run_type):
    """`airflow dags test` runs are manual, with logical dates in the past: a scheduler meeting their
    deadlines later must not alert. Back-fills neither."""
    context = _deadline_context("chiso_national_index", run_type, f"{run_type}__2026-10-01T00:00:00+00:00",
                                "failed", NIGHT_DEADLINE)
    events = _triggerer_runs(context)
    assert events[-1]["state"] == "success"
    assert receivers.counts() == (0, 0)


def test_a_missed_deadline_not_delivered_fails_the_callback(receivers, monkeypatch, warehouse):
    """What the triggerer records when a channel is broken: the callback FAILED, with the reason; the other
    channel was still told."""
    monkeypatch.setenv(SMTP_ENV, receivers.smtp_connection(port=free_port()))
    run_id = f"scheduled__2026-10-01T20:00:00+00:00-{uuid.uuid4().hex[:8]}"
    events = _triggerer_runs(_deadline_context("chiso_national_index", "scheduled", run_id, "running",
                                               NIGHT_DEADLINE))
    assert events[-1]["state"] == "failed" and "AlertDeliveryFailed" in events[-1]["body"]
    assert alerts.SMTP_CONN_ID in events[-1]["body"]
    assert receivers.counts() == (1, 0)
