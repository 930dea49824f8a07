"""The GX gates against the real warehouse: valid rows pass and are audited, a corrupted row stops the gate.

Raw rows go into raw.* under a run of their own (deleted at the end); mart rows into a scratch schema the
mart suites are pointed at, so dbt's marts are never touched.
"""

from __future__ import annotations

import json
import pickle
import uuid
from datetime import date

import pytest

from ingestion import pg, quality

pytestmark = pytest.mark.slow

GROUPS = list(quality.GROUP_MAX)
PERIODS = [("month", date(1999, 1, 1)), ("month", date(1999, 2, 1))]  # far from any real or sandbox window


def _groups(i: int) -> dict[str, float]:
    """Group scores for province/unit i: all within their maxima, varied, two decimals."""
    return {g: round(m * (0.35 + ((i * 7 + k * 3) % 13) / 26), 2) for k, (g, m) in
            enumerate(quality.GROUP_MAX.items())}


def _total(groups: dict[str, float]) -> float:
    return round(sum(groups.values()), 2)


@pytest.fixture(scope="module")
def warehouse():
    if pg.is_private():
        pg.start_private()
    pg.bootstrap()


@pytest.fixture()
def raw_rows(warehouse):
    """34 national rows per period plus their group details, under one extract run; removed afterwards."""
    with pg.connect("loader") as conn:
        run_id = conn.execute("insert into audit.extract_runs (source, entity, status, details)"
                              " values ('dvcqg', 'gx-gate-test', 'success', '{\"test\": true}')"
                              " returning run_id").fetchone()[0]
        for period_type, period_start in PERIODS:
            for i in range(1, 35):
                g = _groups(i)
                dep = f"gx-test-{i:02d}"
                record = json.dumps({"departmentCode": f"H{i:02d}", "totalScore": _total(g)})
                conn.execute(
                    "insert into raw.dvcqg_service_results (period_type, period_start, scope, department_id,"
                    " department_code, department_name, total_score, ckmb, tdgq, clgq, tttt, mdhl, mdsh,"
                    " record, run_id)"
                    " values (%s, %s, 'national', %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    (period_type, period_start, dep, f"H{i:02d}", f"UBND tỉnh {i}", _total(g), *g.values(),
                     record, run_id))
                for code, (group, top) in zip(quality.GROUP_CODES, quality.GROUP_MAX.items(), strict=True):
                    conn.execute(
                        "insert into raw.dvcqg_group_details (endpoint, group_code, period_type,"
                        " period_start, root_department_id, department_id, department_code, score,"
                        " max_score, record, run_id) values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                        (f"gx-test-{code.lower()}", code, period_type, period_start, dep, dep, f"H{i:02d}",
                         g[group], top, json.dumps({"code": code}), run_id))
    yield run_id
    with pg.connect("loader") as conn:
        conn.execute("delete from raw.dvcqg_group_details where run_id = %s", (run_id,))
        conn.execute("delete from raw.dvcqg_service_results where run_id = %s", (run_id,))
        conn.execute("delete from audit.extract_runs where run_id = %s", (run_id,))


@pytest.fixture()
def pipeline_run(warehouse):
    name = f"gx-test-{uuid.uuid4().hex[:8]}"
    yield name
    with pg.connect("loader") as conn:
        conn.execute("delete from audit.validation_runs where pipeline_run = %s", (name,))


def _audit(pipeline_run: str) -> dict[str, tuple]:
    with pg.connect("loader") as conn:
        rows = conn.execute("select suite, layer, target, success, expectations_evaluated,"
                            " expectations_failed, results, started_at <= finished_at"
                            " from audit.validation_runs where pipeline_run = %s", (pipeline_run,)).fetchall()
    return {r[0]: r[1:] for r in rows}


def test_raw_gate_passes_and_is_audited(raw_rows, pipeline_run):
    result = quality.run_gate("raw", pipeline_run, sources=("dvcqg",))
    assert result.success
    audit = _audit(pipeline_run)
    assert set(audit) == {"raw.dvcqg_service_results", "raw.dvcqg_group_details"}
    layer, target, success, evaluated, failed, results, ordered = audit["raw.dvcqg_service_results"]
    assert (layer, target, success, failed, ordered) == ("raw", "raw.dvcqg_service_results", True, 0, True)
    assert evaluated >= 10 and results["failed"] == []


