"""S1 parsing on captured real data: the sample reply and the captured 34-province table."""

from __future__ import annotations

import csv
from decimal import Decimal
from pathlib import Path

import pytest

from ingestion import reference
from ingestion.sources import dvcqg

SAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "dvcqg"


def test_sample_gives_dak_lak_63_98() -> None:
    rows = dvcqg.parse_service_results((SAMPLES / "dvcqg_service_results_sample.json").read_bytes())
    daklak = next(r for r in rows if r["department_code"] == "H15")
    assert daklak["total_score"] == Decimal("63.98")
    assert daklak["department_id"] == "019d2be3-6a85-74ec-a33c-a7c04919ba00"
    groups = [daklak[g.lower()] for g in dvcqg.GROUPS]
    assert sum(groups) == daklak["total_score"]


def test_captured_table_ranks_dak_lak_ninth() -> None:
    with open(reference.CAPTURED_2026, encoding="utf-8", newline="") as fh:
        captured = list(csv.DictReader(fh))
    assert len(captured) == 34
    rows = [{"department_code": r["departmentCode"], "total_score": Decimal(r["totalScore"])}
            for r in captured]
    ranks = dvcqg.rank_by_total(rows)
    assert ranks["H15"] == 9
    assert all(ranks[r["departmentCode"]] == int(r["rank_by_totalScore"]) for r in captured)


def test_ties_share_a_rank() -> None:
    rows = [{"department_code": c, "total_score": s and Decimal(s)} for c, s in
            [("A", "70"), ("B", "65.5"), ("C", "65.5"), ("D", "60"), ("E", None)]]
    assert dvcqg.rank_by_total(rows) == {"A": 1, "B": 2, "C": 2, "D": 4}


def test_error_envelope_is_an_error() -> None:
    with pytest.raises(ValueError, match="BAD_REQUEST"):
        dvcqg.parse_service_results({"code": "BAD_REQUEST", "message": "nope", "data": None})


def test_months_cover_the_window() -> None:
    from datetime import date

    assert dvcqg.months(date(2025, 11, 15), date(2026, 2, 1)) == [
        date(2025, 11, 1), date(2025, 12, 1), date(2026, 1, 1), date(2026, 2, 1)]
