"""S2: the provincial dossier system -> raw.units (+ raw.unit_crosswalk), raw.procedures, raw.dossiers.

`extract(start, end)` reads the unit list (and rebuilds the unit crosswalk in the same transaction), the
procedure catalogue, then the dossiers updated in [start, end) (default: incrementally from the watermark).
Personal data (ChuHoSo, MaDoiTuong, SoDienThoai, Email) is split off in SQL at load time into columns only
the loader reads; `applicant_hash` = sha256(pii_salt || MaDoiTuong) is what later layers may keep.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import orjson
import psycopg

from ingestion import connections, reference
from ingestion.config import credentials, settings
from ingestion.http import HttpClient
from ingestion.load import RunResult, Target
from ingestion.sources.provincial import (
    NOT_OBJECT,
    Entity,
    Extraction,
    OAuthClient,
    bad_local_ts,
    fields,
    load_entity,
    local_ts,
    text,
    unit,
)

SOURCE = "dossiers"
PII = ("ChuHoSo", "MaDoiTuong", "SoDienThoai", "Email")
WITHOUT_PII = "r - '{" + ",".join(PII) + "}'::text[]"  # one pass over the record, not one per key
DATES = ("NgayNopHoSo", "NgayTiepNhan", "NgayHenTra", "NgayKetThucXuLy", "NgayTra")
UNIT = unit("MaDonVi", "DonViXuLy")


def _int(field: str) -> str:
    """A small integer field; null when empty, not an integer or beyond smallint (never an error)."""
    return f"raw.smallint_or_null(r->>'{field}')"


def _bool(field: str) -> str:
    return f"case jsonb_typeof(r->'{field}') when 'boolean' then (r->>'{field}')::boolean end"


UNITS = Target(
    table="raw.units",
    columns={"ma_don_vi": text("MaDonVi"), "ten_don_vi": text("TenDonVi"), "cap_don_vi": text("CapDonVi"),
             "ma_don_vi_cha": text("MaDonViCha"), "ma_hanh_chinh": text("MaHanhChinh")},
    key=("ma_don_vi",),
    checks=(NOT_OBJECT,),
    record_key="r->>'MaDonVi'",
)

PROCEDURES = Target(
    table="raw.procedures",
    columns={
        "ma_tthc": text("MaTTHC"), "ten_tthc": text("TenTTHC"), "ma_linh_vuc": text("MaLinhVuc"),
        "cap_thuc_hien": text("CapThucHien"), "muc_do_dvc": text("MucDoDVC"),
        "tich_hop_dvcqg": _bool("TichHopDVCQG"), "co_phi_le_phi": _bool("CoPhiLePhi"),
        "thoi_han_giai_quyet_ngay": "case when r->>'ThoiHanGiaiQuyetNgay' ~ '^\\d{1,6}(\\.\\d+)?$'"
                                    " then (r->>'ThoiHanGiaiQuyetNgay')::numeric end",
        "ngay_cong_bo": f"coalesce({local_ts('NgayCongBo')}, raw.iso_ts(r->>'NgayCongBo'))",
        "trang_thai": text("TrangThai"),
    },
    key=("ma_tthc",),
    checks=(NOT_OBJECT,),
    derived=fields("NgayCongBo"),
    record_key="r->>'MaTTHC'",
    repeats=True,
)

# Each date field's text is read once (derived) and typed once; the checks then read the typed columns.
_DATE_COLUMNS = dict(zip(("ngay_nop_ho_so", "ngay_tiep_nhan", "ngay_hen_tra", "ngay_ket_thuc_xu_ly",
                          "ngay_tra"), DATES, strict=True))
DOSSIERS = Target(
    table="raw.dossiers",
    derived=fields("NgayCapNhat", *DATES),
    columns={
        "ma_ho_so": text("MaHoSo"),
        "ngay_cap_nhat": local_ts("NgayCapNhat"),
        "ma_tthc": text("MaTTHC"),
        "ma_linh_vuc": text("MaLinhVuc"),
        "ma_don_vi": UNIT,
        "ma_don_vi_nguon": text("MaDonVi"),
        "kenh_thuc_hien": _int("KenhThucHien"),
        "loai_doi_tuong": _int("LoaiDoiTuong"),
        "trang_thai": _int("TrangThaiHoSo"),
        **{col: local_ts(f) for col, f in _DATE_COLUMNS.items()},
        "duoc_thanh_toan_truc_tuyen": _int("DuocThanhToanTrucTuyen"),
        # the salt is a session setting of the load (never stored); staging keeps only this hash
        "applicant_hash": "case when nullif(r->>'MaDoiTuong', '') is not null then encode(sha256(convert_to("
                          "current_setting('chiso.pii_salt') || (r->>'MaDoiTuong'), 'UTF8')), 'hex') end",
        "chu_ho_so": text("ChuHoSo"),
        "ma_doi_tuong": text("MaDoiTuong"),
        "so_dien_thoai": text("SoDienThoai"),
        "email": text("Email"),
    },
    key=("ma_ho_so", "ngay_cap_nhat"),
    checks=(
        NOT_OBJECT,
        ("MaHoSo missing", "coalesce(r->>'MaHoSo', '') = ''"),
    ),
    typed_checks=(
        ("NgayCapNhat missing or impossible", "ngay_cap_nhat is null"),
        ("impossible date", bad_local_ts(_DATE_COLUMNS)),
        ("status out of range (TrangThaiHoSo 1-10)", "coalesce(trang_thai, 0) not between 1 and 10"),
        ("due date before the received date", "ngay_hen_tra < ngay_tiep_nhan"),
        ("unknown unit (not in /units nor the pre-merger crosswalk)", "ma_don_vi is null"),
    ),
    record_key="r->>'MaHoSo'",
    record=WITHOUT_PII,
    # quarantine is readable by dbt and the dashboards' role; a rejected record may not be an object
    quarantine_record=f"case jsonb_typeof(r) when 'object' then {WITHOUT_PII} else r end",
    repeats=True,
    conflict_key=("ma_ho_so", "ngay_cap_nhat"),
    history=True,  # raw keeps every version received; staging takes the newest
)

UNITS_ENTITY = Entity(SOURCE, "units", "/api/v1/units", UNITS, "r->>'MaDonVi'")
PROCEDURES_ENTITY = Entity(SOURCE, "procedures", "/api/v1/procedures", PROCEDURES, "r->>'MaTTHC'")
DOSSIERS_ENTITY = Entity(SOURCE, "dossiers", "/api/v1/dossiers", DOSSIERS, "r->>'MaHoSo'",
                         time_field="NgayCapNhat", time_column="ngay_cap_nhat")


# --- the unit crosswalk ----------------------------------------------------------------------------------

_STRIP = "regexp_replace(lower({}), '^(xã|phường|thị trấn)\\s+', '')"
CROSSWALK_SQL = f"""
delete from raw.unit_crosswalk;
insert into raw.unit_crosswalk (key_kind, source_key, unit_code, commune_code, match, run_id)
select 'code', ma_don_vi, ma_don_vi, ma_hanh_chinh, 'current', %(run)s from raw.units
union all
select 'code', ma_hanh_chinh, ma_don_vi, ma_hanh_chinh, 'commune_code', %(run)s from raw.units
where ma_hanh_chinh is not null
on conflict do nothing;
with old as (
    select * from jsonb_to_recordset(%(old)s::jsonb) as x (old_code text, old_name text, merge_type text,
                                                           commune_code text, commune_name text, area numeric)
), ranked as (
    select old.*, u.ma_don_vi, count(*) over (partition by old_code) as successors,
           case when old.commune_code = old_code then 'kept the old code'
                when {_STRIP.format('commune_name')} = {_STRIP.format('old_name')} then 'same name'
                else 'largest area' end as why,
           row_number() over (partition by old_code order by (old.commune_code = old_code) desc,
                              {_STRIP.format('commune_name')} = {_STRIP.format('old_name')} desc,
                              area desc nulls last, old.commune_code) as rn
    from old join raw.units u on u.ma_hanh_chinh = old.commune_code
)
insert into raw.unit_crosswalk (key_kind, source_key, unit_code, commune_code, match, rule, run_id)
select 'code', old_code, ma_don_vi, commune_code, 'pre_merger_' || merge_type,
       case when successors > 1 then why end, %(run)s
