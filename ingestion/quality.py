"""Great Expectations gates: the suites as code, and the runner that records every suite in audit.

`run_gate("raw")` runs between the load and dbt, `run_gate("mart")` after dbt. Every run rebuilds the suites,
validation definitions and checkpoint from this module (the JSON that GX keeps under
expectations/uncommitted/ is output, never edited), writes one row per suite into audit.validation_runs,
builds Data Docs, and raises `GateFailed` when a suite fails: the Airflow task fails and nothing downstream
of it (dbt, the mart publish) runs.

GX is imported inside functions only, so DAG files may import this module at parse time.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import time
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache

from ingestion import clock, pg
from ingestion.config import PROJECT_ROOT, settings

log = logging.getLogger(__name__)
CONTEXT_DIR = PROJECT_ROOT / "expectations"
DOCS_INDEX = CONTEXT_DIR / "uncommitted" / "data_docs" / "local_site" / "index.html"
DATASOURCE = "chiso_warehouse"
URL_ENV = "CHISO_GX_WAREHOUSE_URL"  # great_expectations.yml reads the connection string from it
BATCH = "whole_table"
GROUP_MAX = {"ckmb": 18, "tdgq": 20, "clgq": 12, "tttt": 10, "mdhl": 18, "mdsh": 22}
GROUP_CODES = ["CKMB", "TDGQ", "CLGQ", "TTTT", "MDHL", "MDSH"]
PROVINCES = 34
PERSONAL_FIELDS = ("ChuHoSo", "MaDoiTuong", "SoDienThoai", "Email")  # S2: split off at load, loader-only
SAMPLE = 5  # unexpected values kept per failed expectation in audit


@dataclass(frozen=True)
class Suite:
    name: str
    layer: str  # 'raw' | 'mart'
    table: str
    source: str  # the pipeline that fills it: a DAG gates only its own tables
    columns: tuple[str, ...] = ()  # validate only these columns (a query asset), not `select *`
    may_be_empty: bool = False  # e.g. a night without hotspots; otherwise an empty table fails


# raw.dossiers without its personal columns, which the gate's role (transform) may not read
DOSSIER_COLUMNS = (
    "ma_ho_so", "ngay_cap_nhat", "ma_tthc", "ma_linh_vuc", "ma_don_vi", "ma_don_vi_nguon", "kenh_thuc_hien",
    "loai_doi_tuong", "trang_thai", "ngay_nop_ho_so", "ngay_tiep_nhan", "ngay_hen_tra", "ngay_ket_thuc_xu_ly",
    "ngay_tra", "duoc_thanh_toan_truc_tuyen", "applicant_hash", "record", "run_id", "landing_file", "page_no",
    "loaded_at")
SUITES = (
    Suite("raw.dvcqg_service_results", "raw", "dvcqg_service_results", "dvcqg"),
    Suite("raw.dvcqg_group_details", "raw", "dvcqg_group_details", "dvcqg"),
    Suite("raw.units", "raw", "units", "dossiers"),
    Suite("raw.procedures", "raw", "procedures", "dossiers"),
    Suite("raw.dossiers", "raw", "dossiers", "dossiers", DOSSIER_COLUMNS),
    Suite("raw.feedback", "raw", "feedback", "feedback"),
    Suite("raw.ratings", "raw", "ratings", "feedback"),
    Suite("raw.centres", "raw", "centres", "centres"),
    Suite("raw.centre_snapshots", "raw", "centre_snapshots", "centres"),
    Suite("marts.mart_province_ranking", "mart", "mart_province_ranking", "dvcqg"),
    Suite("marts.mart_unit_official_scores", "mart", "mart_unit_official_scores", "dvcqg"),
    # the warehouse DAG's publishing gate
    Suite("marts.dim_unit", "mart", "dim_unit", "warehouse"),
    Suite("marts.fct_dossier", "mart", "fct_dossier", "warehouse"),
    Suite("marts.mart_unit_index_766_metrics", "mart", "mart_unit_index_766_metrics", "warehouse"),
    Suite("marts.mart_unit_index_766", "mart", "mart_unit_index_766", "warehouse"),
    Suite("marts.mart_centre_operations", "mart", "mart_centre_operations", "warehouse"),
    Suite("marts.mart_procedure_catalogue", "mart", "mart_procedure_catalogue", "warehouse"),
    Suite("marts.mart_indicator_gaps", "mart", "mart_indicator_gaps", "warehouse"),
    Suite("marts.mart_unit_group_ranking", "mart", "mart_unit_group_ranking", "warehouse"),
    Suite("marts.mart_unit_daily_kpi", "mart", "mart_unit_daily_kpi", "warehouse"),
    Suite("marts.mart_heatmap_daily", "mart", "mart_heatmap_daily", "warehouse"),
    Suite("marts.mart_hotspots", "mart", "mart_hotspots", "warehouse", may_be_empty=True),
    # chiso_index_reconciliation's, once both the warehouse and the national index are published
    Suite("marts.mart_index_reconciliation", "mart", "mart_index_reconciliation", "reconciliation"),
)


def suites(layer: str, sources: tuple[str, ...] | None = None) -> list[Suite]:
    if layer not in {s.layer for s in SUITES}:
        raise ValueError(f"unknown gate layer {layer!r}: use 'raw' or 'mart'")
    found = [s for s in SUITES if s.layer == layer and (sources is None or s.source in sources)]
    if not found:
        raise ValueError(f"no {layer} suite for sources {sources}")
    return found


# --- the expectations -------------------------------------------------------------------------------


def _rows(description: str, query: str, severity: str = "critical"):
    """A table-level rule as SQL: the query returns the offending rows, none means success. A "warning"
    is recorded in audit and Data Docs but does not fail the gate."""
    import great_expectations.expectations as gxe

    return gxe.UnexpectedRowsExpectation(description=description, unexpected_rows_query=query,
                                         severity=severity)


def _scores(gxe, keys: str) -> list:
    """Total within 0..100, each group within 0..its maximum, total = sum of the groups (to 0.01)."""
    groups = " + ".join(f"coalesce({c}, 0)" for c in GROUP_MAX)
    return [
        gxe.ExpectColumnValuesToBeBetween(column="total_score", min_value=0, max_value=100),
        *(gxe.ExpectColumnValuesToBeBetween(column=c, min_value=0, max_value=m)
          for c, m in GROUP_MAX.items()),
        _rows("total_score equals the sum of the six groups (within 0.01)",
              f"select {keys}, total_score, {groups} as sum_of_groups from {{batch}}"
              f" where round(abs(total_score - ({groups}))::numeric, 4) > 0.01"),
    ]


def _per_period(count: int, where: str = "") -> str:
    return (f"select period_type, period_start, count(*) as n from {{batch}} {where}"
            f" group by period_type, period_start having count(*) <> {count}")


def _rank_check(keys: str, partition: str, rank: str, where: str = "") -> str:
    return (f"select * from (select {keys}, total_score, {rank}, rank() over (partition by {partition}"
            f" order by total_score desc nulls last) as expected_rank from {{batch}} {where}) as ranked"
            f" where {rank} is distinct from expected_rank")


def _unit_known(keys: str) -> object:
    """The record's (current) unit is in the unit list S2 gave last."""
    return _rows("ma_don_vi in raw.units", f"select {keys}, ma_don_vi from {{batch}}"
                 " where ma_don_vi not in (select u.ma_don_vi from raw.units as u)")


