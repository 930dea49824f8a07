"""dbt seed + build (data tests and unit tests) on the real warehouse, with raw rows this test loads.

Runs in a database of its own (dropped afterwards), with dbt's target and logs in temporary folders, so
neither the developer's warehouse nor dbt_project/target (Cosmos's manifest) is touched.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import unicodedata
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from ingestion import pg, transform
from ingestion.config import settings

pytestmark = pytest.mark.slow

SEEDS = transform.DBT_PROJECT_DIR / "seeds"
GROUP_MAX = {"CKMB": 18, "TDGQ": 20, "CLGQ": 12, "TTTT": 10, "MDHL": 18, "MDSH": 22}
JULY, AUGUST = "2019-07-01", "2019-08-01"
HOME_ROOT = "019d2be3-6a85-74ec-a33c-a7c04919ba00"  # H15, from the provinces seed


def _groups(total: float) -> dict[str, float]:
    return {code: round(total * m / 100, 2) for code, m in GROUP_MAX.items()}


def _provinces() -> list[dict]:
    with (SEEDS / "provinces.csv").open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def national_rows() -> list[tuple]:
    """34 provinces x 2 months. July: 80, 79, ... 47 in seed order (H15 is 25th: 56).
    August: the same, except H15 jumps to 70.00 and ties with the 11th province (H05)."""
    rows = []
    for i, p in enumerate(_provinces()):
        for period in (JULY, AUGUST):
            total = 80.0 - i
            if period == AUGUST and p["dvcqg_departmentCode"] == "H15":
                total = 70.0
            rows.append((period, "national", p["dvcqg_rootDepartmentId"], p["dvcqg_departmentCode"],
                         p["dvcqg_departmentName"], total))
    return rows


def unit_rows() -> list[tuple]:
    nfd = unicodedata.normalize("NFD", "UBND Xã Xuân Cảnh")
    units = [  # department_id, code, name, July total, August total
        (HOME_ROOT, "H15", "UBND tỉnh Đắk Lắk", 56.0, 70.0),
        ("t-c1", "H15.9001", "UBND Phường Tuy Hòa", 82.5, 85.0),
        ("t-c2", "H15.9002", "UBND xã Xuân Lộc", 80.0, 80.0),
        ("t-c3", "H15.9003", nfd, None, 85.0),
        ("t-c4", "H15.9004", "UBND xã Không Tồn Tại", None, 70.0),
        ("t-a1", "H15.9011", "Sở Tư pháp - Tỉnh Đắk Lắk", None, 90.0),
        ("t-a2", "H15.9012", "Sở Y tế", None, 88.0),
        ("t-a3", "H15.9013", "Văn phòng UBND tỉnh", None, 75.0),
    ]
    rows = []
    for dep_id, code, name, july, august in units:
        for period, total in ((JULY, july), (AUGUST, august)):
            if total is not None:
                rows.append((period, HOME_ROOT, dep_id, code, name, total))
    return rows


def detail_rows() -> list[tuple]:
    """endpoint, group, period, department_id, code, name, is_parent, score, max, record."""
    metrics = [{"code": "PUBLISH_ON_TIME", "name": "Tỷ lệ TTHC công bố đúng hạn", "numerator": 0,
                "denominator": 0, "ratio": None, "score": None, "maxScore": 6},
               {"code": "DOSSIER_SYNC", "name": "Tỷ lệ hồ sơ đồng bộ", "numerator": 90, "denominator": 100,
                "ratio": 90, "score": 5.4, "maxScore": 6,
                "dataQualityStatus": "TEMP_NATIONAL_REPORT_DENOMINATOR"}]
    return [
        ("transparency", "CKMB", AUGUST, "t-c1", "H15.9001", "UBND Phường Tuy Hòa", False, 15.3, 18,
         {"departmentId": "t-c1", "departmentType": "COMMUNE_PEOPLE_COMMITTEE", "departmentLevel": "COMMUNE",
          "totalScore": 15.3, "totalMaxScore": 18, "metrics": metrics}),
        ("dvc-progress-tree", "TDGQ", AUGUST, "t-a1", "H15.9011", "Sở Tư pháp - Tỉnh Đắk Lắk", False, 18, 20,
         {"departmentId": "t-a1", "level": "PROVINCE", "totalReceived": 200, "totalOnTime": 180,
          "totalOverdue": 20, "avgProcessingDays": 4.5, "ratio": 90, "score": 18, "maxScore": 20}),
        ("provide-online-tree", "CLGQ", AUGUST, HOME_ROOT, "H15", "UBND tỉnh Đắk Lắk", True, 9.6, 12,
         {"departmentId": HOME_ROOT, "authorityCount": 100, "partialCount": 30, "fullCount": 40,
          "onlineDossierCount": 50, "onlineServiceTotal": 0, "channelOnlineSum": 300,
          "channelTotalSum": 400,
          "metrics": [{"code": "A", "numerator": 70, "denominator": 100, "score": 1.75, "maxScore": 2}]}),
    ]


def load_raw(conn) -> int:
    run_id = conn.execute(
        "insert into audit.extract_runs (source, entity, status, details) values"
        " ('dvcqg', 'test-dbt-build', 'success', '{\"test\": true}') returning run_id").fetchone()[0]
    for period, scope, dep_id, code, name, total in [*national_rows(), *unit_rows()]:
        g = _groups(total)
        record = {"departmentId": dep_id, "departmentCode": code, "departmentName": name, "totalScore": total,
                  "ratio": total, "scoreDelta": None, "groupScores": g}
        # the typed group columns are left null for units: staging must read them from the record
        typed = [g[k] for k in ("CKMB", "TDGQ", "CLGQ", "TTTT", "MDHL", "MDSH")] if scope == "national" \
            else [None] * 6
        conn.execute(
            "insert into raw.dvcqg_service_results (period_type, period_start, scope, department_id,"
            " department_code, department_name, total_score, ratio, ckmb, tdgq, clgq, tttt, mdhl, mdsh,"
            " record, run_id) values ('month', %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (period, scope, dep_id, code, name, total, total, *typed, json.dumps(record), run_id))
    for endpoint, group, period, dep_id, code, name, parent, score, max_score, record in detail_rows():
        conn.execute(
            "insert into raw.dvcqg_group_details (endpoint, group_code, period_type, period_start,"
            " root_department_id, department_id, department_code, department_name, is_parent, score,"
            " max_score, record, run_id) values (%s, %s, 'month', %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (endpoint, group, period, HOME_ROOT, dep_id, code, name, parent, score, max_score,
             json.dumps(record), run_id))
    return run_id


@pytest.fixture(scope="module")
def test_database(warehouse) -> Iterator[str]:
    """A warehouse database of its own (same server, roles and DDL), so that rows other tests load at the
    same time never meet this test's, and the real marts are left alone; dropped afterwards."""
    old = os.environ.get("CHISO_WAREHOUSE_DB")
    name = f"{settings().warehouse_db}_dbt_test"
    os.environ["CHISO_WAREHOUSE_DB"] = name
    settings.cache_clear()
    try:
        pg.bootstrap()
        yield name
    finally:
        if old is None:
            os.environ.pop("CHISO_WAREHOUSE_DB", None)
        else:
            os.environ["CHISO_WAREHOUSE_DB"] = old
        settings.cache_clear()
        srv = pg.server()
        with psycopg.connect(host=srv.host, port=srv.port, user=srv.admin_user, password=srv.admin_password,
                             dbname=srv.admin_db, autocommit=True) as conn:
            for db in (name, f"{name}_airflow", f"{name}_superset"):
                conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(db)))


