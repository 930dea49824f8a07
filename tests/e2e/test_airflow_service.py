"""Airflow as the nightly schedule runs it: `chiso airflow up` starts the real api-server, scheduler,
dag-processor and triggerer (LocalExecutor), or Redis and Celery workers (CeleryExecutor), and everything
below is seen through Airflow's REST API, as the UI sees it.

The deployment under test has its own home (PostgreSQL, Airflow metadata, logs) and ports, so the other
tests' warehouse is untouched. Its nights are fixed: the DAGs' schedule starts 2026-09-29 and its last
logical date is 2026-09-30 03:00, with catch-up on, so the scheduler itself creates the two provincial
nights (data intervals 09-29 01:00 -> 09-30 01:00 -> 10-01 01:00) and the two national ones (09-29 and
09-30 03:00), whatever the day the test runs; the
sources are the synthetic province of the other tests, served from this process.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path

import httpx
import psycopg
import pytest
from alert_receivers import alert_receivers
from pipeline_fixtures import PROVINCE_SCALE

from ingestion import orchestration

CHISO = str(Path(sys.executable).with_name("chiso"))
PROVINCIAL, NATIONAL, WAREHOUSE = "chiso_provincial_ingest", "chiso_national_index", "chiso_warehouse"
RECONCILIATION = "chiso_index_reconciliation"
NIGHTS = ["2026-09-29T01:00:00+07:00", "2026-09-30T01:00:00+07:00"]  # the provincial nights' logical dates
RAW_ASSETS = {"chiso://raw/dossiers", "chiso://raw/feedback", "chiso://raw/centres"}
WAIT = 1500  # seconds a night may take on a loaded 2-core machine before the test gives up
SECRETS = {"dossiers": "test-s2-secret", "feedback": "test-s3-secret", "centres": "test-s4-key"}


def _free_block(size: int) -> int:
    """A first port such that it and the `size` - 1 after it are free."""
    for base in range(21000, 60000, 97):
        if all(_free(base + i) for i in range(size)):
            return base
    raise RuntimeError("no free block of ports")


def _free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


class Deployment:
    """One chiso home with its Airflow, driven by the `chiso` command and read through the REST API."""

    def __init__(self, home: Path, sandboxes: dict[str, str]) -> None:
        base = _free_block(20)
        self.port = base
        keep = {k: v for k, v in os.environ.items() if not k.startswith(("CHISO_", "AIRFLOW"))}
        self.env = {
            **keep,
            "CHISO_HOME_DIR": str(home), "CHISO_LANDING_DIR": str(home / "landing"),
            "CHISO_AIRFLOW_PORT": str(base), "CHISO_REDIS_PORT": str(base + 19),
            "CHISO_TODAY": "2026-10-01T06:00:00+07:00",  # the morning after the last night
            "CHISO_SCHEDULE_START": "2026-09-29", "CHISO_SCHEDULE_END": "2026-09-30T03:00",
            "CHISO_SCHEDULE_CATCHUP": "true",
            # one HTTP try, so that one injected 503 fails the task; the scheduler's retry comes 5 s later
            "CHISO_HTTP_MAX_TRIES": "1", "CHISO_TASK_RETRIES": "1", "CHISO_TASK_RETRY_DELAY": "5",
            "CHISO_DVCQG_BASE_URL": sandboxes["dvcqg"], "CHISO_DOSSIERS_BASE_URL": sandboxes["dossiers"],
            "CHISO_FEEDBACK_BASE_URL": sandboxes["feedback"], "CHISO_CENTRES_BASE_URL": sandboxes["centres"],
            "CHISO_DOSSIERS_CLIENT_SECRET": SECRETS["dossiers"],
            "CHISO_FEEDBACK_CLIENT_SECRET": SECRETS["feedback"], "CHISO_CENTRES_API_KEY": SECRETS["centres"],
            # a task whose worker died is failed (and retried) after 60 s without a heartbeat, not 5 min
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "60",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
        }
        self.home = home
        self.api: httpx.Client | None = None

    def chiso(self, *args: str, **env: str) -> str:
        result = subprocess.run([CHISO, *args], env={**self.env, **env}, text=True, capture_output=True,
                                timeout=900)
        assert result.returncode == 0, f"chiso {' '.join(args)}: {result.stderr[-2000:]}"
        return result.stdout

    def airflow_up(self, **env: str) -> str:
        out = self.chiso("airflow", "up", **env)
        login = re.search(r"at (http://\S+) \(login (\S+) / (\S+)\)", out)
        assert login, out
        url, user, password = self.login = login.groups()
        token = httpx.post(f"{url}/auth/token", json={"username": user, "password": password}, timeout=60)
        token.raise_for_status()
        self.api = httpx.Client(base_url=f"{url}/api/v2", timeout=60,
                                headers={"Authorization": f"Bearer {token.json()['access_token']}"})
        return out

    def get(self, path: str, **params) -> dict:
        response = self.api.get(path, params=params)
        response.raise_for_status()
        return response.json()

    def runs(self, dag_id: str) -> list[dict]:
        return self.get(f"/dags/{dag_id}/dagRuns", order_by="run_after", limit=100)["dag_runs"]

    def tasks(self, dag_id: str, run_id: str) -> dict[str, dict]:
        items = self.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", limit=1000)["task_instances"]
        return {t["task_id"]: t for t in items}

    def wait(self, what: str, done, timeout: float = WAIT):
        """Poll done() until it returns something true; fail with the DAG runs' states on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = done()
            if value:
                return value
            time.sleep(3)
        states = {d: [(r["dag_run_id"], r["state"]) for r in self.runs(d)]
                  for d in (PROVINCIAL, NATIONAL, WAREHOUSE, RECONCILIATION)}
        pytest.fail(f"{what}: not within {timeout} s; runs {states}; logs in {self.home / 'logs'}")

    def finished(self, dag_id: str, count: int, run_type: str | None = None) -> list[dict] | None:
        """The first `count` runs of a type once all have finished; a failed one fails the test."""
        runs = [r for r in self.runs(dag_id) if run_type in (None, r["run_type"])]
        for run in runs:
            assert run["state"] != "failed", f"{dag_id} {run['dag_run_id']} failed; see {self.home / 'logs'}"
        done = [r for r in runs if r["state"] == "success"]
        return done[:count] if len(done) >= count else None

    def trigger(self, dag_id: str) -> str:
        response = self.api.post(f"/dags/{dag_id}/dagRuns", json={"logical_date": None})
        response.raise_for_status()
        return response.json()["dag_run_id"]

    def succeeded(self, dag_id: str, run_id: str) -> dict | None:
        return orchestration.finished(self.api, dag_id, run_id)

    def idle(self, dag_id: str) -> bool:
        """No run of dag_id queued or running, and no asset event waiting for one: a run held back by
        max_active_runs is created later and takes every event queued by then, a later night's too."""
        active = [r for r in self.runs(dag_id) if r["state"] in ("queued", "running")]
        return not active and not self.get(f"/dags/{dag_id}/assets/queuedEvents")["total_entries"]

    def warehouse_after(self, provincial_run: str) -> dict | None:
        """The warehouse run the asset events of this provincial run started, once it succeeded."""
        return orchestration.started_by(self.api, WAREHOUSE, provincial_run)

    def sql(self, query: str, *params):
        url = self.chiso("warehouse-url", "--role", "admin").strip()
        with psycopg.connect(url) as conn:
            cur = conn.execute(query, params)
            return cur.fetchall() if cur.description else []


