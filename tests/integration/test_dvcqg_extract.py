"""S1 end to end: sandbox over HTTP -> landing -> raw.dvcqg_* in the real PostgreSQL, audited."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from pipeline_fixtures import PROVINCE_AS_OF

from ingestion import landing, pg
from ingestion.http import SourceError
from ingestion.sources import dvcqg

DAKLAK = "019d2be3-6a85-74ec-a33c-a7c04919ba00"


def _window() -> tuple[date, date]:
    """The two whole months before the sandbox's clock (it publishes nothing after it), whatever the date."""
    clock_day = datetime.fromisoformat(PROVINCE_AS_OF).date()
    first = dvcqg.months(date(clock_day.year - 1, clock_day.month, 1), clock_day)[-3]
    return first, dvcqg._month_end(dvcqg.months(first, clock_day)[1])


def _snapshot(start: date, end: date) -> list[tuple]:
    """Everything in the window's raw rows except what a re-run must change (run id, time, landing file)."""
    with pg.connect("loader") as conn:
        a = conn.execute(
            "select period_type, period_start, scope, department_id, department_code, department_name,"
            " total_score, ratio, score_delta, ckmb, tdgq, clgq, tttt, mdhl, mdsh, record::text, page_no"
            " from raw.dvcqg_service_results where period_start between %s and %s order by 1, 2, 3, 4",
            (start, end)).fetchall()
        b = conn.execute(
            "select endpoint, group_code, period_type, period_start, root_department_id, department_id,"
            " department_code, department_name, is_parent, score, max_score, record::text, page_no"
            " from raw.dvcqg_group_details where period_start between %s and %s and root_department_id = %s"
            " order by 1, 3, 4, 5, 6", (start, end, DAKLAK)).fetchall()
    return a + b


def _audit(run_ids: list[int]) -> list[tuple]:
    with pg.connect("loader") as conn:
        return conn.execute(
            "select run_id, status, pages, records_received, records_loaded, records_quarantined, bytes,"
            " checksum, landing_path, error from audit.extract_runs where run_id = any(%s) order by run_id",
            (run_ids,)).fetchall()


@pytest.fixture
def extracted(warehouse, landing_dir, dvcqg_sandbox) -> tuple[date, date, dict]:
    start, end = _window()
    return start, end, dvcqg.extract(start, end, base_url=dvcqg_sandbox, run_label="pytest")


def test_extract_two_months(extracted, landing_dir) -> None:
    start, end, summary = extracted
    months = dvcqg.months(start, end)
    assert summary["root_department_id"] == DAKLAK and summary["months"] == 2
    with pg.connect("loader") as conn:
        national = conn.execute(
            "select period_start, count(*), count(*) filter (where department_code = 'H15')"
            " from raw.dvcqg_service_results where scope = 'national' and period_start between %s and %s"
            " group by 1 order by 1", (start, end)).fetchall()
        units = conn.execute(
            "select period_start, count(*), count(distinct department_code),"
            # a group that does not apply to a unit is null (the contract) and adds nothing to its total
            " bool_and(coalesce(ckmb, 0) + coalesce(tdgq, 0) + coalesce(clgq, 0) + coalesce(tttt, 0)"
            "          + coalesce(mdhl, 0) + coalesce(mdsh, 0) = total_score)"
            " from raw.dvcqg_service_results where scope = %s and period_start between %s and %s"
            " group by 1 order by 1", (DAKLAK, start, end)).fetchall()
        groups = conn.execute(
            "select endpoint, group_code, period_start, count(*), count(*) filter (where is_parent),"
            " bool_and(score <= max_score)"
            " from raw.dvcqg_group_details where root_department_id = %s and period_start between %s and %s"
            " group by 1, 2, 3 order by 1, 3", (DAKLAK, start, end)).fetchall()
    assert national == [(m, 34, 1) for m in months]
    assert units == [(m, 118, 118, True) for m in months]
    assert len(groups) == 6 * 2
    assert {(g[0], g[1]) for g in groups} == set(dvcqg.GROUP_ENDPOINTS.items())
    assert all(g[3] == 119 and g[4] == 1 and g[5] for g in groups)

    runs = {entity: r["run_id"] for entity, r in summary["runs"].items()}
    assert len(runs) == 8
    for _run_id, status, pages, received, loaded, quarantined, nbytes, checksum, path, error in _audit(
            list(runs.values())):
        assert status == "success" and error is None
        assert received == loaded + quarantined and quarantined == 0 and loaded > 0
        assert nbytes > 0 and len(checksum) == 64
        landed = sorted((landing_dir / path).glob("page-*.json.gz"))
        assert len(landed) == pages
        assert sum(len(landing.read_page(p)) for p in landed) == nbytes
    assert summary["runs"]["service-results-national"]["pages"] == 2
    assert summary["runs"]["service-results-units"]["pages"] == 2 * 3  # 118 rows at 50 a page


def test_rerun_leaves_raw_identical(extracted, dvcqg_sandbox) -> None:
    start, end, first = extracted
    before = _snapshot(start, end)
    second = dvcqg.extract(start, end, base_url=dvcqg_sandbox)
    assert _snapshot(start, end) == before
    assert second["records"] == first["records"]
    run_ids = [r["run_id"] for s in (first, second) for r in s["runs"].values()]
    checks = {r[0]: r[7] for r in _audit(run_ids)}
    for entity in first["runs"]:  # the same answers, so the same landed checksums
        assert checks[first["runs"][entity]["run_id"]] == checks[second["runs"][entity]["run_id"]]


def test_envelope_error_mid_run_fails_the_run_and_keeps_raw(extracted, dvcqg_sandbox, dvcqg_faults) -> None:
    start, end, _ = extracted
    before = _snapshot(start, end)
    # The second page of dossier-digitized answers HTTP 201 with an error envelope.
    dvcqg_faults([{"envelope_error": True, "path": "dossier-digitized", "skip": 1}])
    with pytest.raises(SourceError, match="error envelope"):
        dvcqg.extract(start, end, base_url=dvcqg_sandbox)
    assert _snapshot(start, end) == before
    with pg.connect("loader") as conn:
        status, error, pages, received, loaded = conn.execute(
            "select status, error, pages, records_received, records_loaded from audit.extract_runs"
            " where source = 'dvcqg' and entity = 'dossier-digitized'"
            " order by run_id desc limit 1").fetchone()
    assert status == "failed" and "error envelope" in error and "\n" not in error
    assert pages == 1 and received == loaded == 0
