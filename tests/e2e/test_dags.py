"""The DAG folder loads cleanly and fast, and the national-index DAG runs end to end in-process."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from datetime import date

import pytest
from pipeline_fixtures import LOGICAL_DATE

from ingestion.config import PROJECT_ROOT

# Parse the DAG folder in a fresh interpreter where any network connection or subprocess raises, and
# report how long Airflow's own import took and how long the DAG files took beyond it.
_PARSE_PROBE = textwrap.dedent("""
    import json, socket, subprocess, sys, time
    t0 = time.perf_counter()
    import airflow
    from airflow.dag_processing.dagbag import DagBag
    t1 = time.perf_counter()
    def forbidden(*a, **k):
        raise RuntimeError("DAG import touched the network, a database or a subprocess")
    socket.socket.connect = forbidden
    socket.create_connection = forbidden
    subprocess.Popen.__init__ = forbidden
    bag = DagBag(dag_folder=sys.argv[1])
    t2 = time.perf_counter()
    print(json.dumps({"airflow_import": t1 - t0, "parse": t2 - t1,
                      "errors": {k: str(v)[-400:] for k, v in bag.import_errors.items()},
                      "dags": sorted(bag.dag_ids),
                      "dbt_imported": any(m.startswith("dbt.cli") for m in sys.modules)}))
