"""The S1 sandbox's official unit scores come from the S2 sandbox's dossiers: a unit's figures equal a hand
count over the dossier records S2 serves; the unsynced units' figures differ from it."""

from __future__ import annotations

import unicodedata
from datetime import date

import pytest

from ingestion.sandbox import dvcqg as sb
from ingestion.sandbox import official
from ingestion.sandbox import province as pv

AS_OF = "2026-10-01T06:00:00+07:00"
SCALE = {"dossiers_per_day": 150, "history_days": 45, "as_of": AS_OF}
MONTH = (2026, 9)


@pytest.fixture(scope="module")
def scores() -> official.OfficialScores:
    return official.OfficialScores(**SCALE)


@pytest.fixture(scope="module")
def records(scores) -> list[dict]:
    """Every dossier as the S2 sandbox serves it at the clock (newest version)."""
    p, at = scores.province, scores.now()
    keys = p.window_index(p.start.toordinal() * pv.DAY, at + 1, at)
    return p.records(keys, at)


def _served(unit_code: str, endpoint: str, scores: official.OfficialScores | None) -> dict:
    """The unit's row of a group endpoint for the month, through the sandbox's API answer."""
    body = {"timeType": "month", "year": MONTH[0], "month": MONTH[1],
            "rootDepartmentId": sb.province("H15").id, "currentPage": 1, "pageSize": 200}
    data = sb.answer(f"/api/v1/reporting/evaluation/{endpoint}", body, today=date(2026, 10, 1),
                     official=scores)["data"]
    rows = data.get("evaluation") or data.get("children")
    return next(r for r in rows if r["departmentCode"] == unit_code)


def _metric(row: dict, code: str) -> dict:
    return next(m for m in row["metrics"] if m["code"] == code)


def _hand_count(records: list[dict], unit_code: str, desk_weight: int = 1) -> dict[str, int]:
    """Dossiers received in the month by the unit (an unknown unit code "H15.999" is known by the unit's
    name), not withdrawn, not impossible, desk ones weighted."""
    out = dict.fromkeys(("received", "online", "with_fee", "paid_online", "digitised", "data_store"), 0)
    prefix = f"{MONTH[0]}{MONTH[1]:02d}"
    name = next(u.name for u in sb.units("H15") if u.code == unit_code)
    for r in records:
        mine = r["MaDonVi"] == unit_code or (
            r["MaDonVi"] == "H15.999" and unicodedata.normalize("NFC", r["DonViXuLy"]) == name)
        if not mine or not (r["NgayTiepNhan"] or "").startswith(prefix):
            continue
        impossible = not 1 <= r["TrangThaiHoSo"] <= 10 or r["NgayHenTra"] < r["NgayTiepNhan"]
        if r["TrangThaiHoSo"] == 7 or impossible:
            continue
        online = r["KenhThucHien"] == 2
        w = 1 if online else desk_weight
        fee = any(f["Gia"] > 0 for f in r["DanhSachLePhi"])
        out["received"] += w
        out["online"] += w * online
        out["with_fee"] += w * fee
        out["paid_online"] += w * (fee and r["DuocThanhToanTrucTuyen"] in (1, 2))
        out["digitised"] += w * any(t["DuocSoHoa"] == 1 for t in r["TaiLieuNop"])
        out["data_store"] += w * any(t["DuocLayTuKhoDMQG"] == 1 for t in r["TaiLieuNop"])
    return out


def _check(records, scores, unit_code: str, desk_weight: int) -> None:
    hand = _hand_count(records, unit_code, desk_weight)
    assert hand["received"] > 20  # enough dossiers for the figures to mean something
    c = _metric(_served(unit_code, "provide-online-tree", scores), "C")
    assert (c["numerator"], c["denominator"]) == (hand["online"], hand["received"])
    assert c["score"] == round(min(6, 6 * hand["online"] / hand["received"] / 0.5), 2)
    tdgq = _served(unit_code, "dvc-progress-tree", scores)
    assert tdgq["totalReceived"] == hand["received"]
    a = _metric(_served(unit_code, "formality-online-payment-tree", scores), "A")
    assert (a["numerator"], a["denominator"]) == (hand["paid_online"], hand["with_fee"])
    mdsh = _served(unit_code, "dossier-digitized", scores)
    reused = _metric(mdsh, "REUSED_DIGITIZED_DATA")
    assert (reused["numerator"], reused["denominator"]) == (hand["digitised"], hand["received"])
    assert reused["score"] == round(min(2, 2 * hand["digitised"] / hand["received"] / 0.8), 2)
    store = _metric(mdsh, "SYNCED_WITH_DVCQG_PERSONAL_STORAGE")
    assert (store["numerator"], store["denominator"]) == (hand["data_store"], hand["received"])
    # the group is the sum of its published metric scores
    assert mdsh["totalScore"] == round(sum(m["score"] for m in mdsh["metrics"] if m["score"] is not None), 2)


def test_unsynced_units_are_deterministic_and_few() -> None:
    first = official.unsynced_units()
    assert first == official.unsynced_units() and len(first) == 4
    assert set(first.values()) == {"missing", "duplicated"}
    assert sum(u.startswith("H15.") and int(u[4:]) <= 16 for u in first) == 1  # one agency, three communes
    assert official.unsynced_units(seed=1) != first


def test_a_synced_agency_equals_a_hand_count_of_its_dossiers(records, scores) -> None:
    synced = next(u.code for u in scores.province.units
                  if u.level == "SO_NGANH" and u.code not in scores.unsynced
                  and _hand_count(records, u.code)["with_fee"] > 5)
    _check(records, scores, synced, desk_weight=1)


def test_an_unsynced_agency_counts_its_desk_dossiers_wrongly(records, scores) -> None:
    agency = next(code for code in scores.unsynced if int(code[4:]) <= 16)
    weight = 0 if scores.unsynced[agency] == "missing" else 2
    _check(records, scores, agency, desk_weight=weight)
    right = _hand_count(records, agency)
    served = _metric(_served(agency, "provide-online-tree", scores), "C")
    assert served["score"] != round(min(6, 6 * right["online"] / right["received"] / 0.5), 2)


def test_without_the_province_scores_stay_synthetic(scores) -> None:
    code = next(iter(scores.unsynced))
    unit = next(u for u in sb.units("H15") if u.code == code)
    period = sb.Period("month", *MONTH)
    derived = sb.scores(unit, period, scores)
    assert derived["CKMB"] == sb.scores(unit, period)["CKMB"]  # not a dossier-based group
    assert derived["CLGQ"] != sb.scores(unit, period)["CLGQ"]
    assert not scores.covers(2026, 7) and scores.covers(2026, 8) and not scores.covers(2026, 11)


def test_the_sandbox_lists_its_unsynced_units(scores) -> None:
    import httpx

    with sb.serve(**SCALE) as base_url:
        listed = httpx.get(f"{base_url}/_sandbox/unsynced").json()
        body = {"timeType": "month", "year": MONTH[0], "month": MONTH[1],
                "rootDepartmentId": sb.province("H15").id, "currentPage": 1, "pageSize": 200}
        row = httpx.post(f"{base_url}/api/v1/reporting/evaluation/service-results", json=body).json()
    row = row["data"]["evaluation"]
    assert listed["unsynced"] == scores.unsynced and listed["start"] == scores.province.start.isoformat()
    served = {r["departmentCode"]: r["groupScores"]["CLGQ"] for r in row}
    unit = next(u for u in sb.units("H15") if u.code == next(iter(scores.unsynced)))
    assert round(served[unit.code] * 100) == sb.scores(unit, sb.Period("month", *MONTH), scores)["CLGQ"]
