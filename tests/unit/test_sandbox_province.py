"""The sandbox province's generator: deterministic, realistic volumes and lifecycles, messy on purpose,
bounded memory."""

from __future__ import annotations

import tracemalloc
import unicodedata
from collections import Counter
from datetime import date, timedelta

import numpy as np
import pytest

from ingestion import reference
from ingestion.sandbox import dvcqg
from ingestion.sandbox import province as pv

START = date(2026, 6, 1)
AT = pv.to_ts(date(2026, 10, 15)) + 12 * 3600  # a Thursday noon


@pytest.fixture(scope="module")
def province() -> pv.Province:
    return pv.Province(seed=766, dossiers_per_day=2500, start=START)


@pytest.fixture(scope="module")
def september(province: pv.Province) -> list[dict]:
    """Every dossier whose NgayCapNhat is in 10-16 September, as of AT."""
    first, end = pv.to_ts(date(2026, 9, 10)), pv.to_ts(date(2026, 9, 17))
    return province.records(province.window_index(first, end, AT), AT)


def test_same_seed_same_data_other_seed_other_data(province: pv.Province) -> None:
    first, end = pv.to_ts(date(2026, 9, 8)), pv.to_ts(date(2026, 9, 9))
    again = pv.Province(seed=766, dossiers_per_day=2500, start=START)
    a, b = province.window_index(first, end, AT), again.window_index(first, end, AT)
    assert len(a) > 1000
    assert np.array_equal(a, b) and province.records(a[:200], AT) == again.records(b[:200], AT)
    other = pv.Province(seed=1, dossiers_per_day=2500, start=START)
    assert other.records(other.window_index(first, end, AT)[:50], AT) != province.records(a[:50], AT)


def test_daily_volume_weekday_pattern_holidays_and_month_end(province: pv.Province) -> None:
    def mean(days: list[date]) -> float:
        return sum(province.count(d) for d in days) / len(days)

    days = [START + timedelta(days=k) for k in range(120)]
    weekdays = [d for d in days if pv.is_working_day(d) and 3 < d.day < 25]
    assert 2500 * 1.15 < mean(weekdays) < 2500 * 1.45
    assert mean([d for d in days if d.weekday() == 5]) < 0.4 * mean(weekdays)
    assert mean([d for d in days if d.weekday() == 6]) < 0.1 * mean(weekdays)
    assert province.count(date(2026, 9, 2)) == 0  # National Day
    assert province.count(date(2026, 2, 17)) == 0  # Tết
    assert province.count(date(2026, 5, 31)) == 0  # before the history starts
    month_end = [d for d in days if pv.is_working_day(d) and d.day >= 28]
    assert mean(month_end) > 1.2 * mean(weekdays)
    total = province.count_between(START, START + timedelta(days=89))
    assert 0.85 * 2500 * 90 < total < 1.05 * 2500 * 90


def test_window_is_sorted_by_update_then_id_and_windows_add_up(province: pv.Province, september) -> None:
    keys = [(r["NgayCapNhat"], r["MaHoSo"]) for r in september]
    assert keys == sorted(keys) and len({r["MaHoSo"] for r in september}) == len(september)
    assert all("20260910000000" <= r["NgayCapNhat"] < "20260917000000" for r in september)
    mid = pv.to_ts(date(2026, 9, 13)) + 3600 * 9 + 17  # any cut: [a, mid) + [mid, b) = [a, b)
    left = province.window_index(pv.to_ts(date(2026, 9, 10)), mid, AT)
    right = province.window_index(mid, pv.to_ts(date(2026, 9, 17)), AT)
    assert len(left) + len(right) == len(september)


