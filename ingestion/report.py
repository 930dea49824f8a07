"""The monthly report per unit, in place of the paper report: one XLSX workbook per unit and month, in
Vietnamese, read from the service-index marts (mart_unit_index_766, mart_unit_index_766_metrics).

A month's figures are those of its newest as-of day in the marts: the final figures (the month's last day)
for a past month, month to date for the current one. A workbook has three sheets: the summary (header,
total, rank among communes or agencies, the six groups against their maxima), the points lost per
sub-indicator (biggest first), and the month's trend (the month-to-date total per day, with a line chart).
Files are `<unit code>.xlsx` under `<home>/reports/YYYY-MM/` unless told otherwise, each written to a
temporary file and renamed over the old one.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

from ingestion import clock
from ingestion.clock import LOCAL_TZ
from ingestion.config import settings

INDEX_MART = "marts.mart_unit_index_766"
METRICS_MART = "marts.mart_unit_index_766_metrics"
# The six groups in the order of the index (and of the mart's columns); names and maxima come from seeds.
GROUPS = ("CKMB", "TDGQ", "CLGQ", "TTTT", "MDSH", "MDHL")
SUMMARY_SHEET, LOSSES_SHEET, TREND_SHEET = "Tổng hợp", "Điểm bị mất", "Xu hướng"
UNIT_TYPES_VI = {"commune": "xã, phường", "agency": "sở, ngành", "province": "cấp tỉnh"}
SOURCES_VI = {"computed": "Tính từ dữ liệu của tỉnh", "official": "Số liệu DVCQG"}

# Number formats. Excel draws the separators of the reader's regional settings: vi-VN shows 55,85 and 1.234.
POINTS, COUNT, PERCENT, DAY = "#,##0.00", "#,##0", "0.0%", "dd/mm/yyyy"
CHANGE = "+#,##0.00;-#,##0.00;0.00"


class ReportError(ValueError):
    """A report cannot be made (unknown unit, month without figures); str() is one line."""


@dataclass(frozen=True)
class Group:
    code: str
    name: str
    score: Decimal | None
    max_score: Decimal


@dataclass(frozen=True)
class Metric:
    group_code: str
    metric_code: str
    name: str
    numerator: Decimal | None
    denominator: Decimal | None
    ratio: Decimal | None
    points: Decimal | None
    max_points: Decimal
    source: str

    @property
    def points_lost(self) -> Decimal | None:
        """What the sub-indicator lost; None when it does not apply (no case in the period)."""
        return None if self.points is None else self.max_points - self.points


@dataclass(frozen=True)
class UnitReport:
    unit_code: str
    unit_name: str
    unit_type: str
    month: date
    as_of: date
    is_final: bool
    total_score: Decimal
    rank_in_type: int | None
    units_in_type: int
    previous_total: Decimal | None
    score_change: Decimal | None
    groups: tuple[Group, ...]
    metrics: tuple[Metric, ...]  # biggest loss first, sub-indicators that do not apply last
    trend: tuple[tuple[date, Decimal, int | None], ...]  # (as-of day, month-to-date total, rank)


def parse_month(text: str) -> date:
    match = re.fullmatch(r"(\d{4})-(\d{2})", text.strip())
    if not match or not 1 <= int(match[2]) <= 12:
        raise ValueError(f"not a month (YYYY-MM): {text}")
    return date(int(match[1]), int(match[2]), 1)


def month_label(month: date) -> str:
    return f"{month.month:02d}/{month.year}"


def default_dir(month: date) -> Path:
    return settings().home / "reports" / f"{month:%Y-%m}"


def file_name(unit_code: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", unit_code) + ".xlsx"


def _rows(conn, query: str, params: dict) -> list[dict]:
    with conn.cursor() as cur:
        cur.execute(query, params)
        names = [d.name for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _as_of(conn, month: date) -> date:
    """The month's newest as-of day; raises when the marts have no figure for the month."""
    as_of = conn.execute(f"select max(as_of_date) from {INDEX_MART} where period_start = %s",
                         (month,)).fetchone()[0]
    if as_of is None:
        first, last = conn.execute(f"select min(period_start), max(period_start) from {INDEX_MART}"
                                   ).fetchone()
        known = f"months with figures: {month_label(first)} to {month_label(last)}" if first else "empty"
        raise ReportError(f"no figures for {month:%Y-%m} in {INDEX_MART} ({known})")
    return as_of