def _expectations(suite: Suite, schema: str) -> list:
    """The suite's expectations; a suite also expects a non-empty table (an empty one proves nothing) unless
    it may be empty. SQL rules name the validated schema's other tables as {batch_schema}."""
    import great_expectations.expectations as gxe

    rules = [gxe.ExpectTableRowCountToBeBetween(min_value=0 if suite.may_be_empty else 1),
             *_rules(gxe, suite.name)]
    for rule in rules:
        if isinstance(rule, gxe.UnexpectedRowsExpectation):
            rule.unexpected_rows_query = rule.unexpected_rows_query.replace("{batch_schema}", schema)
    return rules


def _rules(gxe, suite: str) -> list:
    def not_null(*columns: str) -> list:
        return [gxe.ExpectColumnValuesToNotBeNull(column=c) for c in columns]

    if suite == "raw.dvcqg_service_results":
        return [
            *not_null("department_id", "department_code"),
            gxe.ExpectColumnValuesToMatchRegex(column="department_code", regex=r"^H\d{2}(\.\d+)?$"),
            *_scores(gxe, "period_type, period_start, scope, department_code"),
            _rows(f"exactly {PROVINCES} national rows per period",
                  _per_period(PROVINCES, "where scope = 'national'")),
        ]
    if suite == "raw.dvcqg_group_details":
        return [
            *not_null("record", "department_id"),
            gxe.ExpectColumnValuesToBeInSet(column="group_code", value_set=GROUP_CODES),
            gxe.ExpectColumnValuesToBeBetween(column="score", min_value=0),
            _rows("score within 0..max_score",
                  "select endpoint, group_code, period_type, period_start, department_id, score, max_score"
                  " from {batch} where score > max_score"),
        ]
    if suite in PROVINCIAL_RULES:
        return PROVINCIAL_RULES[suite](gxe, not_null)
    if suite in WAREHOUSE_RULES:
        return WAREHOUSE_RULES[suite](gxe, not_null)
    if suite == "marts.mart_province_ranking":
        keys = ["period_type", "period_start", "department_code"]
        return [
            *not_null(*keys, "total_score", "national_rank"),
            gxe.ExpectCompoundColumnsToBeUnique(column_list=keys),
            *_scores(gxe, ", ".join(keys)),
            gxe.ExpectColumnValuesToBeBetween(column="national_rank", min_value=1, max_value=PROVINCES),
            _rows(f"{PROVINCES} provinces per period", _per_period(PROVINCES)),
            _rows("national_rank = 1 + provinces with a strictly higher total (ties share, no gaps)",
                  _rank_check(", ".join(keys), "period_type, period_start", "national_rank")),
        ]
    if suite == "marts.mart_unit_official_scores":
        keys = ["period_type", "period_start", "unit_code"]
        return [
            *not_null(*keys, "unit_type"),
            gxe.ExpectCompoundColumnsToBeUnique(column_list=keys),
            gxe.ExpectColumnValuesToBeInSet(column="unit_type", value_set=["agency", "commune"]),
            *_scores(gxe, ", ".join(keys)),
            _rows("rank_in_type within 1..units_in_type",
                  "select period_type, period_start, unit_code, rank_in_type, units_in_type from {batch}"
                  " where rank_in_type < 1 or rank_in_type > units_in_type"),
            _rows("rank_in_type = rank() by total_score within period and unit_type",
                  _rank_check(", ".join(keys), "period_type, period_start, unit_type", "rank_in_type",
                              "where total_score is not null")),
        ]
    raise KeyError(suite)