def test_status_mix_and_lifecycles(province: pv.Province) -> None:
    first, end = pv.to_ts(date(2026, 10, 1)), AT + 1
    recs = province.records(province.window_index(first, end, AT), AT)
    status = Counter(r["TrangThaiHoSo"] for r in recs)
    assert set(range(1, 11)) <= set(status)  # all ten states are present on a working day
    done = [r for r in recs if r["TrangThaiHoSo"] in (3, 7, 8, 9, 10)]
    assert status[10] > status[9] > status[3] > status[8] and status[7] > status[8]
    assert 0.005 < status[3] / len(done) < 0.03
    sups = [r for r in recs if r["DanhSachHoSoBoSung"]]
    assert any(len(r["DanhSachHoSoBoSung"]) > 1 for r in sups)
    back = [s for r in sups for s in r["DanhSachHoSoBoSung"] if s["NgayTiepNhanBoSung"]]
    assert back and all(s["NgayHenTraMoi"] > s["NgayHenTraTruoc"] for s in back)
    returned = [r for r in recs if r["TrangThaiHoSo"] == 10 and r["NgayTra"]]
    assert returned and all(r["NgayTra"] >= r["NgayKetThucXuLy"] for r in returned if r["NgayKetThucXuLy"])
    assert {r["KenhThucHien"] for r in recs} == {1, 2, 3}
    assert {r["DuocThanhToanTrucTuyen"] for r in recs} == {0, 1, 2}
    links = [g["DuongDanTepTinKetQua"] for r in recs for g in r["DanhSachGiayToKetQua"]]
    assert any(links) and None in links
    assert any(f["DuocLayTuKhoDMQG"] for r in recs for f in r["TaiLieuNop"])
    assert any(r["TaiKhoanDuocXacThucVoiVNeID"] for r in recs)
    assert all(r["NgayCapNhat"] <= pv.fmt(AT) for r in recs)


def test_due_dates_fall_on_working_days_after_receipt(september) -> None:
    plain = [r for r in september if r["NgayHenTra"] and not r["DanhSachHoSoBoSung"]]
    impossible = [r for r in plain if r["NgayHenTra"] < r["NgayTiepNhan"]]  # on purpose, for quarantine
    assert 0 < len(impossible) <= len(plain) * 0.002
    dues = {r["NgayHenTra"][:8] for r in plain if r not in impossible}
    assert all(pv.is_working_day(date(int(d[:4]), int(d[4:6]), int(d[6:]))) for d in dues)


def test_some_communes_are_chronically_late_most_are_on_time(province: pv.Province) -> None:
    ok, n = Counter(), Counter()
    for lv in province.iter_days(date(2026, 8, 1), date(2026, 8, 31)):
        end = lv.events[:, pv.END]
        finished = (end >= 0) & np.isin(lv.end_status, (8, 9))
        on_time = (end <= pv._final_due(lv)) & (lv.events[:, 5] < 0)  # two supplements count as late
        for unit, good in zip(lv.unit[finished].tolist(), on_time[finished].tolist(), strict=True):
            ok[unit] += good
            n[unit] += 1
    rate = {province.units[u].name: ok[u] / n[u] for u in n}
    late = [name for name, r in rate.items() if r < 0.93]
    chronic = {u.name for u in pv.chronic_late()}
    assert 5 <= len(chronic) <= 8 and chronic <= set(late) and len(late) <= 10
    assert all(0.75 < rate[name] < 0.94 for name in chronic)
    assert sum(r >= 0.97 for r in rate.values()) >= 0.7 * len(rate)


def test_realistic_mess_is_present_in_small_shares(september) -> None:
    n = len(september)
    nfd = sum(r["ChuHoSo"] != unicodedata.normalize("NFC", r["ChuHoSo"]) for r in september)
    empty = sum(r["NgayTra"] == "" or r["Email"] == "" for r in september)
    impossible = [r for r in september if r["MaDonVi"] == "H15.999" or r["TrangThaiHoSo"] not in range(1, 11)
                  or (r["NgayHenTra"] and r["NgayTiepNhan"] and r["NgayHenTra"] < r["NgayTiepNhan"])]
    assert 0.01 * n < nfd < 0.05 * n and 0.03 * n < empty < 0.12 * n
    assert 0.001 * n < len(impossible) < 0.006 * n


def test_old_unit_codes_before_the_merger_map_to_one_commune() -> None:
    p = pv.Province(seed=766, dossiers_per_day=1500, start=date(2025, 5, 1))
    at = pv.to_ts(date(2025, 6, 20))
    recs = p.records(p.window_index(pv.to_ts(date(2025, 6, 1)), at, at), at)
    old_codes = {}
    for c in reference.daklak_communes():
        kinds = c["merge_types"].split(";")
        for code, kind in zip(c["merged_from_old_codes"].split(";"), kinds, strict=True):
            if kind == "full":
                old_codes[code] = c["commune_code_2025"]
    current = {u.code for u in p.units}
    old = [r for r in recs if r["MaDonVi"] not in current and r["MaDonVi"] != "H15.999"]
    by_code = [r for r in old if r["MaDonVi"].isdigit()]
    assert 0.02 * len(recs) < len(old) < 0.06 * len(recs)
    assert by_code and all(r["MaDonVi"] in old_codes for r in by_code)
    assert any(r["MaDonVi"].startswith(("Xã ", "Phường ", "Thị trấn ")) for r in old)