from ranked where rn = 1
on conflict do nothing;
-- names: current units first (they win a clash), then pre-merger names that belong to one old unit only
insert into raw.unit_crosswalk (key_kind, source_key, unit_code, commune_code, match, run_id)
select distinct on (lower(ten_don_vi)) 'name', lower(ten_don_vi), ma_don_vi, ma_hanh_chinh, 'current', %(run)s
from raw.units u
where ten_don_vi is not null
  and (select count(*) from raw.units v where lower(v.ten_don_vi) = lower(u.ten_don_vi)) = 1
on conflict do nothing;
insert into raw.unit_crosswalk (key_kind, source_key, unit_code, commune_code, match, rule, run_id)
select 'name', lower(o.name), x.unit_code, x.commune_code, 'pre_merger_name', x.rule, %(run)s
from (select min(old_name) as name, min(old_code) as code
      from jsonb_to_recordset(%(old)s::jsonb) as y (old_code text, old_name text)
      group by lower(old_name) having count(distinct old_code) = 1) o
join raw.unit_crosswalk x on x.key_kind = 'code' and x.source_key = o.code
on conflict do nothing;
"""


def old_units() -> list[dict[str, Any]]:
    """Pre-merger units from the reference list of communes: one row per (old unit, new commune)."""
    rows = []
    for c in reference.daklak_communes():
        parts = zip(c["merged_from_old_codes"].split(";"), c["merged_from_old_names"].split(";"),
                    c["merge_types"].split(";"), strict=True)
        for code, name, kind in parts:
            rows.append({"old_code": code.strip(), "old_name": name.strip(), "merge_type": kind.strip(),
                         "commune_code": c["commune_code_2025"], "commune_name": c["commune_name_2025"],
                         "area": float(c["area_km2"]) if c["area_km2"] else None})
    return rows


def build_crosswalk(conn: psycopg.Connection, result: RunResult) -> None:
    """Inside the units load's transaction: raw.unit_crosswalk follows raw.units exactly."""
    old = orjson.dumps(old_units()).decode()
    for statement in filter(str.strip, CROSSWALK_SQL.split(";\n")):  # one statement per call (parameters)
        conn.execute(statement, {"run": result.run_id, "old": old})
    result.details["crosswalk_rows"] = conn.execute("select count(*) from raw.unit_crosswalk").fetchone()[0]


