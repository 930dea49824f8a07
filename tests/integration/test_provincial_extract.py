"""S2-S4 end to end over real HTTP on 127.0.0.1: sandbox servers -> landing -> raw.* in the real PostgreSQL.

Every assertion is on warehouse rows (raw, quarantine, audit, watermarks). The sandboxes run on a fixed
clock, so the data of a window are the same on every read unless a test's fault changes them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import psycopg
import pytest

from ingestion import pg
from ingestion.http import SourceError
from ingestion.sandbox.provincial import serve_centres, serve_dossiers, serve_feedback
from ingestion.sources import centres, dossiers, feedback, provincial

ROOT = Path(__file__).resolve().parents[2]
AS_OF = datetime(2025, 6, 20, 12, 0, tzinfo=provincial.LOCAL_TZ)
SCALE = {"dossiers_per_day": 120, "start": AS_OF.date() - timedelta(days=30), "as_of": AS_OF.isoformat()}
FAST = {"backoff_base": 0.01, "backoff_max": 0.3, "timeout": 2.0}  # retries in tests wait little
W1 = (AS_OF - timedelta(days=4), AS_OF - timedelta(days=2))
W2 = (AS_OF - timedelta(days=2), AS_OF - timedelta(hours=1))
SOURCES = ("dossiers", "feedback", "centres")
TABLES = ("raw.dossiers", "raw.procedures", "raw.feedback", "raw.ratings", "raw.centre_snapshots",
          "raw.centres", "raw.unit_crosswalk", "raw.units")


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, str]]:
    with serve_dossiers(**SCALE) as d, serve_feedback(**SCALE) as f, serve_centres(**SCALE) as c:
        yield {"dossiers": d, "feedback": f, "centres": c}


@pytest.fixture
def s2(servers, warehouse, landing_dir) -> Iterator[str]:
    """The S2 sandbox with no fault or shift left over, and a warehouse with no provincial rows."""
    _clean()
    httpx.post(f"{servers['dossiers']}/_sandbox/reset").raise_for_status()
    yield servers["dossiers"]
    httpx.post(f"{servers['dossiers']}/_sandbox/reset").raise_for_status()


@pytest.fixture
def faults(s2: str) -> Callable[[list[dict]], None]:
    def queue(items: list[dict]) -> None:
        httpx.post(f"{s2}/_sandbox/faults", json=items).raise_for_status()

    return queue


def _clean() -> None:
    with pg.connect("loader") as conn:
        for table in TABLES:
            conn.execute(f"delete from {table}")
        conn.execute("delete from quarantine.records where source = any(%s)", (list(SOURCES),))
        conn.execute("delete from audit.watermarks where source = any(%s)", (list(SOURCES),))
        conn.execute("delete from audit.extract_runs where source = any(%s)", (list(SOURCES),))


def _extract(base_url: str, window: tuple[datetime, datetime] | None = None, **kw) -> dict:
    start, end = window or (None, None)
    options = {"page_size": 100, **FAST, **kw}
    return dossiers.extract(start, end, base_url=base_url, run_label="pytest", **options)


def _server_ids(base_url: str, window: tuple[datetime, datetime]) -> dict[str, str]:
    """MaHoSo -> NgayCapNhat of every dossier the server holds in the window now (a plain fault-free read)."""
    api = dossiers.client(base_url)
    out, page = {}, 0
    try:
        while True:
            data = api.get_json("/api/v1/dossiers", {"updatedFrom": window[0].isoformat(),
                                                     "updatedTo": window[1].isoformat(),
                                                     "page": page, "size": 1000}).data
            out.update({r["MaHoSo"]: r["NgayCapNhat"] for r in data["content"]})
            page += 1
            if page >= data["totalPages"]:
                return out
    finally:
        api.close()


def _rows(sql: str, *params) -> list[tuple]:
    with pg.connect("loader") as conn:
        return conn.execute(sql, params).fetchall()


def _raw_ids(window: tuple[datetime, datetime]) -> list[str]:
    return [r[0] for r in _rows("select ma_ho_so from raw.dossiers where ngay_cap_nhat >= %s"
                                " and ngay_cap_nhat < %s", *window)]


def _quarantined(run_id: int) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for key, reason in _rows("select record_key, reason from quarantine.records where run_id = %s", run_id):
        out.setdefault(reason, []).append(key)
    return out


def _snapshot(window: tuple[datetime, datetime]) -> list[tuple]:
    """The window's raw rows minus what a re-run must change (run id, load time, landing file)."""
    return _rows(
        "select ma_ho_so, ngay_cap_nhat, ma_don_vi, ma_don_vi_nguon, trang_thai, ngay_tiep_nhan,"
        " ngay_hen_tra,"
        " applicant_hash, chu_ho_so, record::text, page_no from raw.dossiers"
        " where ngay_cap_nhat >= %s and ngay_cap_nhat < %s order by 1, 2", *window)


