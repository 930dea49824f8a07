"""The monthly unit reports (`chiso report`, ingestion/report.py) after a whole night over the test window:
every figure in a workbook is read back with openpyxl and compared with the marts it comes from; the
error cases; one file per unit, rewritten in place; and the warehouse DAG's own run of the reports."""

from __future__ import annotations

import time
import zipfile
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from openpyxl import load_workbook
from pipeline_fixtures import LOGICAL_DATE

from ingestion import clock, pg, report
from ingestion.cli import main

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


def _local_now() -> datetime:
    """The project's clock (tests fix it: CHISO_TODAY), as the workbook's naive local time."""
    return clock.now().replace(tzinfo=None)


SESSION_START = time.time()  # wall time, only to tell this session's files from older ones


def _fetch(query: str, params: tuple = ()) -> list[dict]:
    with pg.connect("transform") as conn, conn.cursor() as cur:
        cur.execute(query, params)
        names = [d.name for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _newest_as_of(month: date) -> date:
    return _fetch("select max(as_of_date) as d from marts.mart_unit_index_766 where period_start = %s",
                  (month,))[0]["d"]


@pytest.fixture(scope="module")
def month(warehouse_pipeline) -> date:
    """The newest month with final figures."""
    finals = _fetch("select max(period_start) as m from marts.mart_unit_index_766 where is_final")[0]["m"]
    assert finals is not None
    return finals


def _units(month: date, as_of: date | None = None) -> list[dict]:
    return _fetch("select * from marts.mart_unit_index_766 where period_start = %s and as_of_date = %s"
                  " order by unit_code", (month, as_of or _newest_as_of(month)))


def _pick(month: date, as_of: date, unit_type: str) -> dict:
    """A unit of the type that lost points somewhere and, for communes and agencies, is not ranked first."""
    units = [u for u in _units(month, as_of) if u["unit_type"] == unit_type and u["total_score"] < 100]
    ranked = sorted(units, key=lambda u: (u["rank_in_type"] or 0, u["unit_code"]))
    return ranked[len(ranked) // 2]


def _number(value) -> Decimal | None:
    """A number cell read back (int or float) as the Decimal it was written from."""
    return None if value is None else Decimal(str(value))


def _table(ws, first_header: str) -> list[dict]:
    """The rows of the table whose header row starts with `first_header`, as {header: cell}."""
    rows = list(ws.iter_rows())
    start = next(i for i, row in enumerate(rows) if row[0].value == first_header)
    headers = [c.value for c in rows[start] if c.value is not None]
    out = []
    for row in rows[start + 1:]:
        if row[0].value is None:
            break
        out.append(dict(zip(headers, row, strict=False)))
    return out


def _labelled(ws) -> dict:
    """Column A label -> column B cell, for the summary sheet's header and results."""
    return {row[0].value: row[1] for row in ws.iter_rows(max_col=2) if isinstance(row[0].value, str)}


@pytest.mark.parametrize("unit_type", ["commune", "agency", "province"])
def test_final_report_of_a_unit_matches_the_marts(month, tmp_path, capsys, unit_type):
    as_of = _newest_as_of(month)
    unit = _pick(month, as_of, unit_type)
    before = _local_now()
    assert main(["report", "--month", f"{month:%Y-%m}", "--unit", unit["unit_code"], "--out",
                 str(tmp_path)]) == 0
    path = tmp_path / report.file_name(unit["unit_code"])
    assert str(path) in capsys.readouterr().out
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # that unit only, no temporary file left
    _check_workbook(path, unit, month, as_of, before)


def test_month_to_date_report_matches_the_marts(month, tmp_path):
    """Mid-month the newest as-of day is the month's last figure: the marts cut back to the 20th inside a
    transaction that is rolled back."""
    as_of = month.replace(day=20)
    unit = _pick(month, as_of, "commune")
    assert not unit["is_final"]
    before = _local_now()
    with pg.connect("transform") as conn:
        try:
            for table in (report.INDEX_MART, report.METRICS_MART):
                conn.execute(f"delete from {table} where period_start = %s and as_of_date > %s",
                             (month, as_of))
            [unit_report] = report.load(conn, month, unit["unit_code"])
        finally:
            conn.rollback()
    path = tmp_path / report.file_name(unit["unit_code"])
    report.save_atomically(report.build_workbook(unit_report, clock.now()), path)
    _check_workbook(path, unit, month, as_of, before)


def _check_workbook(path: Path, unit: dict, month: date, as_of: date, before: datetime) -> None:
    """Every figure of the workbook against the marts at `as_of`."""
    unit_type = unit["unit_type"]
    wb = load_workbook(path)
    assert wb.sheetnames == [report.SUMMARY_SHEET, report.LOSSES_SHEET, report.TREND_SHEET]

    # header
    summary = wb[report.SUMMARY_SHEET]
    cells = _labelled(summary)
    assert cells["Đơn vị"].value == unit["unit_name"]
    assert cells["Mã đơn vị"].value == unit["unit_code"]
    assert cells["Tháng"].value == f"{month:%m/%Y}"
    assert cells["Số liệu tính đến ngày"].value.date() == as_of
    assert cells["Số liệu tính đến ngày"].number_format == "dd/mm/yyyy"
    last_day = (as_of + timedelta(days=1)).month != as_of.month
    assert ("chốt tháng" in cells["Tình trạng số liệu"].value) == unit["is_final"] == last_day
    generated = cells["Thời điểm lập báo cáo"].value  # Vietnam's local time, to the minute
    assert before - timedelta(minutes=1) <= generated <= _local_now() + timedelta(minutes=1)
    assert "marts.mart_unit_index_766" in cells["Nguồn số liệu"].value

    # total, rank, previous month
    assert _number(cells["Tổng điểm (tối đa 100)"].value) == unit["total_score"]
    assert cells["Tổng điểm (tối đa 100)"].number_format == report.POINTS
    assert cells["Xếp hạng"].value == unit["rank_in_type"]
    assert cells["Số đơn vị cùng loại"].value == unit["units_in_type"]
    assert _number(cells["Tổng điểm chốt tháng trước"].value) == unit["previous_final_total_score"]
    assert _number(cells["Thay đổi so với tháng trước"].value) == unit["score_change"]
    rank_text = next(row[2].value for row in summary.iter_rows(max_col=3) if row[0].value == "Xếp hạng")
    if unit_type == "province":
        assert unit["rank_in_type"] is None and "Không xếp hạng" in rank_text
    else:
        assert rank_text.startswith(f"Hạng {unit['rank_in_type']}/{unit['units_in_type']} ")

    # the six groups against their maxima
    maxima = {r["group_code"]: r for r in _fetch("select * from seeds.index766_groups")}
    groups = _table(summary, "Nhóm chỉ số")
    assert [g["Mã nhóm"].value for g in groups[:6]] == list(report.GROUPS)
    for g in groups[:6]:
        code = g["Mã nhóm"].value
        score, max_score = unit[code.lower()], maxima[code]["max_score"]
        assert g["Nhóm chỉ số"].value == maxima[code]["group_name_vi"]
        assert _number(g["Điểm đạt"].value) == score, code
        assert _number(g["Điểm tối đa"].value) == max_score
        assert _number(g["Điểm bị mất"].value) == (None if score is None else max_score - score)
        if score is not None:
            assert abs(Decimal(str(g["Tỷ lệ đạt"].value)) - score / max_score) < Decimal("1e-9")
            assert g["Tỷ lệ đạt"].number_format == report.PERCENT
    total = groups[6]
    assert total["Nhóm chỉ số"].value == "Tổng cộng"
    assert _number(total["Điểm đạt"].value) == unit["total_score"]
    assert _number(total["Điểm tối đa"].value) == 100

    # points lost per sub-indicator, biggest first
    metrics = {r["metric_code"]: r for r in _fetch(
        "select * from marts.mart_unit_index_766_metrics where unit_code = %s and period_start = %s"
        " and as_of_date = %s", (unit["unit_code"], month, as_of))}
    names = {r["metric_code"]: r["indicator_full_name_vi"]
             for r in _fetch("select * from seeds.index766_indicator_labels")}
    lines = _table(wb[report.LOSSES_SHEET], "STT")
    assert len(lines) == len(metrics) > 0
    lost = []
    for n, line in enumerate(lines, 1):
        m = metrics[line["Mã chỉ tiêu"].value]
        assert line["STT"].value == n
        assert line["Nhóm"].value == m["group_code"]
        assert line["Chỉ tiêu"].value == names[m["metric_code"]]
        assert _number(line["Tử số"].value) == m["numerator"]
        assert _number(line["Mẫu số"].value) == m["denominator"]
        assert _number(line["Tỷ lệ"].value) == m["ratio"]
        assert _number(line["Điểm đạt"].value) == m["points"]
        assert _number(line["Điểm tối đa"].value) == m["max_points"]
        expected = None if m["points"] is None else m["max_points"] - m["points"]
        assert _number(line["Điểm bị mất"].value) == expected, m["metric_code"]
        assert (line["Ghi chú"].value is not None) == (m["points"] is None)
        lost.append(expected)
    applicable = [x for x in lost if x is not None]
    assert applicable == sorted(applicable, reverse=True) and lost[:len(applicable)] == applicable
    assert lines[0]["Tỷ lệ"].number_format == report.PERCENT

    # the trend: every day of the month up to the as-of day
    days = _fetch("select as_of_date, total_score, rank_in_type from marts.mart_unit_index_766"
                  " where unit_code = %s and period_start = %s and as_of_date <= %s order by as_of_date",
                  (unit["unit_code"], month, as_of))
    trend = _table(wb[report.TREND_SHEET], "Ngày")
    assert [t["Ngày"].value.date() for t in trend] == [d["as_of_date"] for d in days]
    assert days[0]["as_of_date"] == month and days[-1]["as_of_date"] == as_of
    for t, d in zip(trend, days, strict=True):
        assert _number(t["Tổng điểm lũy kế"].value) == d["total_score"]
        assert t["Xếp hạng"].value == d["rank_in_type"]
    assert wb[report.TREND_SHEET].column_dimensions["B"].width >= 15
    with zipfile.ZipFile(path) as xlsx:  # openpyxl does not read charts back: look in the package
        charts = [n for n in xlsx.namelist() if n.startswith("xl/charts/chart")]
        assert len(charts) == 1
        assert b"lineChart" in xlsx.read(charts[0])


def test_unknown_unit_and_month_without_figures_fail_in_one_line(month, tmp_path, capsys):
    assert main(["report", "--month", f"{month:%Y-%m}", "--unit", "H15.9999", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert err == "chiso: error: unknown unit H15.9999: not in marts.mart_unit_index_766"
    assert main(["report", "--month", "2031-01", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("chiso: error: no figures for 2031-01 in marts.mart_unit_index_766 (months with")
    assert "\n" not in err
    with pytest.raises(SystemExit):
        main(["report", "--month", "2026-13"])
    assert "not a month (YYYY-MM): 2026-13" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_every_unit_gets_one_file_rewritten_in_place(month, tmp_path):
    units = [u["unit_code"] for u in _units(month)]
    assert {"commune", "agency", "province"} <= {u["unit_type"] for u in _units(month)}
    first = report.write_reports(month, out_dir=tmp_path, generated_at=datetime(2026, 11, 1, 8, 0))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(report.file_name(u) for u in units)
    assert sorted(first) == sorted(tmp_path / report.file_name(u) for u in units)
    sample = tmp_path / report.file_name(units[0])
    cells = _labelled(load_workbook(sample)[report.SUMMARY_SHEET])
    assert cells["Thời điểm lập báo cáo"].value == datetime(2026, 11, 1, 8, 0)

    again = report.write_reports(month, out_dir=tmp_path, generated_at=datetime(2026, 11, 2, 8, 0))
    assert sorted(again) == sorted(first) and len(list(tmp_path.iterdir())) == len(units)
    cells = _labelled(load_workbook(sample)[report.SUMMARY_SHEET])
    assert cells["Thời điểm lập báo cáo"].value == datetime(2026, 11, 2, 8, 0)


def test_a_failed_write_leaves_the_previous_file(tmp_path):
    path = tmp_path / "H15.1.xlsx"
    path.write_bytes(b"the previous report")

    class Broken:
        def save(self, out):
            out.write(b"half a workbook")
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        report.save_atomically(Broken(), path)
    assert path.read_bytes() == b"the previous report"
    assert list(tmp_path.iterdir()) == [path]


def test_the_warehouse_dag_wrote_every_unit_report_of_the_run_month(warehouse_pipeline):
    """The fixture's warehouse DAG run (logical date LOGICAL_DATE) wrote the run month's reports."""
    newest = _fetch("select max(as_of_date) as d from marts.mart_unit_index_766 where as_of_date <= %s",
                    (LOGICAL_DATE,))[0]["d"]
    run_month = newest.replace(day=1)
    folder = report.default_dir(run_month)
    assert folder == Path(report.settings().home) / "reports" / f"{run_month:%Y-%m}"
    files = sorted(p.name for p in folder.iterdir())
    assert files == sorted(report.file_name(u["unit_code"]) for u in _units(run_month))
    cells = _labelled(load_workbook(folder / files[0])[report.SUMMARY_SHEET])
    assert cells["Số liệu tính đến ngày"].value.date() == _newest_as_of(run_month)
    assert (folder / files[0]).stat().st_mtime >= SESSION_START  # written by this session's run
    assert cells["Thời điểm lập báo cáo"].value == _local_now()