def load(conn, month: date, unit_code: str | None = None) -> list[UnitReport]:
    """The reports of every unit with figures in the month (or of one unit), from the marts."""
    as_of = _as_of(conn, month)
    params = {"month": month, "as_of": as_of, "unit": unit_code}
    one_unit = "and (%(unit)s::text is null or unit_code = %(unit)s)"
    units = _rows(conn, f"select * from {INDEX_MART} where period_start = %(month)s"
                        f" and as_of_date = %(as_of)s {one_unit} order by unit_code", params)
    if unit_code is not None and not units:
        known = conn.execute(f"select exists (select from {INDEX_MART} where unit_code = %s)",
                             (unit_code,)).fetchone()[0]
        raise ReportError(f"unit {unit_code} has no figures for {month:%Y-%m} in {INDEX_MART}" if known
                          else f"unknown unit {unit_code}: not in {INDEX_MART}")
    groups = {r["group_code"]: r for r in _rows(
        conn, "select group_code, group_name_vi, max_score from seeds.index766_groups", {})}
    metrics: dict[str, list[Metric]] = {}
    for r in _rows(conn, f"select m.*, r.indicator_full_name_vi as indicator_vi from {METRICS_MART} m"
                         " left join seeds.index766_indicator_labels r on r.metric_code = m.metric_code"
                         f" where m.period_start = %(month)s and m.as_of_date = %(as_of)s"
                         f" and (%(unit)s::text is null or m.unit_code = %(unit)s)", params):
        metrics.setdefault(r["unit_code"], []).append(Metric(
            r["group_code"], r["metric_code"], r["indicator_vi"] or r["metric_code"], r["numerator"],
            r["denominator"], r["ratio"], r["points"], r["max_points"], r["source"]))
    trends: dict[str, list[tuple]] = {}
    for r in _rows(conn, f"select unit_code, as_of_date, total_score, rank_in_type from {INDEX_MART}"
                         " where period_start = %(month)s and as_of_date <= %(as_of)s"
                         f" {one_unit} order by unit_code, as_of_date", params):
        trends.setdefault(r["unit_code"], []).append((r["as_of_date"], r["total_score"], r["rank_in_type"]))

    def order(m: Metric) -> tuple:
        return (m.points_lost is None, -(m.points_lost or 0), GROUPS.index(m.group_code), m.metric_code)

    return [UnitReport(
        unit_code=u["unit_code"], unit_name=u["unit_name"] or u["unit_code"], unit_type=u["unit_type"],
        month=month, as_of=as_of, is_final=u["is_final"], total_score=u["total_score"],
        rank_in_type=u["rank_in_type"], units_in_type=u["units_in_type"],
        previous_total=u["previous_final_total_score"], score_change=u["score_change"],
        groups=tuple(Group(code, groups[code]["group_name_vi"], u[code.lower()], groups[code]["max_score"])
                     for code in GROUPS),
        metrics=tuple(sorted(metrics.get(u["unit_code"], []), key=order)),
        trend=tuple(trends.get(u["unit_code"], ())),
    ) for u in units]


# --- the workbook --------------------------------------------------------------------------------------


def _rank_text(report: UnitReport) -> str:
    if report.rank_in_type is None:
        return "Không xếp hạng (cấp tỉnh)" if report.unit_type == "province" else "Không xếp hạng"
    return f"Hạng {report.rank_in_type}/{report.units_in_type} {UNIT_TYPES_VI[report.unit_type]}"


def _not_applicable(m: Metric) -> str | None:
    if m.points is not None:
        return None
    if m.source == "official" and m.denominator is None:
        return "Không áp dụng: DVCQG chưa công bố số liệu"
    return "Không áp dụng: không có trường hợp nào trong kỳ"