@pytest.fixture(scope="module")
def deployment() -> Iterator[Deployment]:
    from ingestion.sandbox import dvcqg
    from ingestion.sandbox.provincial import serve_centres, serve_dossiers, serve_feedback

    # beside the other tests' home, not under pytest's temporary folders (private to the user running the
    # tests, which the PostgreSQL server's own user cannot enter)
    home, scale = Path(os.environ["CHISO_HOME_DIR"]).with_name("test-airflow-service"), PROVINCE_SCALE
    if home.exists():  # a previous session's: stop what it left running, start clean
        subprocess.run([CHISO, "down"], env={**os.environ, "CHISO_HOME_DIR": str(home)}, capture_output=True)
        shutil.rmtree(home)
    with ExitStack() as stack:
        sandboxes = {
            "dvcqg": stack.enter_context(dvcqg.serve(**PROVINCE_SCALE)),
            "dossiers": stack.enter_context(serve_dossiers(client_secret=SECRETS["dossiers"], **scale)),
            "feedback": stack.enter_context(serve_feedback(client_secret=SECRETS["feedback"], **scale)),
            "centres": stack.enter_context(serve_centres(api_key=SECRETS["centres"], **scale)),
        }
        deployment = Deployment(home, sandboxes)
        deployment.sandboxes = sandboxes
        deployment.alerts = stack.enter_context(alert_receivers())  # the alert channels: a webhook, SMTP
        deployment.env.update(deployment.alerts.environ)
        deployment.chiso("up", "--no-sandbox")
        try:
            yield deployment
        finally:
            subprocess.run([CHISO, "down"], env=deployment.env, capture_output=True, timeout=300)


