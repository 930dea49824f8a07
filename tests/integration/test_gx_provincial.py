"""The raw gates of S2-S4 on rows the real clients extracted from the sandboxes (a database of their own):
they pass, and one corrupted row (or an emptied table) fails the suite that guards it."""

from __future__ import annotations

import uuid

import pytest
from provincial_fixtures import provincial_db, provincial_warehouse  # noqa: F401

from ingestion import pg, quality

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("provincial_warehouse")]

SOURCES = ("dossiers", "feedback", "centres")


@pytest.fixture()
def pipeline_run():
    return f"gx-provincial-{uuid.uuid4().hex[:8]}"


def test_provincial_raw_gate_passes_on_extracted_data(pipeline_run):
    result = quality.run_gate("raw", pipeline_run, build_docs=False, sources=SOURCES)
    assert result.success
    assert [o.suite for o in result.suites] == [
        "raw.units", "raw.procedures", "raw.dossiers", "raw.feedback", "raw.ratings", "raw.centres",
        "raw.centre_snapshots"]
    assert all(o.evaluated >= 5 and o.failed == 0 for o in result.suites)
    with pg.connect("loader") as conn:
        audited = conn.execute("select count(*) from audit.validation_runs"
                               " where pipeline_run = %s and success", (pipeline_run,)).fetchone()[0]
    assert audited == 7


ONE = "where ctid = (select min(ctid) from {t})"


@pytest.mark.parametrize("table, corruption, suite, expectation", [
    ("dossiers", "update {t} set ngay_hen_tra = ngay_tiep_nhan - interval '1 day'"
     " where ctid = (select min(ctid) from {t} where ngay_tiep_nhan is not null)",
     "raw.dossiers", "ngay_hen_tra not before ngay_tiep_nhan"),
    ("dossiers", "update {t} set trang_thai = 11 " + ONE, "raw.dossiers",
     "expect_column_values_to_be_between(trang_thai)"),
    ("dossiers", "update {t} set kenh_thuc_hien = 4 " + ONE, "raw.dossiers",
     "expect_column_values_to_be_in_set(kenh_thuc_hien)"),
    ("dossiers", "update {t} set ma_don_vi = 'H15.999' " + ONE, "raw.dossiers", "ma_don_vi in raw.units"),
    ("dossiers", "update {t} set record = record || '{{\"SoDienThoai\": \"0900000000\"}}' " + ONE,
     "raw.dossiers", "record holds no personal field"),
    ("ratings", "update {t} set muc_do = 4 " + ONE, "raw.ratings",
     "expect_column_values_to_be_in_set(muc_do)"),
    ("feedback", "delete from {t}", "raw.feedback", "expect_table_row_count_to_be_between"),
    ("centre_snapshots", "update {t} set camera_truc_tuyen = 999 " + ONE, "raw.centre_snapshots",
     "camera_truc_tuyen within 0..so_camera"),
    ("centre_snapshots", "update {t} set thoi_diem = thoi_diem + interval '1 year' " + ONE,
     "raw.centre_snapshots", "thoi_diem within its extract window"),
])
def test_provincial_raw_gate_fails_on_a_corrupt_row(pipeline_run, table, corruption, suite, expectation):
    backup = f"raw.gx_backup_{uuid.uuid4().hex[:8]}"
    with pg.connect("loader") as conn:
        conn.execute(f"create table {backup} as select * from raw.{table}")
        conn.execute(corruption.format(t=f"raw.{table}"))
    try:
        with pytest.raises(quality.GateFailed) as failed:
            quality.run_gate("raw", pipeline_run, build_docs=False, sources=SOURCES)
        message = str(failed.value)
        assert suite in message and expectation in message
        failed_suites = [o.suite for o in failed.value.result.suites if not o.success]
        assert failed_suites == [suite]  # the other suites still pass
        outcome = next(o for o in failed.value.result.suites if o.suite == suite)
        assert any(f["expectation"].startswith(expectation) for f in outcome.failures)
    finally:
        with pg.connect("loader") as conn:
            conn.execute(f"delete from raw.{table}")
            conn.execute(f"insert into raw.{table} select * from {backup}")
            conn.execute(f"drop table {backup}")