def _audit(run_id: int) -> tuple:
    return _rows("select status, pages, records_received, records_loaded, records_quarantined, bytes,"
                 " checksum, window_start, window_end, error from audit.extract_runs where run_id = %s",
                 run_id)[0]


def _watermark(entity: str = "dossiers") -> datetime | None:
    return provincial.watermark("dossiers", entity)


def _assert_exactly_once(base_url: str, summary: dict, window: tuple[datetime, datetime]) -> None:
    """Every dossier the server holds in the window now is in raw at its newest version, or quarantined;
    each version read is in raw once (an older one read while the dossier changed included)."""
    run = summary["runs"]["dossiers"]
    server = _server_ids(base_url, window)
    rejected = {k for keys in _quarantined(run["run_id"]).values() for k in keys}
    newest = dict(_rows("select ma_ho_so, to_char(max(ngay_cap_nhat) at time zone 'Asia/Ho_Chi_Minh',"
                        " 'YYYYMMDDHH24MISS') from raw.dossiers where ngay_cap_nhat >= %s"
                        " and ngay_cap_nhat < %s group by 1", *window))
    assert set(newest).isdisjoint(rejected)
    assert set(newest) | rejected == set(server)
    assert all(newest[k] == v for k, v in server.items() if k in newest)
    audit = _audit(run["run_id"])
    versions = _rows("select count(*) from raw.dossiers where run_id = %s", run["run_id"])[0][0]
    assert audit[0] == "success" and audit[2] == audit[3] + audit[4]
    assert audit[3] == versions + run["already_in_raw"] >= len(newest)


def test_dossiers_window(s2) -> None:
    summary = _extract(s2, W1)
    _assert_exactly_once(s2, summary, W1)
    runs = summary["runs"]
    assert runs["units"]["loaded"] == 119 and runs["procedures"]["loaded"] > 1000
    reasons = _quarantined(runs["dossiers"]["run_id"])
    assert set(reasons) <= {"due date before the received date", "status out of range (TrangThaiHoSo 1-10)",
                            "unknown unit (not in /units nor the pre-merger crosswalk)"}
    assert _watermark() == W1[1]  # the first window of an entity sets it
    checks = _rows(
        "select count(*) filter (where record ?| array['ChuHoSo', 'MaDoiTuong', 'SoDienThoai', 'Email']),"
        " count(*) filter (where ma_doi_tuong is not null and applicant_hash is distinct from"
        "  encode(sha256(convert_to(%s || ma_doi_tuong, 'UTF8')), 'hex')),"
        " count(*) filter (where record::text <> normalize(record::text, nfc)),"
        " count(*) filter (where ma_don_vi not in (select ma_don_vi from raw.units)),"
        " count(*) filter (where ma_don_vi_nguon <> ma_don_vi),"
        " count(*) filter (where record->>'NgayTra' = '' and ngay_tra is not null)"
        " from raw.dossiers", provincial_salt())[0]
    assert checks[:4] == (0, 0, 0, 0) and checks[5] == 0
    assert checks[4] > 0  # pre-merger codes and names were mapped to today's units