@pytest.mark.parametrize("corruption, expectation", [
    ("update raw.dvcqg_service_results set total_score = total_score + 1"
     " where run_id = %s and department_id = 'gx-test-07' and period_start = '1999-02-01'",
     "total_score equals the sum of the six groups (within 0.01)"),
    ("delete from raw.dvcqg_service_results where run_id = %s and department_id = 'gx-test-34'"
     " and period_start = '1999-01-01'", "exactly 34 national rows per period"),
])
def test_raw_gate_fails_on_a_corrupt_row(raw_rows, pipeline_run, corruption, expectation):
    with pg.connect("loader") as conn:
        conn.execute(corruption, (raw_rows,))
    with pytest.raises(quality.GateFailed) as failed:
        quality.run_gate("raw", pipeline_run, build_docs=False, sources=("dvcqg",))
    message = str(failed.value)
    assert "\n" not in message and "raw.dvcqg_service_results" in message and expectation in message
    assert "raw.dvcqg_group_details" not in message
    _, _, success, _, n_failed, results, _ = _audit(pipeline_run)["raw.dvcqg_service_results"]
    assert success is False and n_failed == 1
    assert [f["expectation"] for f in results["failed"]] == [expectation]
    assert results["failed"][0]["sample"]  # the offending period or row is named
    assert _audit(pipeline_run)["raw.dvcqg_group_details"][2] is True


# --- marts, in a scratch schema ---------------------------------------------------------------------

MART_DDL = {
    "mart_province_ranking": """(period_type text, period_start date, period_label text,
        department_id text, department_code text, province_code text, province_name text,
        is_home_province boolean, total_score numeric(7,2), ckmb numeric(7,2), tdgq numeric(7,2),
        clgq numeric(7,2), tttt numeric(7,2), mdhl numeric(7,2), mdsh numeric(7,2), national_rank integer,
        national_average numeric(7,2), previous_total_score numeric(7,2), score_change numeric(7,2),
        previous_rank integer, rank_change integer)""",
    "mart_unit_official_scores": """(period_type text, period_start date, period_label text,
        department_id text, unit_code text, unit_name text, unit_type text, commune_code text,
        total_score numeric(7,2), ckmb numeric(7,2), tdgq numeric(7,2), clgq numeric(7,2),
        tttt numeric(7,2), mdhl numeric(7,2), mdsh numeric(7,2), rank_in_type integer,
        units_in_type integer, previous_total_score numeric(7,2), score_change numeric(7,2))""",
}


@pytest.fixture()
def mart_schema(warehouse):
    """A scratch schema (transform role) holding both marts with valid rows: ranks as dbt computes them."""
    schema = f"gx_test_{uuid.uuid4().hex[:8]}"
    with pg.connect("transform") as conn:
        conn.execute(f"create schema {schema}")
        for table, ddl in MART_DDL.items():
            conn.execute(f"create table {schema}.{table} {ddl}")
        for period_type, period_start in PERIODS:
            for i in range(1, 35):
                g = _groups(i)
                conn.execute(
                    f"insert into {schema}.mart_province_ranking (period_type, period_start, department_id,"
                    " department_code, total_score, ckmb, tdgq, clgq, tttt, mdhl, mdsh)"
                    " values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    (period_type, period_start, f"dep-{i}", f"H{i:02d}", _total(g), *g.values()))
            for i in range(1, 13):
                g = _groups(i % 5)  # repeated scores: ties share a rank
                conn.execute(
                    f"insert into {schema}.mart_unit_official_scores (period_type, period_start,"
                    " department_id, unit_code, unit_type, total_score, ckmb, tdgq, clgq, tttt, mdhl, mdsh)"
                    " values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    (period_type, period_start, f"unit-{i}", f"H15.{i}", "agency" if i <= 4 else "commune",
                     _total(g), *g.values()))
        conn.execute(f"""update {schema}.mart_province_ranking m set national_rank = r.rk from (
            select department_code, period_start, rank() over (partition by period_type, period_start
            order by total_score desc) as rk from {schema}.mart_province_ranking) r
            where r.department_code = m.department_code and r.period_start = m.period_start""")
        conn.execute(f"""update {schema}.mart_unit_official_scores m set rank_in_type = r.rk,
            units_in_type = r.n from (select unit_code, period_start, rank() over (partition by period_type,
            period_start, unit_type order by total_score desc) as rk, count(*) over (partition by period_type,
            period_start, unit_type) as n from {schema}.mart_unit_official_scores) r
            where r.unit_code = m.unit_code and r.period_start = m.period_start""")
    yield schema
    quality.forget_schema(schema)
    with pg.connect("transform") as conn:
        conn.execute(f"drop schema {schema} cascade")