def test_units_and_catalogue_match_s1_and_the_reference() -> None:
    p = pv.Province(start=START)
    rows = p.unit_rows()
    s1 = {u.code: u.name for u in dvcqg.units("H15")}
    assert len(rows) == 119 and rows[0]["CapDonVi"] == "TINH"
    assert {r["MaDonVi"]: r["TenDonVi"] for r in rows[1:]} == s1
    communes = [r for r in rows if r["CapDonVi"] == "XA"]
    codes = [c["commune_code_2025"] for c in reference.daklak_communes()]
    assert [r["MaHanhChinh"] for r in communes] == codes
    assert sum(r["CapDonVi"] == "SO_NGANH" and r["MaHanhChinh"] is None for r in rows) == 16
    cat = [x.catalogue_row() for x in p.procedures]
    assert len(cat) == 2168 and len({r["MaTTHC"] for r in cat}) == 2168
    assert sum(r["TichHopDVCQG"] for r in cat) == 1946
    assert all((r["MucDoDVC"] != "KHONG") == r["TichHopDVCQG"] for r in cat)
    assert {r["CapThucHien"] for r in cat} == {"TINH", "XA"} and {r["TrangThai"] for r in cat} == {
        "HIEU_LUC", "BAI_BO"}


def test_time_moves_dossiers_on(province: pv.Province) -> None:
    first, end = pv.to_ts(date(2026, 10, 12)), pv.to_ts(date(2026, 10, 13))
    before = province.window_index(first, end, AT)
    later = province.window_index(first, end, AT + 7 * pv.DAY)
    assert 0 < len(later) < len(before)  # dossiers that changed since left the window


def test_feedback_and_ratings_volumes() -> None:
    p = pv.Province(seed=766, dossiers_per_day=2500, start=START)
    fb = pv.Feedback(p)
    first, end = pv.to_ts(date(2026, 9, 1)), pv.to_ts(date(2026, 10, 1))
    at = pv.to_ts(date(2026, 11, 15))
    ratings = fb.ratings(fb.ratings_index(first, end, at))
    finished = sum(((lv.end_status == 9) & (lv.events[:, pv.END] >= 0)).sum()
                   for lv in p.iter_days(date(2026, 8, 28), date(2026, 9, 28)))
    assert 0.10 * finished < len(ratings) < 0.20 * finished
    levels = Counter(r["MucDo"] for r in ratings)
    assert levels[1] + levels[2] > 0.85 * len(ratings) and levels[3] > 0
    petitions = fb.feedback(fb.feedback_index(pv.to_ts(date(2026, 6, 1)), at, at), at)
    per_unit_month = len(petitions) / 118 / 5.5
    assert 1 < per_unit_month < 10
    assert {r["TrangThai"] for r in petitions} >= {"DA_XU_LY", "TU_CHOI", "DANG_XU_LY"}
    overdue = [r for r in petitions if (r["NgayXuLy"] or "99") > r["HanXuLy"]]
    assert 0.05 * len(petitions) < len(overdue) < 0.4 * len(petitions)
    assert any(r["MaHoSo"] for r in petitions)


def test_centres_have_snapshots_with_gaps() -> None:
    c = pv.Centres(pv.Province(start=START))
    assert len(c.list) == 103 and c.rows()[0].keys() == {"MaTrungTam", "MaDonVi", "TenTrungTam", "SoCamera",
                                                          "SoQuay"}
    first, end = pv.to_ts(date(2026, 9, 7)), pv.to_ts(date(2026, 9, 21))
    idx = c.index(first, end, end + pv.DAY)
    per = Counter(centre for _, centre in idx)
    full = 14 * (pv.LAST_HOUR - pv.FIRST_HOUR + 1)
    flaky = [k for k, x in enumerate(c.list) if x.flaky]
    assert len(flaky) == 5 and all(per[k] < full for k in flaky)
    assert sum(per[k] == full for k in range(103)) > 60
    snap = c.snapshot(*idx[500])
    assert snap["ThoiDiem"].endswith("+07:00") and snap["CameraTrucTuyen"] <= c.list[idx[500][1]].cameras


def test_a_million_dossiers_stream_in_bounded_memory() -> None:
    p = pv.Province(seed=766, dossiers_per_day=11_200, start=START)
    tracemalloc.start()
    try:
        n = 0
        for lv in p.iter_days(START, START + timedelta(days=89)):
            upd, _ = lv.as_of(AT)
            n += int((upd >= 0).sum())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert n > 1_000_000 and peak < 60 * 2**20  # one day's arrays at a time, not the million