# S2-S4 raw tables. The GX connection is the transform role's: it cannot read raw.dossiers' personal columns.


def _units(gxe, not_null) -> list:
    return [
        *not_null("ma_don_vi", "ten_don_vi", "cap_don_vi"),
        gxe.ExpectColumnValuesToBeUnique(column="ma_don_vi"),
        gxe.ExpectColumnValuesToMatchRegex(column="ma_don_vi", regex=r"^H\d{2}(\.\d+)?$"),
        gxe.ExpectColumnValuesToBeInSet(column="cap_don_vi", value_set=["TINH", "SO_NGANH", "XA"]),
        gxe.ExpectColumnValuesToMatchRegex(column="ma_hanh_chinh", regex=r"^\d{5}$"),
        _rows("ma_don_vi_cha in raw.units", "select ma_don_vi, ma_don_vi_cha from {batch}"
              " where ma_don_vi_cha not in (select u.ma_don_vi from raw.units as u)"),
    ]


def _procedures(gxe, not_null) -> list:
    return [
        *not_null("ma_tthc"),
        gxe.ExpectColumnValuesToBeUnique(column="ma_tthc"),
        gxe.ExpectColumnValuesToBeInSet(column="cap_thuc_hien", value_set=["TINH", "XA"]),
        gxe.ExpectColumnValuesToBeInSet(column="muc_do_dvc", value_set=["TOAN_TRINH", "MOT_PHAN", "KHONG"]),
        gxe.ExpectColumnValuesToBeInSet(column="trang_thai", value_set=["HIEU_LUC", "BAI_BO"]),
        gxe.ExpectColumnValuesToBeBetween(column="thoi_han_giai_quyet_ngay", min_value=0),
    ]


def _dossiers(gxe, not_null) -> list:
    keys = "ma_ho_so, ngay_cap_nhat"
    personal = ", ".join(f"'{f}'" for f in PERSONAL_FIELDS)
    return [
        *not_null("ma_ho_so", "ngay_cap_nhat", "ma_don_vi", "trang_thai", "record"),
        gxe.ExpectCompoundColumnsToBeUnique(column_list=["ma_ho_so", "ngay_cap_nhat"]),
        gxe.ExpectColumnValuesToBeBetween(column="trang_thai", min_value=1, max_value=10),
        gxe.ExpectColumnValuesToBeInSet(column="kenh_thuc_hien", value_set=[1, 2, 3]),
        gxe.ExpectColumnValuesToBeInSet(column="loai_doi_tuong", value_set=[1, 2]),
        gxe.ExpectColumnValuesToBeInSet(column="duoc_thanh_toan_truc_tuyen", value_set=[0, 1, 2]),
        gxe.ExpectColumnValuesToMatchRegex(column="applicant_hash", regex=r"^[0-9a-f]{64}$"),
        _rows("ngay_hen_tra not before ngay_tiep_nhan",
              f"select {keys}, ngay_tiep_nhan, ngay_hen_tra from {{batch}}"
              " where ngay_hen_tra < ngay_tiep_nhan"),
        _unit_known(keys),
        _rows("record holds no personal field",
              f"select {keys} from {{batch}} where jsonb_exists_any(record, array[{personal}])"),
    ]


def _feedback(gxe, not_null) -> list:
    keys = "ma_pakn, ngay_cap_nhat"
    return [
        *not_null("ma_pakn", "ngay_cap_nhat", "ma_don_vi", "trang_thai"),
        gxe.ExpectCompoundColumnsToBeUnique(column_list=["ma_pakn", "ngay_cap_nhat"]),
        gxe.ExpectColumnValuesToBeInSet(column="trang_thai",
                                        value_set=["MOI", "DANG_XU_LY", "DA_XU_LY", "TU_CHOI"]),
        gxe.ExpectColumnValuesToBeInSet(column="phan_loai", value_set=["TTHC", "CBCC", "KHAC"]),
        gxe.ExpectColumnValuesToBeBetween(column="so_luot_thich", min_value=0),
        gxe.ExpectColumnValuesToBeBetween(column="so_luot_khong_thich", min_value=0),
        _rows("han_xu_ly not before ngay_tiep_nhan",
              f"select {keys}, ngay_tiep_nhan, han_xu_ly from {{batch}} where han_xu_ly < ngay_tiep_nhan"),
        _unit_known(keys),
    ]


def _ratings(gxe, not_null) -> list:
    return [
        *not_null("ma_danh_gia", "ngay_cap_nhat", "ma_don_vi", "muc_do"),
        gxe.ExpectCompoundColumnsToBeUnique(column_list=["ma_danh_gia", "ngay_cap_nhat"]),
        gxe.ExpectColumnValuesToBeInSet(column="muc_do", value_set=[1, 2, 3]),
        _unit_known("ma_danh_gia, ngay_cap_nhat"),
    ]


def _centres(gxe, not_null) -> list:
    return [
        *not_null("ma_trung_tam", "ma_don_vi"),
        gxe.ExpectColumnValuesToBeUnique(column="ma_trung_tam"),
        gxe.ExpectColumnValuesToBeBetween(column="so_camera", min_value=0),
        gxe.ExpectColumnValuesToBeBetween(column="so_quay", min_value=0),
        _unit_known("ma_trung_tam"),
    ]


