"""The warehouse after a whole night over the test window: every mart has rows, the heat map covers the
102 communes every day."""

from __future__ import annotations

import pytest

from ingestion import pg

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


def test_every_mart_has_rows(warehouse_pipeline) -> None:
    with pg.connect("reader") as conn:
        marts = [r[0] for r in conn.execute(
            "select table_name from information_schema.tables where table_schema = 'marts' order by 1")]
        empty = [name for name in marts if conn.execute(f'select not exists (select from marts."{name}")')
                 .fetchone()[0]]
    assert len(marts) >= 15, marts
    assert not empty, f"marts without rows: {empty}"
