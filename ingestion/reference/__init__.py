"""Reference files shipped with the package (see README.md here for their origin and licence)."""

from __future__ import annotations

import csv
from functools import cache
from pathlib import Path

HERE = Path(__file__).resolve().parent
CAPTURED_2026 = HERE / "dvcqg_service_results_year2026_captured2026-09-17.csv"


def _rows(name: str | Path) -> list[dict[str, str]]:
    with open(HERE / name, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


@cache
def provinces() -> tuple[dict[str, str], ...]:
    """The 34 provinces: province_code_2025, dvcqg_departmentCode, dvcqg_rootDepartmentId, ..."""
    return tuple(_rows("provinces_34_2025.csv"))


@cache
def daklak_communes() -> tuple[dict[str, str], ...]:
    return tuple(_rows("daklak_102_communes_2025.csv"))


@cache
def index766_components() -> tuple[dict[str, str], ...]:
    return tuple(_rows("index766_components.csv"))


@cache
def captured_national_2026() -> tuple[dict[str, str], ...]:
    """The national table for 2026 year-to-date as captured on 2026-09-17 (real figures)."""
    return tuple(_rows(CAPTURED_2026))


def province_by_dvcqg_code(code: str) -> dict[str, str] | None:
    return next((p for p in provinces() if p["dvcqg_departmentCode"] == code), None)