def _fault(base_url: str, *faults: dict) -> None:
    httpx.post(f"{base_url}/_sandbox/faults", json=list(faults)).raise_for_status()


def _local(moment: str) -> datetime:
    return datetime.fromisoformat(moment.replace("Z", "+00:00"))


RAW_WINDOW_SQL = """
select count(*), md5(string_agg(ma_ho_so || '|' || ngay_cap_nhat::text || '|' || record::text, ','
                                 order by ma_ho_so, ngay_cap_nhat))
from raw.dossiers where ngay_cap_nhat >= %s and ngay_cap_nhat < %s
"""
RAW_WINDOW = ("2026-09-29T01:00:00+07:00", "2026-10-01T01:00:00+07:00")


@pytest.fixture(scope="module")
def local_nights(deployment: Deployment) -> Deployment:
    """LocalExecutor: the scheduler catches up on the two nights; the first S2 request fails once."""
    _fault(deployment.sandboxes["dossiers"], {"status": 503, "path": "/api/v1/dossiers"})
    out = deployment.airflow_up()
    assert "LocalExecutor" in out
    deployment.wait("two scheduled provincial nights",
                    lambda: deployment.finished(PROVINCIAL, 2, "scheduled"))
    deployment.wait("the warehouse published from the assets",
                    lambda: deployment.finished(WAREHOUSE, 1, "asset_triggered"))
    deployment.wait("two scheduled national nights", lambda: deployment.finished(NATIONAL, 2, "scheduled"))
    deployment.wait("the reconciliation of both publications",
                    lambda: deployment.finished(RECONCILIATION, 1, "asset_triggered"))
    return deployment


def test_the_scheduler_runs_the_provincial_nights(local_nights: Deployment) -> None:
    runs = [r for r in local_nights.runs(PROVINCIAL) if r["run_type"] == "scheduled"]
    assert [_local(r["logical_date"]) for r in runs] == [_local(n) for n in NIGHTS]
    assert {r["state"] for r in runs} == {"success"}
    for run in runs:  # each night extracted and gated every source
        tasks = local_nights.tasks(PROVINCIAL, run["dag_run_id"])
        assert {t: tasks[t]["state"] for t in ("extract_dossiers", "extract_feedback", "extract_centres",
                                               "raw_gate")} == dict.fromkeys(
            ("extract_dossiers", "extract_feedback", "extract_centres", "raw_gate"), "success")
    # the first night's windows end at its interval's end, not at the clock: a night caught up is that night
    ends = local_nights.sql("select window_end from audit.extract_runs where source = 'dossiers' and "
                            "entity = 'dossiers' and status = 'success' order by run_id")
    assert [e[0] for e in ends[:2]] == [_local(NIGHTS[1]), _local(RAW_WINDOW[1])]