def _snapshots(gxe, not_null) -> list:
    keys = "s.ma_trung_tam, s.thoi_diem"
    return [
        *not_null("ma_trung_tam", "thoi_diem"),
        gxe.ExpectCompoundColumnsToBeUnique(column_list=["ma_trung_tam", "thoi_diem"]),
        *(gxe.ExpectColumnValuesToBeBetween(column=c, min_value=0)
          for c in ("so_phieu_cap", "thoi_gian_cho_tb", "thoi_gian_cho_max")),
        _rows("thoi_diem within its extract window",
              f"select {keys}, r.window_start, r.window_end from {{batch}} as s"
              " join audit.extract_runs as r on r.run_id = s.run_id"
              " where not (s.thoi_diem >= r.window_start and s.thoi_diem < r.window_end)"),
        _rows("camera_truc_tuyen within 0..so_camera and quay_hoat_dong within 0..so_quay (raw.centres)",
              f"select {keys}, s.camera_truc_tuyen, c.so_camera, s.quay_hoat_dong, c.so_quay"
              " from {batch} as s"
              " left join raw.centres as c on c.ma_trung_tam = s.ma_trung_tam"
              " where c.ma_trung_tam is null or s.camera_truc_tuyen not between 0 and c.so_camera"
              " or s.quay_hoat_dong not between 0 and c.so_quay"),
    ]


PROVINCIAL_RULES = {
    "raw.units": _units, "raw.procedures": _procedures, "raw.dossiers": _dossiers, "raw.feedback": _feedback,
    "raw.ratings": _ratings, "raw.centres": _centres, "raw.centre_snapshots": _snapshots,
}


# Warehouse marts (dbt, the warehouse DAG). The province's communes are the communes seed's rows of the
# configured province (CHISO_PROVINCE_CODE); a province the seed does not list is only warned about.
def _seed_communes() -> str:
    from ingestion.config import settings

    code = settings().province_code.replace("'", "''")
    return f"(select count(*) from seeds.communes where province_code::text = '{code}')"


def _every_commune_every(day_column: str, keys: str = "unit_code") -> object:
    """Every commune of dim_unit has a row for every day (or period) the table covers."""
    return _rows(f"every commune present for every {day_column}",
                 f"select d.{day_column}, u.unit_code"
                 f" from (select distinct {day_column} from {{batch}} as t) as d"
                 " cross join (select unit_code from {batch_schema}.dim_unit"
                 " where unit_type = 'commune') as u"
                 f" where not exists (select from {{batch}} as b where b.{day_column} = d.{day_column}"
                 f" and b.{keys} = u.unit_code)")


def _dim_unit(gxe, not_null) -> list:
    return [
        *not_null("unit_code", "unit_name", "unit_type"),
        gxe.ExpectColumnValuesToBeUnique(column="unit_code"),
        gxe.ExpectColumnValuesToBeInSet(column="unit_type", value_set=["province", "agency", "commune"]),
        _rows("one unit per commune of the configured province in the communes seed",
              f"select count(*) as communes from {{batch}} where unit_type = 'commune'"
              f" having count(*) <> {_seed_communes()} and {_seed_communes()} > 0"),
        _rows("the communes seed lists the configured province's communes",
              f"select count(*) as communes from {{batch}} where unit_type = 'commune'"
              f" having {_seed_communes()} = 0", severity="warning"),
    ]


def _fct_dossier(gxe, not_null) -> list:
    return [
        *not_null("dossier_code", "unit_code", "status"),
        gxe.ExpectColumnValuesToBeUnique(column="dossier_code"),
        gxe.ExpectColumnValuesToBeBetween(column="supplement_count", min_value=0),
        gxe.ExpectColumnValuesToBeBetween(column="fee_total_vnd", min_value=0),
        _rows("due_at not before received_at", "select dossier_code, received_at, due_at from {batch}"
              " where due_at < received_at"),
        _rows("unit_code in dim_unit", "select dossier_code, unit_code from {batch} where unit_code not in"
              " (select u.unit_code from {batch_schema}.dim_unit as u)"),
    ]


def _index_metrics(gxe, not_null) -> list:
    keys = ["unit_code", "period_start", "as_of_date", "metric_code"]
    return [
        *not_null(*keys, "max_points", "group_code", "source"),
        gxe.ExpectCompoundColumnsToBeUnique(column_list=keys),
        gxe.ExpectColumnValuesToBeBetween(column="ratio", min_value=0, max_value=1),
        gxe.ExpectColumnValuesToBeBetween(column="max_points", min_value=0, strict_min=True),
        gxe.ExpectColumnValuesToBeInSet(column="group_code", value_set=GROUP_CODES),
        _rows("points within 0..max_points", f"select {', '.join(keys)}, points, max_points from {{batch}}"
              " where points < 0 or points > max_points"),
        _rows("as_of_date within its month", f"select {', '.join(keys)} from {{batch}}"
              " where date_trunc('month', as_of_date) <> period_start"),
    ]