@pytest.fixture(scope="module")
def built(test_database, tmp_path_factory):
    with pg.connect("loader") as conn:
        load_raw(conn)
    paths = ["--target-path", str(tmp_path_factory.mktemp("dbt-target")),
             "--log-path", str(tmp_path_factory.mktemp("dbt-logs"))]
    transform.run_dbt(["seed", *paths], pipeline_run="test-dbt-build")
    return transform.run_dbt(["build", *paths], pipeline_run="test-dbt-build")


def _fetch(sql: str, params=()) -> list[dict]:
    with pg.connect("transform") as conn, conn.cursor() as cur:
        cur.execute(sql, params)
        names = [d.name for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def test_build_succeeds_and_is_audited(built):
    assert built.success
    nodes = built.result.results
    kinds = {r.node.resource_type for r in nodes}
    assert {"model", "test", "unit_test"} <= {str(k) for k in kinds}
    rows = _fetch("select command, status, nodes, failures from audit.dbt_runs"
                  " where pipeline_run = 'test-dbt-build' and command like 'dbt build%%'"
                  " order by started_at desc limit 1")
    assert rows and rows[0]["status"] == "success" and rows[0]["failures"] == 0
    assert rows[0]["nodes"] == len(nodes)


def test_chiso_dbt_runs_dbt_on_the_warehouse_and_records_it(built, capsys):
    from ingestion import cli

    assert cli.main(["dbt", "ls", "--select", "mart_unit_index_766", "--quiet"]) == 0
    assert "mart_unit_index_766" in capsys.readouterr().out
    rows = _fetch("select status from audit.dbt_runs where pipeline_run = 'chiso dbt'"
                  " and command = 'dbt ls --select mart_unit_index_766 --quiet'")
    assert [r["status"] for r in rows] == ["success"]
    assert cli.main(["dbt", "run", "--select", "no_such_model", "--no-such-flag"]) != 0
    assert "chiso: " in capsys.readouterr().err


def test_province_ranking_by_hand(built):
    rows = {(r["period_label"], r["department_code"]): r for r in _fetch(
        "select * from marts.mart_province_ranking where period_type = 'month'"
        " and period_start in (%s, %s)", (JULY, AUGUST))}
    assert len(rows) == 68
    july, august = rows[("2019-07", "H15")], rows[("2019-08", "H15")]
    assert july["national_rank"] == 25 and july["previous_rank"] is None and july["score_change"] is None
    assert july["national_average"] == Decimal("63.50")  # mean of 80..47
    assert july["is_home_province"] and july["province_code"] == "66"
    # August: H15 (70.00) ties with H05, the 11th; the next province is 13th
    assert august["national_rank"] == 11 and rows[("2019-08", "H05")]["national_rank"] == 11
    assert rows[("2019-08", "H44")]["national_rank"] == 13  # 12th in seed order, total 69
    assert rows[("2019-08", "H44")]["rank_change"] == -1
    assert august["previous_total_score"] == Decimal("56.00") and august["score_change"] == Decimal("14.00")
    assert august["previous_rank"] == 25 and august["rank_change"] == 14
    assert august["national_average"] == Decimal("63.91")  # (2159 + 14) / 34
    assert (august["ckmb"], august["mdsh"]) == (Decimal("12.60"), Decimal("15.40"))


def test_unit_scores_by_hand(built):
    rows = {(r["period_label"], r["unit_code"]): r for r in _fetch(
        "select * from marts.mart_unit_official_scores where period_start in (%s, %s)", (JULY, AUGUST))}
    assert ("2019-08", "H15") not in rows  # the province's own row is not a unit
    aug = {code: rows[("2019-08", code)] for code in
           ("H15.9001", "H15.9002", "H15.9003", "H15.9004", "H15.9011", "H15.9012", "H15.9013")}
    assert [aug[c]["rank_in_type"] for c in ("H15.9001", "H15.9003", "H15.9002", "H15.9004")] == [1, 1, 3, 4]
    assert [aug[c]["rank_in_type"] for c in ("H15.9011", "H15.9012", "H15.9013")] == [1, 2, 3]
    assert {aug[c]["units_in_type"] for c in ("H15.9001", "H15.9004")} == {4}
    assert aug["H15.9011"]["units_in_type"] == 3 and aug["H15.9011"]["unit_type"] == "agency"
    assert [aug[c]["commune_code"] for c in ("H15.9001", "H15.9002", "H15.9003", "H15.9004", "H15.9011")] == \
        ["22015", "22057", "22060", None, None]
    assert aug["H15.9003"]["unit_name"] == "UBND Xã Xuân Cảnh"  # NFD in, NFC out
    assert aug["H15.9001"]["score_change"] == Decimal("2.50")
    assert aug["H15.9002"]["score_change"] == Decimal("0.00")
    assert aug["H15.9003"]["previous_total_score"] is None
    assert rows[("2019-07", "H15.9001")]["units_in_type"] == 2


def test_group_metrics_long_form(built):
    rows = {(r["department_id"], r["metric_code"]): r for r in _fetch(
        "select * from staging.stg_dvcqg__group_metrics where period_start = %s and department_id like 't-%%'"
        " or (period_start = %s and department_id = %s)", (AUGUST, AUGUST, HOME_ROOT))}
    sync = rows[("t-c1", "DOSSIER_SYNC")]
    assert (sync["numerator"], sync["denominator"], sync["score"]) == (90, 100, Decimal("5.4"))
    assert sync["data_quality_status"] == "TEMP_NATIONAL_REPORT_DENOMINATOR"
    assert rows[("t-c1", "PUBLISH_ON_TIME")]["ratio"] is None
    on_time = rows[("t-a1", "ON_TIME")]
    assert (on_time["numerator"], on_time["denominator"], on_time["score"]) == (180, 200, 18)
    assert rows[("t-a1", "AVG_PROCESSING_DAYS")]["metric_value"] == Decimal("4.5")
    provision = rows[(HOME_ROOT, "ONLINE_PROVISION")]
    assert (provision["ratio"], provision["score"]) == (Decimal("70.00"), Decimal("1.75"))
    assert rows[(HOME_ROOT, "ONLINE_SERVICE_USED")]["ratio"] is None  # zero denominator: not applicable


def test_sqlfluff_lint_is_clean():
    sqlfluff = Path(sys.executable).with_name("sqlfluff")
    env = {**os.environ, **transform.dbt_env()}
    result = subprocess.run([str(sqlfluff), "lint", "models", "tests", "--disable-progress-bar"],
                            cwd=transform.DBT_PROJECT_DIR, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
