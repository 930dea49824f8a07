"""Property-based: whatever an S2 page holds (random dates, Unicode in NFD or with zero-width characters,
numbers as strings, missing and extra fields, huge values), the parser and the loader never crash and never
lose a record: each is loaded or quarantined with a reason, and the counts reconcile."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from datetime import datetime

import orjson
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from psycopg import sql

from ingestion import pg
from ingestion.clock import LOCAL_TZ
from ingestion.load import SourcePage, run_load
from ingestion.sources.dossiers import DOSSIERS, DOSSIERS_ENTITY

START, END = datetime(2031, 1, 1, tzinfo=LOCAL_TZ), datetime(2031, 2, 1, tzinfo=LOCAL_TZ)  # nobody's data
UNIT = "FUZZ.1"
SOURCE = "fuzz"

chars = st.characters(codec="utf-8", exclude_characters="\x00")
text = st.one_of(
    st.text(chars, max_size=24),
    st.text(chars, max_size=12).map(lambda t: unicodedata.normalize("NFD", "Xã Hòa " + t)),
    st.sampled_from(["", " ", "\u200bH15.17", "Nguyễn\u200d Văn A", "Thủ tục " * 200]))
number = st.one_of(st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=False), st.integers(0, 12).map(str),
                   text, st.none(), st.booleans())
in_window = st.datetimes(min_value=datetime(2031, 1, 1), max_value=datetime(2031, 1, 31, 23, 59, 59)).map(
    lambda d: d.strftime("%Y%m%d%H%M%S"))
stamp = st.one_of(in_window, in_window, st.from_regex(r"\A[0-9]{14}\Z"), st.text(chars, max_size=16), number)
record = st.fixed_dictionaries(
    {"MaHoSo": st.one_of(st.from_regex(r"\AFZ-[0-9]{1,4}\Z"), text, number), "NgayCapNhat": stamp},
    optional={
        "MaTTHC": text, "MaDonVi": st.one_of(st.just(UNIT), text), "DonViXuLy": text,
        "KenhThucHien": number, "LoaiDoiTuong": number, "TrangThaiHoSo": number,
        "NgayNopHoSo": stamp, "NgayTiepNhan": stamp, "NgayHenTra": stamp, "NgayKetThucXuLy": stamp,
        "NgayTra": stamp, "DuocThanhToanTrucTuyen": number, "ChuHoSo": text, "MaDoiTuong": text,
        "SoDienThoai": number, "Email": text,
        "extra": st.dictionaries(text, number, max_size=3),
    })
# a record the loader should take, with some fields of the wild kinds above
plausible = st.fixed_dictionaries(
    {"MaHoSo": st.from_regex(r"\AFZ-[0-9]{1,4}\Z"), "NgayCapNhat": in_window, "MaDonVi": st.just(UNIT),
     "TrangThaiHoSo": st.one_of(st.integers(1, 10), st.integers(1, 10).map(str)), "NgayTiepNhan": in_window},
    optional={"MaTTHC": text, "KenhThucHien": number, "ChuHoSo": text, "SoDienThoai": number, "Email": text,
              "NgayTra": stamp, "extra": st.dictionaries(text, number, max_size=3)})
# records of both kinds, and a few items that are not records at all
items = st.tuples(st.lists(st.one_of(plausible, record), min_size=1, max_size=20),
                  st.lists(st.one_of(number, st.lists(number, max_size=2)), max_size=3)
                  ).map(lambda t: t[0] + t[1])
# one page in five carries a \u0000 somewhere (jsonb refuses it: the page is quarantined whole)
pages = st.tuples(items, st.integers(0, 4)).map(
    lambda t: [*t[0], {"MaHoSo": "FZ-1", "ChuHoSo": "a\x00b"}] if t[1] == 4 else t[0])


@pytest.fixture(scope="module")
def fuzz_unit(warehouse, landing_dir) -> Iterator[None]:
    with pg.connect("loader") as conn:
        conn.execute("insert into raw.unit_crosswalk (key_kind, source_key, unit_code, match)"
                     " values ('code', %s, %s, 'current') on conflict do nothing", (UNIT, UNIT))
    yield
    with pg.connect("loader") as conn:
        runs = sql.SQL("(select run_id from audit.extract_runs where source = {})").format(
            sql.Literal(SOURCE))
        conn.execute(sql.SQL("delete from raw.dossiers where run_id in {}").format(runs))
        conn.execute(sql.SQL("delete from quarantine.records where source = {}").format(sql.Literal(SOURCE)))
        conn.execute("delete from audit.extract_runs where source = %s", (SOURCE,))
        conn.execute("delete from raw.unit_crosswalk where source_key = %s", (UNIT,))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=pages)
def test_every_record_is_loaded_or_quarantined(fuzz_unit, content) -> None:
    body = orjson.dumps({"content": content, "number": 0, "size": 25, "totalElements": len(content),
                         "totalPages": 1})
    page = SourcePage(body, request={"path": "fuzz"}, content_key="content", context={})
    result = run_load(source=SOURCE, entity="dossiers", target=DOSSIERS, pages=[page],
                      window=DOSSIERS_ENTITY.window(START, END), window_start=START, window_end=END,
                      session={"chiso.pii_salt": "fuzz"})
    assert result.status == "success"
    event("some loaded" if result.records_loaded else "none loaded")
    assert result.records_received == result.records_loaded + result.records_quarantined
    assert result.records_received + result.details["repeats"] in (len(content), 1)  # 1: the page refused
    with pg.connect("loader") as conn:
        new = conn.execute("select count(*), count(*) filter (where record::text <> normalize(record::text,"
                           " nfc)) from raw.dossiers where run_id = %s", (result.run_id,)).fetchone()
        reasons = conn.execute("select count(*) filter (where reason = '' or reason is null),"
                               " count(*) filter (where reason like 'page not loadable%%')"
                               " from quarantine.records where last_run_id = %s", (result.run_id,)).fetchone()
    assert new[0] + result.details["already_in_raw"] == result.records_loaded and new[1] == 0
    assert reasons[0] == 0
    if result.records_received + result.details["repeats"] != len(content):
        assert reasons[1] == 1 and result.records_quarantined == 1