def test_a_failed_task_is_retried_by_the_scheduler(local_nights: Deployment) -> None:
    first = [r for r in local_nights.runs(PROVINCIAL) if r["run_type"] == "scheduled"][0]
    ti = local_nights.tasks(PROVINCIAL, first["dag_run_id"])["extract_dossiers"]
    assert (ti["state"], ti["try_number"]) == ("success", 2)
    tries = local_nights.get(f"/dags/{PROVINCIAL}/dagRuns/{first['dag_run_id']}/taskInstances/"
                             "extract_dossiers/tries")["task_instances"]
    assert [t["state"] for t in sorted(tries, key=lambda t: t["try_number"])] == ["failed", "success"]
    # the failed try is in audit as well: one failed S2 run, then the retry's success
    statuses = local_nights.sql("select status from audit.extract_runs where source = 'dossiers' and "
                                "entity = 'dossiers' order by run_id limit 2")
    assert [s[0] for s in statuses] == ["failed", "success"]


def test_the_warehouse_is_started_by_the_three_asset_events(local_nights: Deployment) -> None:
    run = local_nights.finished(WAREHOUSE, 1, "asset_triggered")[0]
    events = local_nights.get(f"/dags/{WAREHOUSE}/dagRuns/{run['dag_run_id']}/upstreamAssetEvents")
    assert {e["uri"] for e in events["asset_events"]} >= RAW_ASSETS
    assert {e["source_dag_id"] for e in events["asset_events"]} == {PROVINCIAL}
    tasks = local_nights.tasks(WAREHOUSE, run["dag_run_id"])
    assert tasks["publish"]["state"] == "success"
    assert any(t.startswith("dbt.") for t in tasks) and all(
        t["state"] == "success" for k, t in tasks.items() if k.startswith("dbt."))
    published = local_nights.sql("select dataset from audit.publications where pipeline_run = %s",
                                 run["dag_run_id"])
    assert published == [("chiso://marts/warehouse",)]


def test_the_national_dag_runs_on_its_own_schedule(local_nights: Deployment) -> None:
    runs = [r for r in local_nights.runs(NATIONAL) if r["run_type"] == "scheduled"]
    assert [_local(r["logical_date"]) for r in runs] == [_local("2026-09-29T03:00:00+07:00"),
                                                         _local("2026-09-30T03:00:00+07:00")]
    published = local_nights.sql("select count(*) from audit.publications where dataset = "
                                 "'chiso://marts/national_index'")
    assert published == [(2,)]


def test_the_reconciliation_waits_for_the_warehouse_and_the_national_index(local_nights: Deployment) -> None:
    """Whichever of the two DAGs publishes first, the reconciliation starts only once both have (its first
    run cannot read a national mart that does not exist yet), and every run has both events."""
    runs = [r for r in local_nights.runs(RECONCILIATION) if r["state"] != "queued"]
    assert runs and {r["run_type"] for r in runs} == {"asset_triggered"}
    for run in runs:
        events = local_nights.get(f"/dags/{RECONCILIATION}/dagRuns/{run['dag_run_id']}/upstreamAssetEvents")
        assert {(e["uri"], e["source_dag_id"]) for e in events["asset_events"]} >= {
            ("chiso://marts/warehouse", WAREHOUSE), ("chiso://marts/national_index", NATIONAL)}
    first = local_nights.runs(RECONCILIATION)[0]
    tasks = local_nights.tasks(RECONCILIATION, first["dag_run_id"])
    assert {tasks[t]["state"] for t in tasks} == {"success"}
    assert local_nights.sql("select count(*) from marts.mart_index_reconciliation")[0][0] > 0