def test_mart_gate_passes_on_valid_marts(mart_schema, pipeline_run):
    result = quality.run_gate("mart", pipeline_run, build_docs=False, schema=mart_schema, sources=("dvcqg",))
    assert result.success and len(result.suites) == 2
    audit = _audit(pipeline_run)
    assert audit["marts.mart_province_ranking"][1] == f"{mart_schema}.mart_province_ranking"
    assert all(row[2] is True and row[4] == 0 for row in audit.values())


@pytest.mark.parametrize("corruption, suite, expectation", [
    ("update {s}.mart_province_ranking set national_rank = national_rank + 1 where department_code = 'H05'",
     "marts.mart_province_ranking", "national_rank = 1 + provinces with a strictly higher total"),
    ("update {s}.mart_province_ranking set ckmb = 19, total_score = total_score - ckmb + 19"
     " where department_code = 'H03' and period_start = '1999-01-01'",
     "marts.mart_province_ranking", "expect_column_values_to_be_between(ckmb)"),
    ("update {s}.mart_unit_official_scores set unit_type = 'district' where unit_code = 'H15.9'",
     "marts.mart_unit_official_scores", "expect_column_values_to_be_in_set(unit_type)"),
    ("alter table {s}.mart_province_ranking drop column mdsh",
     "marts.mart_province_ranking", "expect_column_values_to_be_between(mdsh)"),
    ("delete from {s}.mart_unit_official_scores",
     "marts.mart_unit_official_scores", "expect_table_row_count_to_be_between"),
    ("drop table {s}.mart_unit_official_scores",
     "marts.mart_unit_official_scores", "mart_unit_official_scores does not exist"),
])
def test_mart_gate_fails_on_a_corrupt_mart(mart_schema, pipeline_run, corruption, suite, expectation):
    with pg.connect("transform") as conn:
        conn.execute(corruption.format(s=mart_schema))
    with pytest.raises(quality.GateFailed) as failed:
        quality.run_gate("mart", pipeline_run, build_docs=False, schema=mart_schema, sources=("dvcqg",))
    assert suite in str(failed.value) and expectation in str(failed.value)
    assert pickle.loads(pickle.dumps(failed.value)).result.layer == "mart"  # survives a task boundary
    audit = _audit(pipeline_run)
    assert audit[suite][2] is False
    results = audit[suite][5]
    assert expectation in json.dumps(results, ensure_ascii=False)


@pytest.mark.parametrize("province, fails, warns", [("66", True, False), ("99", False, True)])
def test_the_communes_rule_follows_the_configured_province(warehouse, monkeypatch, province, fails, warns):
    """dim_unit must hold one commune per commune of the configured province in the seed (Đắk Lắk: a
    three-commune dim_unit fails); a province the seed does not list is a warning, not a block."""
    import great_expectations.expectations as gxe

    from ingestion import config

    monkeypatch.setenv("CHISO_PROVINCE_CODE", province)
    config.settings.cache_clear()
    try:
        rules = {e.description: e for e in quality._dim_unit(gxe, lambda *columns: [])
                 if isinstance(e, gxe.UnexpectedRowsExpectation)}
    finally:
        monkeypatch.undo()
        config.settings.cache_clear()
    count = rules["one unit per commune of the configured province in the communes seed"]
    seed = rules["the communes seed lists the configured province's communes"]
    assert seed.severity == "warning"
    with pg.connect("transform") as conn:
        conn.execute("create temp table units as select * from (values ('a', 'commune'), ('b', 'commune'),"
                     " ('c', 'commune')) as u (unit_code, unit_type)")
        # the seed's stand-in: five communes of province 66
        conn.execute("create temp table communes as select 66 as province_code from generate_series(1, 5)")
        for rule, expected in ((count, fails), (seed, warns)):
            query = rule.unexpected_rows_query.replace("{batch}", "units").replace("seeds.", "pg_temp.")
            assert bool(conn.execute(query).fetchall()) is expected