def _unit_index(gxe, not_null) -> list:
    keys = "unit_code, period_start, as_of_date"
    return [
        *not_null("unit_code", "period_start", "as_of_date", "unit_type"),
        gxe.ExpectCompoundColumnsToBeUnique(column_list=["unit_code", "period_start", "as_of_date"]),
        *_scores(gxe, keys),
        _rows("rank_in_type within 1..units_in_type",
              f"select {keys}, rank_in_type, units_in_type from {{batch}}"
              " where rank_in_type < 1 or rank_in_type > units_in_type"),
        _rows("rank_in_type = 1 + units of the type with a strictly higher total (ties share, no gaps)",
              _rank_check(keys, "period_start, as_of_date, unit_type", "rank_in_type",
                          "where total_score is not null and unit_type <> 'province'")),
        _every_commune_every("as_of_date"),
    ]


def _centre_operations(gxe, not_null) -> list:
    keys = "centre_code, local_date"
    every_day = ("select d.local_date, c.centre_code from (select distinct local_date from {batch} as t) as d"
                 " cross join (select distinct centre_code from {batch} as t) as c where not exists (select"
                 " from {batch} as b where b.local_date = d.local_date and b.centre_code = c.centre_code)")
    return [
        *not_null("centre_code", "local_date", "expected_hours", "online_hours", "offline_hours"),
        gxe.ExpectCompoundColumnsToBeUnique(column_list=["centre_code", "local_date"]),
        *(gxe.ExpectColumnValuesToBeBetween(column=c, min_value=0, max_value=1)
          for c in ("camera_online_share", "online_share")),
        _rows("online + offline hours = expected hours",
              f"select {keys}, expected_hours, online_hours, offline_hours from {{batch}}"
              " where online_hours + offline_hours <> expected_hours"),
        _rows("longest gap and gap count within the offline hours",
              f"select {keys}, offline_hours, gap_count, longest_gap_hours from {{batch}}"
              " where longest_gap_hours > offline_hours or gap_count > offline_hours"),
        _rows("cameras online within cameras installed; mean wait within max wait",
              f"select {keys}, cameras_online_latest, cameras, mean_wait_minutes, max_wait_minutes"
              " from {batch} where cameras_online_latest > cameras or mean_wait_minutes > max_wait_minutes"),
        _rows("every centre present every day", every_day),
    ]


def _procedure_catalogue(gxe, not_null) -> list:
    return [
        *not_null("unit_level", "online_level", "procedures_published"),
        gxe.ExpectCompoundColumnsToBeUnique(column_list=["unit_level", "online_level"]),
        gxe.ExpectColumnValuesToBeBetween(column="integrated_online_share", min_value=0, max_value=1),
        _rows("integrated online <= integrated <= published",
              "select unit_level, online_level, procedures_published, procedures_integrated,"
              " procedures_integrated_online from {batch} where procedures_integrated_online >"
              " procedures_integrated or procedures_integrated > procedures_published"),
    ]


def _reconciliation(gxe, not_null) -> list:
    keys = "unit_code, period_start, group_code"
    return [
        *not_null("unit_code", "period_start", "group_code", "reconciliation_status", "max_points"),
        gxe.ExpectCompoundColumnsToBeUnique(column_list=["unit_code", "period_start", "group_code"]),
        gxe.ExpectColumnValuesToBeInSet(column="group_code", value_set=GROUP_CODES),
        gxe.ExpectColumnValuesToBeInSet(column="unit_type", value_set=["agency", "commune"]),
        _rows("difference = chiso - official, within the group's maximum",
              f"select {keys}, chiso_score, official_score, score_difference, max_points from {{batch}}"
              " where score_difference is distinct from chiso_score - official_score"
              " or abs(score_difference) > max_points"),
        # Differences are findings for the data team, not broken data: they must not stop the publication.
        _rows("chiso's score agrees with DVCQG's within tolerance",
              f"select {keys}, chiso_score, official_score, score_difference, tolerance_points from {{batch}}"
              " where is_beyond_tolerance", severity="warning"),
    ]


def _indicator_gaps(gxe, not_null) -> list:
    keys = "unit_code, period_start, metric_code"
    return [
        *not_null("unit_code", "period_start", "metric_code", "indicator_name", "group_name", "gap_order"),
        gxe.ExpectCompoundColumnsToBeUnique(column_list=["unit_code", "period_start", "metric_code"]),
        gxe.ExpectCompoundColumnsToBeUnique(column_list=["unit_code", "period_start", "gap_order"]),
        gxe.ExpectColumnValuesToBeInSet(column="source", value_set=["computed", "official"]),
        _rows("points + points_lost = max_points, points_lost within 0..max_points",
              f"select {keys}, points, points_lost, max_points from {{batch}} where points_lost < 0"
              " or points_lost > max_points or (points is not null and points + points_lost <> max_points)"),
        _rows("biggest loss first: gap_rank <= gap_order",
              f"select {keys}, gap_rank, gap_order from {{batch}} where gap_rank > gap_order"),
        _rows("one as-of day per unit and month", "select unit_code, period_start, count(distinct as_of_date)"
              " from {batch} group by unit_code, period_start having count(distinct as_of_date) > 1"),
    ]


