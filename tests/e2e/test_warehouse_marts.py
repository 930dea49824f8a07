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


def test_the_nights_mart_gate_passed_and_was_audited(warehouse_pipeline) -> None:
    from ingestion import quality

    names = [s.name for s in quality.suites("mart", ("warehouse",))]
    with pg.connect("reader") as conn:
        latest = dict(conn.execute(
            "select distinct on (suite) suite, success from marts.mart_validation_results"
            " where suite = any(%s) order by suite, validation_id desc", (names,)).fetchall())
    assert latest == dict.fromkeys(names, True)


def test_mart_gate_names_what_is_wrong(warehouse_pipeline) -> None:
    """Copies of the warehouse marts with one fault each, in a scratch schema: the gate fails and names every
    fault; the warning-severity rules would not fail it."""
    from ingestion import quality

    scratch = "marts_gate_test"
    tables = [s.table for s in quality.suites("mart", ("warehouse",))]
    faults = [  # (what breaks, the expectation the gate must name)
        ("update {s}.mart_unit_index_766 set rank_in_type = rank_in_type + 1 where unit_code = "
         "(select min(unit_code) from {s}.dim_unit where unit_type = 'commune')", "rank_in_type = 1 +"),
        ("update {s}.mart_unit_index_766_metrics set points = max_points + 1 where ctid = "
         "(select min(ctid) from {s}.mart_unit_index_766_metrics where points is not null)", "points within"),
        ("delete from {s}.mart_unit_index_766 where unit_code = (select max(unit_code) from {s}.dim_unit"
         " where unit_type = 'commune')"
         " and as_of_date = (select max(as_of_date) from {s}.mart_unit_index_766)", "every commune present"),
    ]
    with pg.connect("admin") as conn:
        conn.execute(f"drop schema if exists {scratch} cascade; create schema {scratch}")
        for table in tables:
            conn.execute(f"create table {scratch}.{table} as select * from marts.{table}")
        for statement, _ in faults:
            conn.execute(statement.format(s=scratch))
        conn.execute(f"grant usage on schema {scratch} to chiso_transform;"
                     f" grant select on all tables in schema {scratch} to chiso_transform")
    try:
        with pytest.raises(quality.GateFailed, match="mart_unit_index_766"):
            quality.run_gate("mart", pipeline_run="pytest-broken-marts", build_docs=False, schema=scratch,
                             sources=("warehouse",))
        with pg.connect("reader") as conn:
            failed = dict(conn.execute(
                "select suite, coalesce(failed_expectations, '') from marts.mart_validation_results"
                " where pipeline_run = 'pytest-broken-marts' and not success").fetchall())
        assert set(failed) == {"marts.mart_unit_index_766", "marts.mart_unit_index_766_metrics"}
        for _, expectation in faults:
            assert expectation in " ".join(failed.values())
    finally:
        quality.forget_schema(scratch)
        with pg.connect("admin") as conn:
            conn.execute(f"drop schema if exists {scratch} cascade")