def provincial_salt() -> str:
    from ingestion.config import credentials

    return credentials()["pii_salt"]


def test_personal_data_is_loader_only(s2) -> None:
    _extract(s2, W1)
    with pg.connect("transform") as conn:
        assert conn.execute("select count(*), count(applicant_hash), count(record) from raw.dossiers"
                            " where ma_ho_so is not null").fetchone()[0] > 0
        for column in ("chu_ho_so", "ma_doi_tuong", "so_dien_thoai", "email"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"):
                conn.execute(f"select {column} from raw.dossiers limit 1")
            conn.rollback()
        assert conn.execute("select count(*) from quarantine.records where source = 'dossiers'"
                            " and record ?| array['ChuHoSo', 'MaDoiTuong', 'SoDienThoai', 'Email']"
                            ).fetchone()[0] == 0


def test_rerun_and_backfill_are_identical_and_keep_the_watermark(s2) -> None:
    first = _extract(s2, W1)
    before, audit_before = _snapshot(W1), _audit(first["runs"]["dossiers"]["run_id"])
    rejects = _rows("select count(*), sum(times_seen) from quarantine.records where source = 'dossiers'")[0]
    assert rejects[0] > 0 and rejects[0] == rejects[1]
    incremental = _extract(s2, W2)
    assert _watermark() == W2[1]
    again = _extract(s2, W1)  # a back-fill of the past window: the versions are in raw already
    assert _snapshot(W1) == before
    assert again["runs"]["dossiers"]["already_in_raw"] == again["runs"]["dossiers"]["loaded"] > 0
    assert _audit(again["runs"]["dossiers"]["run_id"]) == audit_before
    # each reject is kept once, seen by both runs of W1 (and the overlap of W2)
    after = _rows("select count(*) from quarantine.records where source = 'dossiers'"
                  " and last_run_id = %s and times_seen >= 2", again["runs"]["dossiers"]["run_id"])[0][0]
    in_w1 = _rows("select count(*) from quarantine.records where source = 'dossiers'"
                  " and run_id = %s", first["runs"]["dossiers"]["run_id"])[0][0]
    assert after == in_w1 == _audit(again["runs"]["dossiers"]["run_id"])[4]
    assert _watermark() == W2[1]  # never moved back
    assert incremental["runs"]["dossiers"]["loaded"] > 0
    # no start: from the watermark less the overlap to now
    third = dossiers.extract(None, AS_OF, base_url=s2, run_label="pytest", page_size=100, **FAST)
    assert third["runs"]["dossiers"]["window_start"] == (W2[1] - provincial.OVERLAP).isoformat()
    assert _watermark() == AS_OF


def test_faults_every_record_once(s2, faults) -> None:
    faults([
        {"expire_tokens": True, "skip": 1},  # the token dies in the middle of the run
        {"status": 429, "retry_after": 0.2, "path": "/api/v1/dossiers", "skip": 1},
        {"status": 503, "path": "/api/v1/dossiers"}, {"status": 503, "path": "/api/v1/dossiers"},
        {"status": 503, "path": "/api/v1/dossiers"},
        {"delay": 3, "path": "/api/v1/dossiers"},  # longer than the client's timeout
        {"truncate": True, "path": "/api/v1/dossiers"},
        {"shift": True, "path": "/api/v1/dossiers", "skip": 2},  # a record moves, another arrives
        {"duplicate_conflict": True, "path": "/api/v1/dossiers", "skip": 3},
        {"envelope_error": True, "path": "/api/v1/dossiers", "skip": 4},  # retried once: passes
    ])
    # the 429, 503s, timeout and truncation may all hit one request
    summary = _extract(s2, W1, max_tries=8, page_size=40)
    stats = httpx.get(f"{s2}/_sandbox/stats").json()
    assert stats["queued"] == 0 and stats["moved"] and stats["arrived"] and stats["tokens"] >= 2
    _assert_exactly_once(s2, summary, W1)
    raw = set(_raw_ids(W1))
    assert set(stats["moved"]) | set(stats["arrived"]) <= raw
    # raw keeps the versions read: the moved record's older one (read first) and the page's stale copy
    older = _rows("select count(*) from raw.dossiers where ngay_cap_nhat >= %s and ngay_cap_nhat < %s"
                  " and (ma_ho_so, ngay_cap_nhat) not in (select ma_ho_so, max(ngay_cap_nhat)"
                  " from raw.dossiers group by 1)", *W1)[0][0]
    assert older >= 2
    assert _watermark() == W1[1]


def test_failure_is_loud_and_leaves_everything(s2, faults) -> None:
    _extract(s2, W1)
    before, mark = _snapshot(W1), _watermark()
    # the second dossier page fails for good (skips count on the first queued fault only)
    burst = {"status": 503, "path": "/api/v1/dossiers"}
    faults([{**burst, "skip": 1}] + [burst] * 9)
    with pytest.raises(SourceError, match="HTTP 503"):
        _extract(s2, (W1[0], W2[1]), max_tries=3)
    assert _snapshot(W1) == before and _watermark() == mark
    status, error = _rows("select status, error from audit.extract_runs where source = 'dossiers'"
                          " and entity = 'dossiers' order by run_id desc limit 1")[0]
    assert status == "failed" and "503" in error
    assert _rows("select count(*) from raw.dossiers where ngay_cap_nhat >= %s", W1[1])[0][0] == 0


def test_feedback_and_centres(servers, s2) -> None:
    _extract(s2, W1)  # units and their crosswalk first
    fb = feedback.extract(*W1, base_url=servers["feedback"], run_label="pytest", page_size=200, **FAST)
    ce = centres.extract(*W1, base_url=servers["centres"], run_label="pytest", page_size=500, **FAST)
    for summary in (fb, ce):
        for run in summary["runs"].values():
            audit = _audit(run["run_id"])
            assert audit[0] == "success" and audit[2] == audit[3] + audit[4] and audit[3] > 0
    assert provincial.watermark("feedback", "ratings") == W1[1]
    assert provincial.watermark("centres", "snapshots") == W1[1]
    counts = _rows("select count(*), count(distinct (ma_trung_tam, thoi_diem)), min(thoi_diem) >= %s,"
                   " max(thoi_diem) < %s from raw.centre_snapshots", *W1)[0]
    assert counts[0] == counts[1] and counts[2] and counts[3]
    again = centres.extract(*W1, base_url=servers["centres"], run_label="pytest", page_size=500, **FAST)
    assert again["runs"]["snapshots"]["loaded"] == ce["runs"]["snapshots"]["loaded"]


def test_a_month_from_a_server_that_lists_every_version(warehouse, landing_dir) -> None:
    """The contract's listing: a dossier changed twice in the window is listed twice. `chiso extract` of a
    month loads every version, and re-reading it adds nothing and removes nothing."""
    _clean()
    month = (provincial.as_moment(AS_OF.date() - timedelta(days=30)),
             provincial.as_moment(AS_OF.date(), end=True))  # the whole local days the CLI reads
    with serve_dossiers(**SCALE, listing="versions") as url:
        api = dossiers.client(url)
        try:
            total = api.get_json("/api/v1/dossiers", {"updatedFrom": month[0].isoformat(),
                                                      "updatedTo": month[1].isoformat(),
                                                      "page": 0, "size": 1}).data["totalElements"]
        finally:
            api.close()
        cli = _chiso_extract(url, month)
        assert cli.returncode == 0, cli.stderr
        run = _rows("select records_received, records_loaded, records_quarantined from audit.extract_runs"
                    " where entity = 'dossiers' and status = 'success' order by run_id desc limit 1")[0]
        run = dict(zip(("received", "loaded", "quarantined"), run, strict=True))
        versions, ids = _rows("select count(*), count(distinct ma_ho_so) from raw.dossiers")[0]
        assert run["received"] == total and run["loaded"] + run["quarantined"] == total
        assert versions == run["loaded"] and versions > 2 * ids  # several versions of most dossiers
        again = _extract(url, month, page_size=1000)["runs"]["dossiers"]
    assert again["already_in_raw"] == again["loaded"] == run["loaded"]
    assert _rows("select count(*) from raw.dossiers")[0][0] == versions


def test_raw_keeps_a_version_the_source_no_longer_lists(s2) -> None:
    first = _extract(s2, W1)["runs"]["dossiers"]
    before = set(_rows("select ma_ho_so, ngay_cap_nhat from raw.dossiers"))
    clock = httpx.post(f"{s2}/_sandbox/clock", json={"advance": 5 * 86400})
    clock.raise_for_status()
    try:
        now_listed = _server_ids(s2, W1)
        again = _extract(s2, W1)["runs"]["dossiers"]
    finally:
        httpx.post(f"{s2}/_sandbox/clock", json={"as_of": AS_OF.isoformat()}).raise_for_status()
    assert len(now_listed) < first["received"]  # dossiers that changed since moved out of the window
    after = set(_rows("select ma_ho_so, ngay_cap_nhat from raw.dossiers"))
    assert before <= after and again["loaded"] == again["already_in_raw"] == len(now_listed) - again[
        "quarantined"]


def test_landed_pages_are_private(s2, landing_dir) -> None:
    run = _extract(s2, W1)["runs"]["dossiers"]
    folder = landing_dir / "dossiers" / "dossiers" / str(run["run_id"])
    pages = list(folder.glob("page-*.json.gz"))
    assert pages and {p.stat().st_mode & 0o777 for p in pages} == {0o600}
    for path in (folder, folder.parent, folder.parent.parent, landing_dir):
        assert path.stat().st_mode & 0o777 == 0o700, path


def _chiso_extract(base_url: str, window: tuple[datetime, datetime]) -> subprocess.CompletedProcess:
    """`chiso extract dossiers --start --end` against `base_url` (whole local days)."""
    env = {**os.environ, "CHISO_DOSSIERS_BASE_URL": base_url}
    return subprocess.run([sys.executable, "-m", "ingestion.cli", "extract", "dossiers", "--start",
                           window[0].date().isoformat(), "--end", window[1].date().isoformat()],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def _extract_in_a_process(s2: str, faults) -> tuple[subprocess.Popen, int]:
    """`chiso extract dossiers` over W1 in its own process, held in a slow page once its load has staged
    some pages; returns the process and its run id."""
    faults([{"delay": 20, "path": "/api/v1/dossiers", "skip": 3}])
    env = {**os.environ, "CHISO_DOSSIERS_BASE_URL": s2, "CHISO_PROVINCIAL_PAGE_SIZE": "100"}
    proc = subprocess.Popen([sys.executable, "-m", "ingestion.cli", "extract", "dossiers",
                             "--start", W1[0].date().isoformat(), "--end", W1[1].date().isoformat()],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        rows = _rows("select a.run_id from audit.extract_runs a join pg_tables t on t.schemaname = 'loading'"
                     " and t.tablename = 'typed_' || a.run_id where a.entity = 'dossiers'"
                     " and a.status = 'running'")
        if rows and _rows(f"select count(*) from loading.typed_{rows[0][0]}")[0][0] >= 200:
            return proc, rows[0][0]
        time.sleep(0.2)
    proc.kill()
    raise AssertionError(f"the extract never got going: {proc.communicate()}")


def _assert_reaped(run_id: int) -> None:
    status, error = _rows("select status, error from audit.extract_runs where run_id = %s", run_id)[0]
    assert status == "failed" and "died" in error
    assert _rows("select count(*) from pg_tables where schemaname = 'loading'")[0][0] == 0


def test_a_killed_extract_is_reaped_by_the_next_load(s2, faults) -> None:
    proc, run_id = _extract_in_a_process(s2, faults)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    time.sleep(0.5)  # the server notices the closed connection, and the run's lock is free
    assert _rows("select status from audit.extract_runs where run_id = %s", run_id)[0][0] == "running"
    httpx.post(f"{s2}/_sandbox/reset").raise_for_status()
    _extract(s2, W1)
    _assert_reaped(run_id)


def test_a_database_restart_mid_load_is_one_line_and_reaped_by_status(s2, faults) -> None:
    proc, run_id = _extract_in_a_process(s2, faults)
    pg.stop_private()
    pg.start_private()
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 1 and "Traceback" not in stderr and "chiso: error:" in stderr, stderr
    status = subprocess.run([sys.executable, "-m", "ingestion.cli", "status"], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert f"died, now marked failed: run {run_id}" in status.stdout, status.stdout
    _assert_reaped(run_id)


def _progress_lines(text: str) -> list[tuple[int, int]]:
    """(page, rows) of each progress line `dossiers/dossiers run N: page P, R of T rows, ...`."""
    import re

    line = r"dossiers/dossiers run \d+: page (\d+), (\d+) of \d+ rows"
    return [(int(p), int(r)) for p, r in re.findall(line, text)]


def test_an_extract_on_a_pipe_logs_one_line_per_page_and_ends_in_a_summary(s2) -> None:
    env = {**os.environ, "CHISO_DOSSIERS_BASE_URL": s2, "CHISO_PROVINCIAL_PAGE_SIZE": "100"}
    done = subprocess.run([sys.executable, "-m", "ingestion.cli", "extract", "dossiers", "--start",
                           W1[0].date().isoformat(), "--end", W1[1].date().isoformat()],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    lines = _progress_lines(done.stderr)
    pages, received = _rows("select pages, records_received from audit.extract_runs where entity = 'dossiers'"
                            " order by run_id desc limit 1")[0]
    # every page staged is one line, rows counted up as they come (the completeness check's re-read aside)
    assert len(lines) == pages > 3 and [p for p, _ in lines] == list(range(1, pages + 1))
    assert [r for _, r in lines] == sorted(r for _, r in lines) and lines[-1][1] >= received
    assert "rows/s" in done.stderr and "left" in done.stderr
    summary = done.stdout.splitlines()
    assert summary[0].startswith("chiso: extracted dossiers") and "{" not in done.stdout
    assert any(line.split()[0] == "dossiers" and f"{received} received" in line for line in summary[1:])


def test_an_extract_on_a_terminal_draws_a_bar_and_json_is_for_scripts(s2) -> None:
    import json
    import pty

    env = {**os.environ, "CHISO_DOSSIERS_BASE_URL": s2, "CHISO_PROVINCIAL_PAGE_SIZE": "100", "COLUMNS": "160"}
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "ingestion.cli", "extract", "dossiers", "--json",
                             "--start", W1[0].date().isoformat(), "--end", W1[1].date().isoformat()],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=follower, text=True)
    os.close(follower)
    seen = b""
    while True:  # read the terminal until the process closes it
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the other end is closed
            break
        if not chunk:
            break
        seen += chunk
    out, _ = proc.communicate(timeout=600)
    os.close(leader)
    assert proc.returncode == 0, seen[-2000:]
    screen = seen.decode(errors="replace")
    assert "dossiers/dossiers run" in screen and "rows/s" in screen and "━" in screen  # rich's bar
    assert not _progress_lines(screen)  # a bar, not the log lines of a pipe
    summary = json.loads(out)
    assert summary["source"] == "dossiers" and summary["runs"]["dossiers"]["received"] > 0