def _unit_group_ranking(gxe, not_null) -> list:
    keys = "unit_code, period_start, group_code"
    return [
        *not_null("unit_code", "period_start", "group_code", "max_score"),
        gxe.ExpectCompoundColumnsToBeUnique(column_list=["unit_code", "period_start", "group_code"]),
        gxe.ExpectColumnValuesToBeInSet(column="unit_type", value_set=["agency", "commune"]),
        gxe.ExpectColumnValuesToBeBetween(column="percent_of_max", min_value=0, max_value=100),
        _rows("score within 0..max_score; rank_in_type <= units_scored <= units_in_type",
              f"select {keys}, score, max_score, rank_in_type, units_scored, units_in_type from {{batch}}"
              " where score < 0 or score > max_score or rank_in_type > units_scored"
              " or units_scored > units_in_type"),
        _rows("six groups per unit and month", "select unit_code, period_start, count(*) from {batch}"
              " group by unit_code, period_start having count(*) <> 6"),
    ]


def _daily_kpi(gxe, not_null) -> list:
    keys = "unit_code, kpi_date"
    return [
        *not_null("unit_code", "kpi_date", "received", "finished", "finished_on_time", "open_within_due",
                  "open_overdue", "due_within_one_working_day"),
        gxe.ExpectCompoundColumnsToBeUnique(column_list=["unit_code", "kpi_date"]),
        *(gxe.ExpectColumnValuesToBeBetween(column=c, min_value=0, max_value=1) for c in
          ("on_time_rate", "online_share", "paid_online_share", "digitised_share", "satisfaction_rate")),
        _rows("parts within their wholes (on time <= finished, online <= received, due soon <= open in time)",
              f"select {keys} from {{batch}} where finished_on_time > finished"
              " or received_online > received or received_paid_online > received_with_fee"
              " or ratings_satisfied > ratings or due_within_one_working_day > open_within_due"),
        _every_commune_every("kpi_date"),
    ]


def _heatmap(gxe, not_null) -> list:
    return [
        *not_null("unit_code", "kpi_date", "status", "status_level", "threshold_set", "threshold_version"),
        gxe.ExpectCompoundColumnsToBeUnique(column_list=["unit_code", "kpi_date"]),
        gxe.ExpectColumnValuesToBeInSet(column="status", value_set=["green", "yellow", "red"]),
        _rows("status_level 0/1/2 matches green/yellow/red",
              "select unit_code, kpi_date, status, status_level from {batch} where status_level"
              " <> case status when 'green' then 0 when 'yellow' then 1 else 2 end"),
        _every_commune_every("kpi_date"),
        # no join in the query: GX aliases {batch} itself (with a join, the query must alias it)
        _rows("no day missing between the first and the last",
              "select d::date as kpi_date from generate_series((select min(kpi_date) from {batch}),"
              " (select max(kpi_date) from {batch}), interval '1 day') as d"
              " where d::date not in (select kpi_date from {batch})"),
    ]


def _hotspots(gxe, not_null) -> list:
    return [
        *not_null("as_of_date", "unit_code", "hotspot_rule", "reason_vi", "threshold_set",
                  "threshold_version"),
        gxe.ExpectCompoundColumnsToBeUnique(column_list=["unit_code", "hotspot_rule"]),
        gxe.ExpectColumnValuesToBeInSet(column="unit_type", value_set=["agency", "commune"]),
        _rows("one as-of day: today's", "select count(distinct as_of_date) from {batch} having"
              " count(distinct as_of_date) > 1"),
    ]


WAREHOUSE_RULES = {
    "marts.mart_unit_daily_kpi": _daily_kpi, "marts.mart_heatmap_daily": _heatmap,
    "marts.mart_hotspots": _hotspots,
    "marts.mart_indicator_gaps": _indicator_gaps, "marts.mart_unit_group_ranking": _unit_group_ranking,
    "marts.mart_index_reconciliation": _reconciliation,
    "marts.mart_centre_operations": _centre_operations,
    "marts.mart_procedure_catalogue": _procedure_catalogue,
    "marts.dim_unit": _dim_unit, "marts.fct_dossier": _fct_dossier,
    "marts.mart_unit_index_766_metrics": _index_metrics, "marts.mart_unit_index_766": _unit_index,
}


# --- the context ------------------------------------------------------------------------------------


@contextlib.contextmanager
def _exclusive():
    """One gate at a time per checkout: great_expectations.yml and GX's file stores are shared state that
    concurrent runs (parallel DAG runs, tests) would otherwise rewrite under each other."""
    lock = CONTEXT_DIR / "uncommitted" / "gate.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


@cache
def context():
    """The file data context under expectations/, with its datasource; one per process."""
    import great_expectations as gx

    os.environ.setdefault(URL_ENV, pg.url("transform"))
    ctx = gx.get_context(mode="file", context_root_dir=str(CONTEXT_DIR))
    if DATASOURCE not in ctx.data_sources.all():
        ctx.data_sources.add_postgres(DATASOURCE, connection_string="${" + URL_ENV + "}")
    return ctx


def _default_schema(layer: str) -> str:
    return "raw" if layer == "raw" else settings().mart_schema


def _suffix(layer: str, schema: str) -> str:
    """Validation definitions and checkpoints for a non-default schema carry it in their names."""
    return "" if schema == _default_schema(layer) else f"@{schema}"


