"""S3: the provincial feedback system -> raw.feedback (PAKN) and raw.ratings (satisfaction ratings).

Same auth and paging as S2. Units are checked against raw.unit_crosswalk, which the S2 extract builds.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from ingestion import connections
from ingestion.config import settings
from ingestion.http import HttpClient
from ingestion.load import Target
from ingestion.sources.provincial import (
    NOT_OBJECT,
    Entity,
    Extraction,
    OAuthClient,
    bad_local_ts,
    fields,
    load_entity,
    local_ts,
    require_crosswalk,
    text,
    unit,
)

SOURCE = "feedback"
UNIT = unit("MaDonVi")
# Typed checks (after typing, over the typed columns): each value is computed once.
UNKNOWN_UNIT = ("unknown unit (not in /units nor the pre-merger crosswalk)", "ma_don_vi is null")
UPDATED = ("NgayCapNhat missing or impossible", "ngay_cap_nhat is null")

FEEDBACK = Target(
    table="raw.feedback",
    columns={
        "ma_pakn": text("MaPAKN"), "ngay_cap_nhat": local_ts("NgayCapNhat"), "ma_don_vi": UNIT,
        "ma_don_vi_nguon": text("MaDonVi"), "ma_ho_so": text("MaHoSo"), "phan_loai": text("PhanLoai"),
        "trang_thai": text("TrangThai"), "ngay_tiep_nhan": local_ts("NgayTiepNhan"),
        "han_xu_ly": local_ts("HanXuLy"), "ngay_xu_ly": local_ts("NgayXuLy"),
        "so_luot_thich": "raw.int_or_null(r->>'SoLuotThich')",
        "so_luot_khong_thich": "raw.int_or_null(r->>'SoLuotKhongThich')",
        "tiep_tuc_phan_anh": "case jsonb_typeof(r->'TiepTucPhanAnh') when 'boolean'"
                             " then (r->>'TiepTucPhanAnh')::boolean end",
    },
    key=("ma_pakn", "ngay_cap_nhat"),
    derived=fields("NgayCapNhat", "NgayTiepNhan", "HanXuLy", "NgayXuLy"),
    checks=(NOT_OBJECT, ("MaPAKN missing", "coalesce(r->>'MaPAKN', '') = ''")),
    typed_checks=(
        UPDATED,
        ("impossible date", bad_local_ts({"ngay_tiep_nhan": "NgayTiepNhan", "han_xu_ly": "HanXuLy",
                                          "ngay_xu_ly": "NgayXuLy"})),
        ("status out of range (TrangThai)",
         "coalesce(r->>'TrangThai', '') not in ('MOI', 'DANG_XU_LY', 'DA_XU_LY', 'TU_CHOI')"),
        ("category out of range (PhanLoai)",
         "coalesce(r->>'PhanLoai', '') not in ('', 'TTHC', 'CBCC', 'KHAC')"),
        ("deadline before the received date", "han_xu_ly < ngay_tiep_nhan"),
        UNKNOWN_UNIT,
    ),
    record_key="r->>'MaPAKN'",
    repeats=True,
    conflict_key=("ma_pakn", "ngay_cap_nhat"),
    history=True,
)

RATINGS = Target(
    table="raw.ratings",
    columns={
        "ma_danh_gia": text("MaDanhGia"), "ngay_cap_nhat": local_ts("NgayCapNhat"),
        "ma_ho_so": text("MaHoSo"), "ma_don_vi": UNIT, "ma_don_vi_nguon": text("MaDonVi"),
        "muc_do": "raw.smallint_or_null(r->>'MucDo')", "ngay_danh_gia": local_ts("NgayDanhGia"),
    },
    key=("ma_danh_gia", "ngay_cap_nhat"),
    derived=fields("NgayCapNhat", "NgayDanhGia"),
    checks=(NOT_OBJECT, ("MaDanhGia missing", "coalesce(r->>'MaDanhGia', '') = ''")),
    typed_checks=(
        UPDATED,
        ("impossible date", bad_local_ts({"ngay_danh_gia": "NgayDanhGia"})),
        ("rating out of range (MucDo 1-3)", "coalesce(muc_do, 0) not between 1 and 3"),
        UNKNOWN_UNIT,
    ),
    record_key="r->>'MaDanhGia'",
    repeats=True,
    conflict_key=("ma_danh_gia", "ngay_cap_nhat"),
    history=True,
)

FEEDBACK_ENTITY = Entity(SOURCE, "feedback", "/api/v1/feedback", FEEDBACK, "r->>'MaPAKN'",
                         time_field="NgayCapNhat", time_column="ngay_cap_nhat")
RATINGS_ENTITY = Entity(SOURCE, "ratings", "/api/v1/ratings", RATINGS, "r->>'MaDanhGia'",
                        time_field="NgayCapNhat", time_column="ngay_cap_nhat")


def client(base_url: str | None = None, **http_options: Any) -> OAuthClient:
    endpoint = connections.source(SOURCE)
    return OAuthClient(HttpClient(SOURCE, base_url or endpoint.base_url, **http_options),
                       endpoint.login, endpoint.secret)


def extract(start: date | datetime | None = None, end: date | datetime | None = None, *,
            run_label: str | None = None, base_url: str | None = None, page_size: int | None = None,
            **http_options: Any) -> dict[str, Any]:
    """Feedback and ratings updated in [start, end) (same window rules as dossiers.extract)."""
    require_crosswalk(SOURCE)
    out = Extraction(SOURCE, run_label)
    size = page_size or settings().provincial_page_size
    api = client(base_url, **http_options)
    try:
        for entity in (FEEDBACK_ENTITY, RATINGS_ENTITY):
            load_entity(api, entity, out, size=size, start=start, end=end)
    finally:
        api.close()
    return out.as_dict()
