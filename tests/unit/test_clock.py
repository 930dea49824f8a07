"""The project's clock: CHISO_TODAY fixes "today" for windows, sandboxes and tests; nothing else reads it."""

from __future__ import annotations

import ast
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from ingestion import cli, clock
from ingestion.sandbox import dvcqg, province

ROOT = Path(__file__).resolve().parents[2]
NATIONAL = "/api/v1/reporting/evaluation/service-results"
# calls that read the wall clock's date; only ingestion/clock.py may make them (bench/ stamps its results)
DATE_READS = {("date", "today"), ("datetime", "now"), ("datetime", "today"), ("datetime", "utcnow")}


def test_a_date_stands_at_local_midnight(monkeypatch) -> None:
    monkeypatch.setenv("CHISO_TODAY", "2027-03-09")
    assert clock.now() == datetime(2027, 3, 9, tzinfo=clock.LOCAL_TZ)
    assert clock.today() == date(2027, 3, 9)


def test_a_datetime_is_read_in_the_province(monkeypatch) -> None:
    monkeypatch.setenv("CHISO_TODAY", "2027-03-09T20:30:00Z")  # already the 10th in Vietnam
    assert clock.today() == date(2027, 3, 10)
    assert clock.now().utcoffset() == timedelta(hours=7)


def test_unset_is_the_wall_clock(monkeypatch) -> None:
    monkeypatch.delenv("CHISO_TODAY")
    assert clock.fixed() is None
    assert abs(clock.now() - clock.event_time()) < timedelta(minutes=1)


def test_a_bad_value_is_one_clear_error(monkeypatch) -> None:
    monkeypatch.setenv("CHISO_TODAY", "06/12/2026")
    with pytest.raises(ValueError, match=r"^CHISO_TODAY='06/12/2026' is neither YYYY-MM-DD nor an ISO"):
        clock.today()


def _national(year: int, month: int) -> list[dict]:
    body = {"timeType": "month", "year": year, "month": month, "departmentType": "ADMINISTRATIVE_UNIT"}
    env = dvcqg.answer(NATIONAL, body)
    assert env["code"] == "OK"
    return env["data"]["evaluation"]


def test_the_sandboxes_follow_the_clock_a_year_ahead(monkeypatch) -> None:
    monkeypatch.setenv("CHISO_TODAY", "2027-12-06")
    assert len(_national(2027, 12)) == 34  # the clock's month is published (month to date)
    assert _national(2028, 1) == []  # the month after it is not yet
    assert province.Province(history_days=10).start == date(2027, 11, 26)
    cmd = cli._sandbox_cmd("dossiers", 18702)
    start = cmd[cmd.index("--start") + 1]
    assert start == (date(2027, 12, 6) - timedelta(days=province.DEFAULT_HISTORY_DAYS)).isoformat()


def _date_reads(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        func = getattr(node, "func", None)
        if (isinstance(node, ast.Call) and isinstance(func, ast.Attribute)
                and isinstance(func.value, ast.Name)
                and (func.value.id, func.attr) in DATE_READS):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno} {func.value.id}.{func.attr}()")
    return found


def test_only_the_clock_reads_the_date() -> None:
    files = [p for folder in ("ingestion", "dags", "tests") for p in (ROOT / folder).rglob("*.py")]
    found = [hit for p in files if p != ROOT / "ingestion" / "clock.py" for hit in _date_reads(p)]
    assert len(files) > 40 and found == []