def build_workbook(report: UnitReport, generated_at: datetime):
    from openpyxl import Workbook
    from openpyxl.chart import LineChart, Reference
    from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
    from openpyxl.utils import get_column_letter

    bold, title_font = Font(bold=True), Font(bold=True, size=14)
    head_fill = PatternFill("solid", fgColor="DDEBF7")
    thin = Side(style="thin", color="A6A6A6")
    box = Border(left=thin, right=thin, top=thin, bottom=thin)
    wrap = Alignment(wrap_text=True, vertical="top")

    def table_header(ws, row: int, labels: list[str]) -> None:
        for col, label in enumerate(labels, 1):
            cell = ws.cell(row, col, label)
            cell.font, cell.fill, cell.border = bold, head_fill, box
            cell.alignment = Alignment(wrap_text=True, vertical="center", horizontal="center")

    def put(ws, row: int, col: int, value, number_format: str | None = None, framed: bool = True):
        cell = ws.cell(row, col, value)
        if number_format:
            cell.number_format = number_format
        if framed:
            cell.border = box
        return cell

    def widths(ws, *values: float) -> None:
        for col, width in enumerate(values, 1):
            ws.column_dimensions[get_column_letter(col)].width = width

    def for_print(ws) -> None:
        ws.page_setup.orientation = "landscape"
        ws.page_setup.paperSize = ws.PAPERSIZE_A4
        ws.page_setup.fitToWidth, ws.page_setup.fitToHeight = 1, 0
        ws.sheet_properties.pageSetUpPr.fitToPage = True

    if generated_at.tzinfo:  # cells hold no time zone: Vietnam's local time (a naive time already is)
        generated_at = generated_at.astimezone(LOCAL_TZ).replace(tzinfo=None)
    unit_title = f"{report.unit_name} ({report.unit_code}) - tháng {month_label(report.month)}"
    wb = Workbook()

    # Summary: header, total and rank, the six groups
    ws = wb.active
    ws.title = SUMMARY_SHEET
    ws.cell(1, 1, "BÁO CÁO THÁNG VỀ CHỈ SỐ PHỤC VỤ NGƯỜI DÂN, DOANH NGHIỆP (BỘ CHỈ SỐ 766)").font = title_font
    status = "số liệu chốt tháng" if report.is_final else "số liệu tạm tính, lũy kế từ đầu tháng"
    header = [
        ("Đơn vị", report.unit_name, None),
        ("Mã đơn vị", report.unit_code, None),
        ("Loại đơn vị", UNIT_TYPES_VI[report.unit_type].capitalize(), None),
        ("Tháng", month_label(report.month), None),
        ("Số liệu tính đến ngày", report.as_of, DAY),
        ("Tình trạng số liệu", status.capitalize(), None),
        ("Thời điểm lập báo cáo", generated_at, "dd/mm/yyyy hh:mm"),
        ("Nguồn số liệu", f"Kho dữ liệu chiso: {INDEX_MART}, {METRICS_MART}", None),
    ]
    for row, (label, value, fmt) in enumerate(header, 3):
        ws.cell(row, 1, label).font = bold
        cell = put(ws, row, 2, value, fmt, framed=False)
        cell.alignment = Alignment(horizontal="left")
    row = len(header) + 4
    ws.cell(row, 1, "KẾT QUẢ").font = bold
    results = [
        ("Tổng điểm (tối đa 100)", report.total_score, POINTS),
        ("Xếp hạng", report.rank_in_type, COUNT),
        ("Số đơn vị cùng loại", report.units_in_type, COUNT),
        ("Tổng điểm chốt tháng trước", report.previous_total, POINTS),
        ("Thay đổi so với tháng trước", report.score_change, CHANGE),
    ]
    for offset, (label, value, fmt) in enumerate(results, 1):
        put(ws, row + offset, 1, label).font = bold
        put(ws, row + offset, 2, value, fmt)
    ws.cell(row + 2, 3, _rank_text(report))
    ws.cell(row + 1, 1).font = Font(bold=True, size=12)
    ws.cell(row + 1, 2).font = Font(bold=True, size=12)

    row += len(results) + 2
    ws.cell(row, 1, "ĐIỂM THEO NHÓM CHỈ SỐ").font = bold
    table_header(ws, row + 1,
                 ["Nhóm chỉ số", "Điểm đạt", "Điểm tối đa", "Tỷ lệ đạt", "Điểm bị mất", "Mã nhóm"])
    for offset, group in enumerate(report.groups, 2):
        r = row + offset
        put(ws, r, 1, group.name)
        put(ws, r, 2, group.score, POINTS)
        put(ws, r, 3, group.max_score, POINTS)
        put(ws, r, 4, None if group.score is None else group.score / group.max_score, PERCENT)
        put(ws, r, 5, None if group.score is None else group.max_score - group.score, POINTS)
        put(ws, r, 6, group.code)
    r = row + len(report.groups) + 2
    total_max = sum(g.max_score for g in report.groups)
    totals = [("Tổng cộng", None), (report.total_score, POINTS), (total_max, POINTS),
              (report.total_score / total_max, PERCENT), (total_max - report.total_score, POINTS)]
    for col, (value, fmt) in enumerate(totals, 1):
        put(ws, r, col, value, fmt).font = bold
    if any(g.score is None for g in report.groups):
        note = ws.cell(r + 2, 1, "Nhóm để trống: không có chỉ tiêu nào áp dụng trong kỳ (0 điểm trong tổng).")
        note.font = Font(italic=True, size=9)
    widths(ws, 34, 18, 14, 12, 14, 10)
    for_print(ws)

    # Points lost per sub-indicator, biggest first
    ws = wb.create_sheet(LOSSES_SHEET)
    ws.cell(1, 1, f"Điểm bị mất theo chỉ tiêu thành phần: {unit_title}").font = title_font
    ws.cell(2, 1, f"Số liệu tính đến ngày {report.as_of:%d/%m/%Y}; điểm bị mất nhiều nhất xếp trước.")
    table_header(ws, 4, ["STT", "Nhóm", "Mã chỉ tiêu", "Chỉ tiêu", "Tử số", "Mẫu số", "Tỷ lệ", "Điểm đạt",
                         "Điểm tối đa", "Điểm bị mất", "Nguồn", "Ghi chú"])
    for n, m in enumerate(report.metrics, 1):
        r = 4 + n
        put(ws, r, 1, n, COUNT)
        put(ws, r, 2, m.group_code)
        put(ws, r, 3, m.metric_code)
        put(ws, r, 4, m.name).alignment = wrap
        put(ws, r, 5, m.numerator, COUNT)
        put(ws, r, 6, m.denominator, COUNT)
        put(ws, r, 7, m.ratio, PERCENT)
        put(ws, r, 8, m.points, POINTS)
        put(ws, r, 9, m.max_points, POINTS)
        put(ws, r, 10, m.points_lost, POINTS).font = bold
        put(ws, r, 11, SOURCES_VI.get(m.source, m.source))
        put(ws, r, 12, _not_applicable(m))
    ws.freeze_panes = "A5"
    widths(ws, 6, 8, 30, 52, 10, 10, 9, 10, 11, 11, 22, 26)
    for_print(ws)

    # The month's trend: month-to-date total per day, and a line chart of it
    ws = wb.create_sheet(TREND_SHEET)
    ws.cell(1, 1, f"Diễn biến tổng điểm lũy kế trong tháng: {unit_title}").font = title_font
    table_header(ws, 3, ["Ngày", "Tổng điểm lũy kế", "Xếp hạng"])
    for n, (day, total, rank) in enumerate(report.trend, 4):
        put(ws, n, 1, day, DAY)
        put(ws, n, 2, total, POINTS)
        put(ws, n, 3, rank, COUNT)
    ws.freeze_panes = "A4"
    widths(ws, 13, 18, 11)
    if report.trend:
        last = 3 + len(report.trend)
        chart = LineChart()
        chart.title = f"Tổng điểm lũy kế, tháng {month_label(report.month)}"
        chart.y_axis.title, chart.x_axis.title = "Điểm", "Ngày"
        chart.y_axis.number_format, chart.x_axis.number_format = "0", "dd/mm"
        chart.x_axis.delete = chart.y_axis.delete = False  # newer Excel hides axes without this
        chart.legend = None
        chart.add_data(Reference(ws, min_col=2, min_row=3, max_row=last), titles_from_data=True)
        chart.set_categories(Reference(ws, min_col=1, min_row=4, max_row=last))
        chart.height, chart.width = 9, 18
        ws.add_chart(chart, "E3")
    for_print(ws)

    wb.properties.title = f"Báo cáo chỉ số 766 - {unit_title}"
    wb.properties.creator = "chiso"
    return wb


