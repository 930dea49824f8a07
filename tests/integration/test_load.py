"""The generic audited loader: bad records go to quarantine with a reason, counts reconcile, raw is replaced
only inside the window."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import orjson
import pytest

from ingestion import pg
from ingestion.load import SourcePage, run_load
from ingestion.sources.dvcqg import SERVICE_RESULTS, _window

SCOPE = "test-load-scope"  # a scope no real province uses
MONTH = date(2025, 7, 1)


def _ctx(month: date = MONTH) -> dict:
    return {"period_type": "month", "period_start": month.isoformat(), "scope": SCOPE}


def _row(dept: str, total: object = 50.5) -> dict:
    return {"departmentId": dept, "departmentCode": f"X.{dept}", "departmentName": "Xa\u0303 Thu\u031b\u0309",
            "totalScore": total, "ratio": total, "scoreDelta": None,
            "groupScores": {"CKMB": 10, "TDGQ": 20, "CLGQ": 5.5, "TTTT": 5, "MDHL": 5, "MDSH": 5}}


def _load(items: list[tuple[dict, object]], fail: bool = False):
    def pages():
        yield SourcePage(orjson.dumps([r for _, r in items]), items, {"path": "test"})
        if fail:
            raise RuntimeError("source went away\nsecond line")

    return run_load(source="test", entity="load", target=SERVICE_RESULTS, pages=pages(),
                    window=_window([MONTH], scope=SCOPE))


def _raw() -> list[tuple]:
    with pg.connect("loader") as conn:
        return conn.execute("select department_id, department_name, total_score"
                            " from raw.dvcqg_service_results where scope = %s order by 1",
                            (SCOPE,)).fetchall()


@pytest.fixture(autouse=True)
def _clean(warehouse) -> Iterator[None]:
    """Leave nothing behind for the data-quality suites to trip over."""
    yield
    with pg.connect("loader") as conn:
        conn.execute("delete from raw.dvcqg_service_results where scope = %s", (SCOPE,))
        conn.execute("delete from quarantine.records where source = 'test'")
        conn.execute("delete from audit.extract_runs where source = 'test'")


def test_quarantine_and_reconciliation(warehouse, landing_dir) -> None:
    items = [(_ctx(), _row("a")), (_ctx(), _row("b", "not a number")), (_ctx(), _row("", 40)),
             (_ctx(), "not an object"), (_ctx(date(2025, 8, 1)), _row("c")), (_ctx(), _row("d", 1e6)),
             (_ctx(), _row("a", 60.25))]  # a again: the later one wins, the first is quarantined
    result = _load(items)
    assert (result.records_received, result.records_loaded, result.records_quarantined) == (7, 1, 6)
    assert _raw() == [("a", "Xã Thử", pytest.approx(60.25))]  # stored as NFC
    with pg.connect("loader") as conn:
        reasons = [r[0] for r in conn.execute(
            "select reason from quarantine.records where run_id = %s order by quarantine_id",
            (result.run_id,))]
        audit = conn.execute("select status, records_received, records_loaded, records_quarantined"
                             " from audit.extract_runs where run_id = %s", (result.run_id,)).fetchone()
    assert sorted(reasons) == sorted([
        "a score is not a two-decimal number", "departmentId missing", "record is not a JSON object",
        "outside the load window", "a score is not a two-decimal number",
        "duplicate key within the load (the later page wins)"])
    assert audit == ("success", 7, 1, 6)


def test_failure_leaves_raw_and_records_one_line(warehouse, landing_dir) -> None:
    _load([(_ctx(), _row("a"))])
    before = _raw()
    with pytest.raises(RuntimeError):
        _load([(_ctx(), _row("z"))], fail=True)
    assert _raw() == before
    with pg.connect("loader") as conn:
        status, error = conn.execute("select status, error from audit.extract_runs where source = 'test'"
                                     " order by run_id desc limit 1").fetchone()
    assert status == "failed" and error == "source went away second line"
