"""The pure parts of the row-level security sync: role names and RLS clauses."""

from __future__ import annotations

import pytest

from ingestion.superset_rls import ROLE_NAME_MAX, RlsError, Unit, clause, role_name


def test_role_name_is_the_unit_name_and_code() -> None:
    assert role_name(Unit("H15.27", "Xã Ea Tu", "commune")) == "Xã Ea Tu (H15.27)"


def test_long_role_name_is_cut_but_keeps_the_code() -> None:
    unit = Unit("H15.113", "Ban Quản lý các khu công nghiệp và khu kinh tế tỉnh Đắk Lắk mở rộng", "agency")
    name = role_name(unit)
    assert len(name) == ROLE_NAME_MAX
    assert name.endswith("… (H15.113)") and name.startswith("Ban Quản lý các khu công nghiệp")


def test_clause_takes_plain_codes_only() -> None:
    assert clause("H15.27") == "unit_code = 'H15.27'"
    for code in ("H15' or '1'='1", "H15.27; drop table x", ""):
        with pytest.raises(RlsError):
            clause(code)