def save_atomically(workbook, path: Path) -> None:
    """Write next to the target and rename over it: a reader never sees a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            workbook.save(out)
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide the report from everyone else
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_reports(month: date, unit_code: str | None = None, out_dir: Path | None = None,
                  generated_at: datetime | None = None) -> list[Path]:
    """Write the month's report of one unit, or of every unit with figures; returns the files written."""
    from ingestion import pg

    with pg.connect("transform") as conn:
        reports = load(conn, month, unit_code)
    out_dir = Path(out_dir) if out_dir else default_dir(month)
    generated_at = generated_at or clock.now()
    paths = []
    for report in reports:
        path = out_dir / file_name(report.unit_code)
        save_atomically(build_workbook(report, generated_at), path)
        paths.append(path)
    return paths


def newest_month(day: date) -> date | None:
    """The month of the newest as-of day in the marts on or before `day`: the month a night's run computed
    (on the night of the 1st, before the new month has a figure, the month just closed)."""
    from ingestion import pg

    with pg.connect("transform") as conn:
        newest = conn.execute(f"select max(as_of_date) from {INDEX_MART} where as_of_date <= %s",
                              (day,)).fetchone()[0]
    return newest.replace(day=1) if newest else None


def reports_for_run(run_at: datetime | date) -> dict:
    """The warehouse DAG's task: every unit's report for the month of the run."""
    day = run_at.astimezone(LOCAL_TZ).date() if isinstance(run_at, datetime) else run_at
    month = newest_month(day)
    if month is None:
        raise ReportError(f"no figures on or before {day} in {INDEX_MART}")
    paths = write_reports(month)
    return {"month": f"{month:%Y-%m}", "files": len(paths), "dir": str(default_dir(month))}