# --- extract ----------------------------------------------------------------------------------------------


def client(base_url: str | None = None, **http_options: Any) -> OAuthClient:
    endpoint = connections.source(SOURCE)
    return OAuthClient(HttpClient(SOURCE, base_url or endpoint.base_url, **http_options),
                       endpoint.login, endpoint.secret)


def extract(start: date | datetime | None = None, end: date | datetime | None = None, *,
            run_label: str | None = None, base_url: str | None = None, page_size: int | None = None,
            **http_options: Any) -> dict[str, Any]:
    """Units (+ crosswalk), procedures, then the dossiers updated in [start, end): dates are whole local days
    (end included), datetimes exact (end excluded); no start: from the watermark less an overlap; no end: now.
    An explicit window is a back-fill: it never moves the watermark back. Raises on the first entity that
    fails (its audit row 'failed', its raw rows and watermark untouched)."""
    out = Extraction(SOURCE, run_label)
    size = page_size or settings().provincial_page_size
    api = client(base_url, **http_options)
    try:
        load_entity(api, UNITS_ENTITY, out, size=size, on_commit=build_crosswalk)
        load_entity(api, PROCEDURES_ENTITY, out, size=size)
        load_entity(api, DOSSIERS_ENTITY, out, size=size, start=start, end=end,
                    session={"chiso.pii_salt": credentials()["pii_salt"]})
    finally:
        api.close()
    return out.as_dict()