def test_nights_not_published_by_4am_alert_through_the_triggerer(local_nights: Deployment) -> None:
    """The caught-up nights were late by construction (their 04:00 had passed when the scheduler created
    them): the scheduler marks each deadline missed, the triggerer runs the notifier, and each channel gets
    one message per night. The S2 try that failed was retried, so it is no alert."""
    nights = {(dag, r["dag_run_id"]) for dag in (PROVINCIAL, NATIONAL) for r in local_nights.runs(dag)
              if r["run_type"] == "scheduled"}
    rx = local_nights.alerts
    rx.wait_for(webhooks=len(nights), mails=len(nights), timeout=300)
    late = [w for w in rx.webhooks if w["kind"] == "deadline_missed"]
    assert sorted((w["dag_id"], w["run_id"]) for w in late) == sorted(nights)
    assert len([m for m in rx.mails if m["subject"].startswith("[chiso] Trễ hạn")]) == len(nights)
    assert all(w["text"].startswith("[chiso] Trễ hạn") for w in late)
    assert not [w for w in rx.webhooks if w["kind"] in ("task_failed", "gate_failed")]


def test_the_ui_shows_last_nights_runs_to_a_data_engineer(local_nights: Deployment) -> None:
    """Debian's Chromium logs in on Airflow's own login page and reads each DAG's runs page."""
    from playwright.sync_api import sync_playwright
    from superset_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS

    url, user, password = local_nights.login
    last = {dag: [r for r in local_nights.runs(dag) if r["state"] == "success"][-1]["dag_run_id"]
            for dag in (PROVINCIAL, NATIONAL, WAREHOUSE)}
    ARTIFACTS.mkdir(exist_ok=True)
    pages = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1200})
            page.goto(f"{url}/")
            page.wait_for_url("**/auth/login**")  # nothing without a login
            page.fill("input[name=username]", user)
            page.fill("input[name=password]", password)
            page.click("button[type=submit]")
            page.wait_for_url(lambda u: "/auth/login" not in u)
            for dag, run_id in last.items():
                page.goto(f"{url}/dags/{dag}/runs")
                page.get_by_text(run_id).first.wait_for(timeout=60_000)
                pages[dag] = page.inner_text("body")
                page.screenshot(path=str(ARTIFACTS / f"airflow-{dag}-runs.png"))
        finally:
            browser.close()
    for dag, run_id in last.items():
        row = pages[dag][pages[dag].index(run_id):][:300]
        assert "Success" in row, (dag, row)
    assert "Scheduled" in pages[PROVINCIAL]


def test_a_backfill_of_the_two_days_gives_the_raw_rows_of_the_two_nights(local_nights: Deployment) -> None:
    nightly = local_nights.sql(RAW_WINDOW_SQL, *RAW_WINDOW)[0]
    assert nightly[0] > 1000
    local_nights.sql("delete from raw.dossiers where ngay_cap_nhat >= %s and ngay_cap_nhat < %s", *RAW_WINDOW)
    assert local_nights.sql(RAW_WINDOW_SQL, *RAW_WINDOW)[0][0] == 0
    # Airflow's own back-fill, through the scheduler: from and to are logical dates (a night's is 01:00)
    local_nights.chiso("airflow", "cli", "backfill", "create", "--dag-id", PROVINCIAL,
                       "--from-date", "2026-09-29", "--to-date", "2026-09-30T01:00",
                       "--reprocess-behavior", "completed")  # these nights ran already
    runs = local_nights.wait("the back-fill's two runs",
                             lambda: local_nights.finished(PROVINCIAL, 2, "backfill"))
    assert [_local(r["logical_date"]) for r in runs] == [_local(n) for n in NIGHTS]
    assert local_nights.sql(RAW_WINDOW_SQL, *RAW_WINDOW)[0] == nightly
    # the back-filled raw assets republish the warehouse
    local_nights.wait("the warehouse after the back-fill",
                      lambda: local_nights.warehouse_after(runs[-1]["dag_run_id"]))


