"""The S1 sandbox's synthetic data keep the index's arithmetic: maxima, exact sums, every recent month."""

from __future__ import annotations

from datetime import date

from ingestion import clock
from ingestion.sandbox import dvcqg as sb

TODAY = clock.today()


def _recent_months(n: int = 13) -> list[sb.Period]:
    out, y, m = [], TODAY.year, TODAY.month
    for _ in range(n + 1):
        out.append(sb.Period("month", y, m))
        y, m = (y - 1, 12) if m == 1 else (y, m - 1)
    return out


def test_home_province_has_16_agencies_and_102_communes() -> None:
    units = sb.units("H15")
    agencies = [u for u in units if u.type == "PROVINCIAL_DEPARTMENT"]
    communes = [u for u in units if u.type == "COMMUNE_PEOPLE_COMMITTEE"]
    assert len(agencies) == 16 and len(communes) == 102
    assert [u.code for u in agencies] == [f"H15.{i}" for i in range(1, 17)]
    assert communes[0].name == "UBND phường Tuy Hòa"
    assert len({u.id for u in units}) == 118
    assert sb.units("H15") == sb.units("H15")  # deterministic


def test_scores_add_up_within_maxima_for_recent_months() -> None:
    units = [sb.province("H15"), *sb.units("H15")[::7], *sb.provinces()[::5]]
    for period in _recent_months():
        for unit in units:
            s = sb.scores(unit, period)
            assert s["total"] == sum(s[g] for g in sb.GROUP_MAX)
            for g, mx in sb.GROUP_MAX.items():
                cents, metrics, _ = sb.group(unit, period, g)
                assert 0 <= cents <= mx * 100
                assert cents == sum(round(m["score"] * 100) for m in metrics if m["score"] is not None)
                assert all(m["score"] is None or m["score"] <= m["maxScore"] for m in metrics)


def test_national_table_for_a_recent_month() -> None:
    env = sb.answer("/api/v1/reporting/evaluation/service-results",
                    {"timeType": "month", "year": 2026, "month": 3, "departmentType": "ADMINISTRATIVE_UNIT"},
                    today=date(2026, 11, 26))
    rows = env["data"]["evaluation"]
    assert env["code"] == "OK" and len(rows) == 34
    for r in rows:
        assert round(sum(r["groupScores"].values()), 2) == r["totalScore"]


def test_year_2026_serves_the_capture() -> None:
    env = sb.answer("/api/v1/reporting/evaluation/service-results", {"timeType": "year", "year": 2026})
    daklak = next(r for r in env["data"]["evaluation"] if r["departmentCode"] == "H15")
    assert daklak["totalScore"] == 63.98


def test_bad_requests_get_an_error_code() -> None:
    bad = sb.answer("/api/v1/reporting/evaluation/service-results", {"timeType": "week"})
    assert bad["code"] == "BAD_REQUEST"
    assert sb.answer("/api/v1/reporting/evaluation/transparency",
                     {"timeType": "month", "year": 2026, "month": 1})["code"] == "BAD_REQUEST"
    assert sb.answer("/api/v1/reporting/nope", {})["code"] == "NOT_FOUND"