""")


def test_dag_folder_has_no_import_errors_and_parses_fast(airflow_env):
    result = subprocess.run([sys.executable, "-c", _PARSE_PROBE, str(PROJECT_ROOT / "dags")],
                            env=airflow_env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    probe = json.loads(result.stdout.strip().splitlines()[-1])
    assert probe["errors"] == {}
    assert set(probe["dags"]) == {"chiso_national_index", "chiso_provincial_ingest", "chiso_warehouse",
                                  "chiso_index_reconciliation"}
    assert not probe["dbt_imported"], "parsing a DAG file must not import dbt's runner"
    assert probe["parse"] < 2.0, f"DAG files took {probe['parse']:.2f} s beyond importing Airflow"


def test_national_dag_shape(airflow_env):
    probe = textwrap.dedent("""
        import json, sys
        from airflow.dag_processing.dagbag import DagBag
        dag = DagBag(dag_folder=sys.argv[1]).get_dag("chiso_national_index")
        print(json.dumps({"schedule": dag.timetable.expression, "tz": str(dag.timetable.timezone),
                          "tasks": sorted(dag.task_ids)}))
    """)
    result = subprocess.run([sys.executable, "-c", probe, str(PROJECT_ROOT / "dags")], env=airflow_env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    info = json.loads(result.stdout.strip().splitlines()[-1])
    assert info["schedule"] == "0 3 * * *"
    assert "Ho_Chi_Minh" in info["tz"]
    tasks = info["tasks"]
    for expected in ("extract_load", "raw_gate", "mart_gate", "publish"):
        assert expected in tasks
    assert any(t.startswith("dbt.mart_province_ranking") for t in tasks)
    assert any(t.startswith("dbt.mart_unit_official_scores") for t in tasks)


def test_warehouse_dag_gates_before_publishing(airflow_env):
    """Raw gates checked, dbt, the mart gate, then docs and the publication, and the unit reports, only after
    the gate."""
    probe = textwrap.dedent("""
        import json, sys
        from airflow.dag_processing.dagbag import DagBag
        dag = DagBag(dag_folder=sys.argv[1]).get_dag("chiso_warehouse")
        print(json.dumps({t.task_id: sorted(t.upstream_task_ids) for t in dag.tasks}))
    """)
    result = subprocess.run([sys.executable, "-c", probe, str(PROJECT_ROOT / "dags")], env=airflow_env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    upstream = json.loads(result.stdout.strip().splitlines()[-1])
    dbt_tasks = {t for t in upstream if t.startswith("dbt.")}
    assert any("mart_unit_index_766" in t for t in dbt_tasks)
    assert not any("mart_province_ranking" in t for t in dbt_tasks)  # the national DAG's
    assert not any("mart_index_reconciliation" in t for t in dbt_tasks)  # chiso_index_reconciliation's
    assert all(set(upstream[t]) <= dbt_tasks | {"raw_gates_passed"} for t in dbt_tasks)
    assert set(upstream["mart_gate"]) <= dbt_tasks and upstream["mart_gate"]
    assert upstream["docs"] == ["mart_gate"]
    assert upstream["publish"] == ["docs"]
    assert upstream["unit_reports"] == ["mart_gate"]


def test_reconciliation_dag_waits_for_both_publications(airflow_env):
    """mart_index_reconciliation reads the warehouse's and the national DAG's marts: it is built once both
    have published (an AND of the two assets), by no other DAG."""
    probe = textwrap.dedent("""
        import json, sys
        from airflow.dag_processing.dagbag import DagBag
        dag = DagBag(dag_folder=sys.argv[1]).get_dag("chiso_index_reconciliation")
        condition = dag.timetable.asset_condition
        print(json.dumps({"condition": type(condition).__name__,
                          "assets": sorted(a.uri for a in condition.objects),
                          "upstream": {t.task_id: sorted(t.upstream_task_ids) for t in dag.tasks},
                          "outlets": [a.uri for a in dag.task_dict["publish"].outlets]}))
    """)
    result = subprocess.run([sys.executable, "-c", probe, str(PROJECT_ROOT / "dags")], env=airflow_env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    info = json.loads(result.stdout.strip().splitlines()[-1])
    assert info["condition"] == "AssetAll"
    assert info["assets"] == ["chiso://marts/national_index", "chiso://marts/warehouse"]
    upstream = info["upstream"]
    dbt_tasks = {t for t in upstream if t.startswith("dbt.")}
    assert dbt_tasks and all("mart_index_reconciliation" in t for t in dbt_tasks), dbt_tasks
    assert set(upstream["mart_gate"]) == dbt_tasks
    assert upstream["publish"] == ["mart_gate"]
    assert info["outlets"] == ["chiso://marts/index_reconciliation"]


def _marts_fingerprint(conn) -> dict[str, str]:
    out = {}
    for table in ("mart_province_ranking", "mart_unit_official_scores"):
        row = conn.execute(
            "select count(*), md5(coalesce(string_agg(t::text, '|' order by t::text), ''))"
            f" from marts.{table} t"
        ).fetchone()
        out[table] = f"{row[0]}:{row[1]}"
    return out


@pytest.mark.e2e
def test_full_dag_run_is_repeatable_and_gated(national_pipeline):
    """Run the DAG, run it again: marts identical. Corrupt raw outside the window: the raw gate stops dbt."""
    from ingestion import pg
    from ingestion.orchestration import PipelineFailed, run_dag

    start, end = national_pipeline
    with pg.connect("reader") as conn:
        first = _marts_fingerprint(conn)
        periods = conn.execute("select count(distinct period_start) from marts.mart_province_ranking"
                               " where period_type = 'month'").fetchone()[0]
        published = conn.execute("select count(*) from audit.publications").fetchone()[0]
    assert periods >= 2 and all(not v.startswith("0:") for v in first.values())
    assert published >= 1

    run_dag("chiso_national_index", start, end, logical_date=LOGICAL_DATE)
    with pg.connect("reader") as conn:
        assert _marts_fingerprint(conn) == first

    # A corrupted raw row in a month this run does not re-extract: the raw gate fails the run, dbt and
    # the mart gate never run, and the marts keep their last good content.
    with pg.connect("loader") as conn:
        conn.execute("update raw.dvcqg_service_results set total_score = total_score + 7"
                     " where scope = 'national' and period_start = %s and department_code = 'H15'", (start,))
    try:
        later = date(end.year + (end.month == 12), end.month % 12 + 1, 1)
        with pytest.raises(PipelineFailed):
            run_dag("chiso_national_index", later, later, logical_date=LOGICAL_DATE)
        with pg.connect("reader") as conn:
            assert _marts_fingerprint(conn) == first
            failed = conn.execute("select count(*) from audit.validation_runs where layer = 'raw'"
                                  " and success is false").fetchone()[0]
        assert failed >= 1
    finally:
        with pg.connect("loader") as conn:
            conn.execute("update raw.dvcqg_service_results set total_score = total_score - 7"
                         " where scope = 'national' and period_start = %s and department_code = 'H15'",
                         (start,))
        # Leave raw without the extra month, as the other tests expect the window only.
        with pg.connect("loader") as conn:
            for table in ("raw.dvcqg_service_results", "raw.dvcqg_group_details"):
                conn.execute(f"delete from {table} where period_start > %s", (end,))


def _raw_fingerprint(conn) -> dict[str, str]:
    out = {}
    for table, key in (("raw.dossiers", "ma_ho_so, ngay_cap_nhat"), ("raw.feedback", "record"),
                       ("raw.ratings", "record"), ("raw.centre_snapshots", "record")):
        row = conn.execute(f"select count(*), md5(coalesce(string_agg(record::text, '|' order by {key}),"
                           f" '')) from {table}").fetchone()
        out[table] = f"{row[0]}:{row[1]}"
    return out


@pytest.mark.e2e
def test_provincial_dag_backfills_a_window_repeatably(airflow_env, monkeypatch):
    """The provincial DAG over an explicit window: three extracts and the raw gate succeed; a second run of
    the same window leaves raw exactly as it was."""
    from ingestion import pg
    from ingestion.orchestration import DAGS, run_dag
    from ingestion.sandbox.provincial import serve_centres, serve_dossiers, serve_feedback

    scale = {"dossiers_per_day": 200, "history_days": 40, "as_of": "2026-11-20T08:00:00+07:00"}
    with serve_dossiers(**scale) as d, serve_feedback(**scale) as f, serve_centres(**scale) as c:
        for name, url in (("DOSSIERS", d), ("FEEDBACK", f), ("CENTRES", c)):
            monkeypatch.setenv(f"CHISO_{name}_BASE_URL", url)
        run_dag(DAGS["provincial"], date(2026, 11, 16), date(2026, 11, 19), logical_date=LOGICAL_DATE)
        with pg.connect("loader") as conn:
            first = _raw_fingerprint(conn)
            runs = conn.execute(  # the latest run of each source and entity
                "select distinct on (source, entity) source, status, records_received,"
                " records_loaded + records_quarantined from audit.extract_runs"
                " where source in ('dossiers', 'feedback', 'centres') order by source, entity, run_id desc"
            ).fetchall()
            gate = conn.execute(  # the suites of the latest provincial raw gate
                "select bool_and(success), count(*) from audit.validation_runs where pipeline_run ="
                " (select pipeline_run from audit.validation_runs where suite = 'raw.dossiers'"
                "  order by validation_id desc limit 1)"
                " and suite in ('raw.dossiers', 'raw.feedback', 'raw.centre_snapshots')").fetchone()
        assert all(not v.startswith("0:") for v in first.values()), first
        assert {r[0] for r in runs} == {"dossiers", "feedback", "centres"}
        assert all(status == "success" and received == accounted for _, status, received, accounted in runs)
        assert gate == (True, 3)
        run_dag(DAGS["provincial"], date(2026, 11, 16), date(2026, 11, 19), logical_date=LOGICAL_DATE)
    with pg.connect("loader") as conn:
        assert _raw_fingerprint(conn) == first