def _batch_definition(ctx, schema: str, suite: Suite):
    datasource = ctx.data_sources.get(DATASOURCE)
    name, table = f"{schema}.{suite.table}", suite.table
    query = f"select {', '.join(suite.columns)} from {schema}.{table}" if suite.columns else None
    asset = datasource.get_asset(name) if name in datasource.get_asset_names() else None
    if asset is not None and getattr(asset, "query", None) != query:  # the code changed what it validates
        datasource.delete_asset(name)
        asset = None
    if asset is None and query:
        asset = datasource.add_query_asset(name, query=query)
    elif asset is None:
        with warnings.catch_warnings():  # GX 1.14+ wants a schema per datasource; Postgres has no such option
            warnings.simplefilter("ignore", DeprecationWarning)
            asset = datasource.add_table_asset(name, table_name=table, schema_name=schema)
    try:
        return asset.get_batch_definition(BATCH)
    except KeyError:
        return asset.add_batch_definition_whole_table(BATCH)


def _upsert(factory, obj, store: str):
    """add_or_update, first dropping a stored copy GX can no longer read (e.g. its asset is gone): the
    stores hold output of this module, so the code's version always wins."""
    try:
        return factory.add_or_update(obj)
    except Exception:  # any unreadable stored copy; the retry raises the real errors
        (CONTEXT_DIR / "uncommitted" / store / f"{obj.name}.json").unlink(missing_ok=True)
        return factory.add_or_update(obj)


def build_suites(layer: str, schema: str | None = None) -> list:
    """Recreate the layer's suites and validation definitions from code; returns the definitions."""
    with _exclusive():
        return _build_suites(layer, schema)


def _build_suites(layer: str, schema: str | None = None, tables: list[str] | None = None) -> list:
    import great_expectations as gx

    ctx, schema = context(), schema or _default_schema(layer)
    definitions = []
    for suite in suites(layer):
        if tables is not None and suite.table not in tables:
            continue
        expectations = _expectations(suite, schema)
        gx_suite = ctx.suites.add_or_update(gx.ExpectationSuite(name=suite.name, expectations=expectations))
        definitions.append(_upsert(ctx.validation_definitions, gx.ValidationDefinition(
            name=suite.name + _suffix(layer, schema), data=_batch_definition(ctx, schema, suite),
            suite=gx_suite), "validation_definitions"))
    return definitions


def forget_schema(schema: str) -> None:
    """Remove what runs against a scratch schema left in the context (tests call it when done)."""
    with _exclusive():
        _forget_schema(context(), schema)


def _forget_schema(ctx, schema: str) -> None:
    for layer in ("raw", "mart"):
        suffix = _suffix(layer, schema)
        if suffix:
            stored = CONTEXT_DIR / "uncommitted"
            (stored / "checkpoints" / f"chiso_{layer}_gate{suffix}.json").unlink(missing_ok=True)
            for suite in suites(layer):
                (stored / "validation_definitions" / f"{suite.name}{suffix}.json").unlink(missing_ok=True)
    datasource = ctx.data_sources.get(DATASOURCE)
    for name in sorted(datasource.get_asset_names()):
        if name.startswith(f"{schema}."):
            datasource.delete_asset(name)


# --- the gate ---------------------------------------------------------------------------------------


@dataclass
class SuiteOutcome:
    suite: str
    target: str  # schema.table validated
    success: bool
    evaluated: int
    failed: int
    started_at: datetime
    finished_at: datetime
    failures: list[dict] = field(default_factory=list)  # critical: they fail the suite
    error: str | None = None
    warnings: list[dict] = field(default_factory=list)  # failed "warning" expectations: recorded, not fatal

    def summary(self) -> str:
        """The suite and what failed, short: four expectations at most, plus the first error raised."""
        if self.error:
            return f"{self.suite} ({self.error})"
        names = [f["expectation"] for f in self.failures]
        text = "; ".join(names[:4]) + (f"; +{len(names) - 4} more" if len(names) > 4 else "")
        raised = [f["exception"].strip().splitlines()[0] for f in self.failures if f.get("exception")]
        return f"{self.suite} ({text}{f'; raised: {raised[0][:200]}' if raised else ''})"


@dataclass
class GateResult:
    layer: str
    pipeline_run: str
    success: bool
    suites: list[SuiteOutcome]
    seconds: float
    data_docs: str | None = None


class GateFailed(RuntimeError):
    """Some suite failed; str() is one line naming the failed suites and their failed expectations."""

    def __init__(self, message: str, result: GateResult | None = None):
        super().__init__(message, result)  # both in args, so the exception pickles (task logs, XCom)
        self.result = result

    def __str__(self) -> str:
        return self.args[0]

    @classmethod
    def of(cls, result: GateResult) -> GateFailed:
        failed = "; ".join(o.summary() for o in result.suites if not o.success)
        return cls(f"{result.layer} gate failed: {failed} "
                   f"(see audit.validation_runs where pipeline_run = '{result.pipeline_run}')", result)


def _missing_tables(schema: str, tables: list[str]) -> set[str]:
    with pg.connect("transform") as conn:
        return {t for t in tables
                if conn.execute("select to_regclass(%s)", (f'"{schema}"."{t}"',)).fetchone()[0] is None}