@pytest.fixture(scope="module")
def celery_nights(local_nights: Deployment) -> Deployment:
    """The same deployment moved to CeleryExecutor: Redis and three workers, extraction on workers 1 and 3
    (queues default,extract), dbt on worker 2 (default,dbt); a night triggered through the API."""
    # the nights before (a back-fill's) published first, so this night's asset events start a run of their own
    local_nights.wait("the warehouse idle", lambda: local_nights.idle(WAREHOUSE))
    local_nights.chiso("airflow", "down")
    local_nights.env.update({"CHISO_AIRFLOW_EXECUTOR": "celery", "CHISO_AIRFLOW_WORKERS": "3"})
    out = local_nights.airflow_up()
    assert "CeleryExecutor" in out
    local_nights.celery_run = local_nights.trigger(PROVINCIAL)
    local_nights.wait("the Celery night", lambda: local_nights.succeeded(PROVINCIAL, local_nights.celery_run))
    local_nights.wait("its warehouse run", lambda: local_nights.warehouse_after(local_nights.celery_run))
    return local_nights


def _worker(ti: dict) -> str:
    return ti["hostname"].split("@")[0]


def test_celery_places_extraction_and_dbt_on_their_workers(celery_nights: Deployment) -> None:
    provincial = celery_nights.tasks(PROVINCIAL, celery_nights.celery_run)
    warehouse_run = celery_nights.warehouse_after(celery_nights.celery_run)
    warehouse = celery_nights.tasks(WAREHOUSE, warehouse_run["dag_run_id"])
    extract = {_worker(t) for k, t in provincial.items() if k.startswith("extract_")}
    dbt = {_worker(t) for k, t in warehouse.items() if k.startswith("dbt.")}
    assert extract <= {"worker-1", "worker-3"} and extract
    assert dbt == {"worker-2"}
    everyone = {_worker(t) for t in [*provincial.values(), *warehouse.values()]}
    assert len(everyone) >= 2  # the night ran on more than one worker
    assert {t["queue"] for k, t in provincial.items() if k.startswith("extract_")} == {"extract"}


def test_a_worker_killed_mid_night_does_not_stop_the_night(celery_nights: Deployment) -> None:
    """SIGKILL the worker running the S2 extract (held 25 s by a slow page): the scheduler fails the
    orphaned try after its heartbeat timeout, the retry runs on the other extraction worker, and the
    warehouse still publishes."""
    _fault(celery_nights.sandboxes["dossiers"], {"delay": 25, "path": "/api/v1/dossiers"})
    run_id = celery_nights.trigger(PROVINCIAL)

    def running_extract():
        ti = celery_nights.tasks(PROVINCIAL, run_id).get("extract_dossiers", {})
        return ti if ti.get("state") == "running" and ti.get("hostname") else None

    victim = _worker(celery_nights.wait("the S2 extract running", running_extract, timeout=600))
    pid = int((celery_nights.home / "run" / f"airflow-{victim}.pid").read_text())
    os.killpg(pid, signal.SIGKILL)

    celery_nights.wait("the night after the kill", lambda: celery_nights.succeeded(PROVINCIAL, run_id))
    ti = celery_nights.tasks(PROVINCIAL, run_id)["extract_dossiers"]
    assert ti["state"] == "success" and ti["try_number"] == 2
    assert _worker(ti) == {"worker-1": "worker-3", "worker-3": "worker-1"}[victim]
    warehouse = celery_nights.wait("the warehouse after the kill",
                                   lambda: celery_nights.warehouse_after(run_id))
    published = celery_nights.sql("select count(*) from audit.publications where pipeline_run = %s",
                                  warehouse["dag_run_id"])
    assert published == [(1,)]
