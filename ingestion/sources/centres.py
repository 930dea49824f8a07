"""S4: service-centre monitoring -> raw.centres (the list) and raw.centre_snapshots (hourly, by ThoiDiem).

API key in `X-Api-Key`. Snapshots have no stated order in the contract, so they are paged by number (with
the same completeness check and re-read as the others); a missing hour is data, nothing is filled in.
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
    ApiKeyClient,
    Entity,
    Extraction,
    load_entity,
    require_crosswalk,
    text,
    unit,
)

SOURCE = "centres"
UNIT = unit("MaDonVi")


def _int(field: str) -> str:
    return f"raw.int_or_null(r->>'{field}')"


def _num(field: str) -> str:
    return f"case when r->>'{field}' ~ '^\\d{{1,9}}(\\.\\d+)?$' then (r->>'{field}')::numeric end"


def _not_count(*fields: str) -> str:
    """True when a field has a value that is not a non-negative number."""
    return " or ".join(f"(coalesce(r->>'{f}', '') <> '' and r->>'{f}' !~ '^\\d{{1,9}}(\\.\\d+)?$')"
                       for f in fields)


CENTRES = Target(
    table="raw.centres",
    columns={"ma_trung_tam": text("MaTrungTam"), "ma_don_vi": UNIT, "ma_don_vi_nguon": text("MaDonVi"),
             "ten_trung_tam": text("TenTrungTam"), "so_camera": _int("SoCamera"), "so_quay": _int("SoQuay")},
    key=("ma_trung_tam",),
    checks=(NOT_OBJECT, ("unknown unit (not in /units nor the pre-merger crosswalk)", f"{UNIT} is null")),
    record_key="r->>'MaTrungTam'",
    repeats=True,
)

SNAPSHOTS = Target(
    table="raw.centre_snapshots",
    columns={
        "ma_trung_tam": text("MaTrungTam"), "thoi_diem": "raw.iso_ts(r->>'ThoiDiem')",
        "camera_truc_tuyen": _int("CameraTrucTuyen"), "quay_hoat_dong": _int("QuayHoatDong"),
        "so_phieu_cap": _int("SoPhieuCap"), "thoi_gian_cho_tb": _num("ThoiGianChoTB"),
        "thoi_gian_cho_max": _num("ThoiGianChoMax"),
    },
    key=("ma_trung_tam", "thoi_diem"),
    checks=(
        NOT_OBJECT,
        ("MaTrungTam missing", "coalesce(r->>'MaTrungTam', '') = ''"),
        ("ThoiDiem missing or impossible", "raw.iso_ts(r->>'ThoiDiem') is null"),
        ("a count or time is not a non-negative number",
         _not_count("CameraTrucTuyen", "QuayHoatDong", "SoPhieuCap", "ThoiGianChoTB", "ThoiGianChoMax")),
        ("unknown centre", "not exists (select from raw.centres c where c.ma_trung_tam = r->>'MaTrungTam')"),
    ),
    record_key="concat_ws('@', r->>'MaTrungTam', r->>'ThoiDiem')",
    repeats=True,
    conflict_key=("ma_trung_tam", "thoi_diem"),
)

CENTRES_ENTITY = Entity(SOURCE, "centres", "/api/v1/centres", CENTRES, "r->>'MaTrungTam'")
SNAPSHOTS_ENTITY = Entity(SOURCE, "snapshots", "/api/v1/centres/snapshots", SNAPSHOTS,
                          "concat_ws('@', r->>'MaTrungTam', raw.iso_ts(r->>'ThoiDiem'))",
                          time_field="ThoiDiem", time_format="iso", time_column="thoi_diem",
                          params=("from", "to"), keyset=False)


def client(base_url: str | None = None, **http_options: Any) -> ApiKeyClient:
    endpoint = connections.source(SOURCE)
    return ApiKeyClient(HttpClient(SOURCE, base_url or endpoint.base_url,
                                   headers={"X-Api-Key": endpoint.secret}, **http_options))


def extract(start: date | datetime | None = None, end: date | datetime | None = None, *,
            run_label: str | None = None, base_url: str | None = None, page_size: int | None = None,
            **http_options: Any) -> dict[str, Any]:
    """The centre list, then the snapshots taken in [start, end) (same window rules as dossiers.extract)."""
    require_crosswalk(SOURCE)
    out = Extraction(SOURCE, run_label)
    size = page_size or settings().provincial_page_size
    api = client(base_url, **http_options)
    try:
        load_entity(api, CENTRES_ENTITY, out, size=size)
        load_entity(api, SNAPSHOTS_ENTITY, out, size=size, start=start, end=end)
    finally:
        api.close()
    return out.as_dict()