def _failure(result) -> dict:
    """One failed expectation, JSON-safe: name, type, column, counts and a few unexpected values."""
    data = result.to_json_dict()
    config, res = data.get("expectation_config") or {}, data.get("result") or {}
    kwargs = config.get("kwargs") or {}
    column = kwargs.get("column") or kwargs.get("column_list")
    name = config.get("description")
    if not name:
        name = config.get("type", "?")
        if column:
            name += f"({column if isinstance(column, str) else ','.join(column)})"
    sample = res.get("partial_unexpected_list") or (res.get("details") or {}).get("unexpected_rows") or []
    info = data.get("exception_info") or {}  # flat, or one entry per metric that raised
    raised = [e for e in (info, *info.values()) if isinstance(e, dict) and e.get("raised_exception")]
    return {
        "expectation": name,
        "type": config.get("type"),
        "column": column,
        "unexpected_count": res.get("unexpected_count", res.get("observed_value")),
        "unexpected_percent": res.get("unexpected_percent"),
        "sample": sample[:SAMPLE],
        "exception": raised[0].get("exception_message") if raised else None,
        "severity": config.get("severity") or "critical",
    }


def _load_time(validation, default: datetime) -> datetime:
    """When GX loaded the suite's batch, i.e. when that suite's validation started."""
    value = ((validation.meta or {}).get("batch_markers") or {}).get("ge_load_time")
    try:
        return datetime.strptime(value, "%Y%m%dT%H%M%S.%fZ").replace(tzinfo=UTC)
    except (TypeError, ValueError):
        return default


def _validate(layer: str, schema: str, tables: list[str], run_name: str, build_docs: bool,
              started: datetime) -> list[SuiteOutcome]:
    import great_expectations as gx
    from great_expectations.checkpoint import UpdateDataDocsAction
    from great_expectations.core.run_identifier import RunIdentifier

    checkpoint = _upsert(context().checkpoints, gx.Checkpoint(
        name=f"chiso_{layer}_gate{_suffix(layer, schema)}",
        validation_definitions=_build_suites(layer, schema, tables),
        actions=[UpdateDataDocsAction(name="data_docs")] if build_docs else [],
        result_format={"result_format": "COMPLETE", "partial_unexpected_count": SAMPLE}), "checkpoints")
    run = checkpoint.run(run_id=RunIdentifier(run_name=run_name))
    done = clock.event_time()
    table_of = {s.name: s.table for s in suites(layer)}
    outcomes = []
    for v in run.run_results.values():
        failed = [_failure(r) for r in v.results if not r.success]
        critical = [f for f in failed if f["severity"] == "critical"]
        outcomes.append(SuiteOutcome(
            v.suite_name, f"{schema}.{table_of[v.suite_name]}", not critical,
            v.statistics["evaluated_expectations"], len(critical), _load_time(v, started), done, critical,
            warnings=[f for f in failed if f["severity"] != "critical"]))
    outcomes.sort(key=lambda o: o.started_at)
    for current, following in zip(outcomes, outcomes[1:], strict=False):  # one suite ends as the next starts
        current.finished_at = following.started_at
    return outcomes


def _record(result: GateResult) -> None:
    with pg.connect("loader") as conn:
        for o in result.suites:
            summary = {"failed": o.failures, "warnings": o.warnings, "error": o.error,
                       "data_docs": result.data_docs}
            conn.execute(
                "insert into audit.validation_runs (suite, layer, target, pipeline_run, started_at,"
                " finished_at, success, expectations_evaluated, expectations_failed, results)"
                " values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (o.suite, result.layer, o.target, result.pipeline_run, o.started_at, o.finished_at,
                 o.success, o.evaluated, o.failed, json.dumps(summary, default=str)))


def run_gate(layer: str, pipeline_run: str | None = None, build_docs: bool = True,
             schema: str | None = None, sources: tuple[str, ...] | None = None) -> GateResult:
    """Validate every suite of a layer ('raw' | 'mart'), or only those of some sources, audit each, and
    raise GateFailed when any fails.

    `schema` overrides the schema validated (default: raw, or settings().mart_schema for the marts).
    A table that does not exist fails its suite (the error names it) without running GX on it.
    """
    t0, started = time.monotonic(), clock.event_time()
    layer_suites = suites(layer, sources)
    schema = schema or _default_schema(layer)
    pipeline_run = pipeline_run or f"gate-{layer}-{started:%Y%m%dT%H%M%S}"
    missing = _missing_tables(schema, [s.table for s in layer_suites])
    outcomes = {s.name: SuiteOutcome(s.name, f"{schema}.{s.table}", False, 0, 0, started, started,
                                     error=f"table {schema}.{s.table} does not exist")
                for s in layer_suites if s.table in missing}
    present = [s.table for s in layer_suites if s.table not in missing]
    if present:
        try:
            with _exclusive():
                for outcome in _validate(layer, schema, present, pipeline_run, build_docs, started):
                    outcomes[outcome.suite] = outcome
        except Exception as exc:  # GX or the database broke: the suites fail, audited, in one line
            log.exception("%s gate could not run", layer)
            first_line = (str(exc).strip().splitlines() or [""])[0][:300]
            error = f"could not validate: {type(exc).__name__}: {first_line}"
            for s in layer_suites:
                if s.table not in missing:
                    outcomes[s.name] = SuiteOutcome(s.name, f"{schema}.{s.table}", False, 0, 0, started,
                                                    clock.event_time(), error=error)
    ordered = [outcomes[s.name] for s in layer_suites]
    result = GateResult(layer, pipeline_run, all(o.success for o in ordered), ordered,
                        round(time.monotonic() - t0, 2), str(DOCS_INDEX) if build_docs and present else None)
    _record(result)
    if not result.success:
        raise GateFailed.of(result)
    return result
