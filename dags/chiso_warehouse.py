"""The KPI warehouse: checks the raw gates of its sources passed, dbt builds dimensions, facts, the service
index per unit and day, and the data-quality marts (Cosmos, from the compiled manifest), the GX mart gate
validates them (results in audit.validation_runs, Data Docs), then the dbt docs are written and the
marts published.

Scheduled on the assets the provincial ingest DAG updates: it runs once all three sources have landed.
dbt builds selector `warehouse` of dbt_project/selectors.yml: the national marts (selector `national`) are the
national DAG's, behind its own gates, and mart_index_reconciliation, which reads both, is
chiso_index_reconciliation's (selector `reconciliation`): both are left out here.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG, Asset, DeadlineReference, get_current_context, task

from ingestion import alerts
from ingestion.config import retry_args
from ingestion.dbt_cosmos import dbt_task_group

WAREHOUSE = Asset("chiso://marts/warehouse")

with DAG(
    dag_id="chiso_warehouse",
    description="dbt: dims, facts, service index per unit and day, data quality; dbt docs",
    schedule=(Asset("chiso://raw/dossiers") & Asset("chiso://raw/feedback") & Asset("chiso://raw/centres")),
    start_date=pendulum.datetime(2026, 1, 1, tz="Asia/Ho_Chi_Minh"),
    catchup=False,
    max_active_runs=1,
    default_args={
        **retry_args(retries=1, delay_minutes=5),
        "retry_exponential_backoff": True,
        **alerts.default_args(),
    },
    # An asset-triggered run has no logical date, so the deadline counts from when it was queued: sources
    # that land by 01:30 (the ingest starts at 01:00) put it at 04:00; a later ingest moves it later.
    deadline=alerts.publish_deadline(DeadlineReference.DAGRUN_QUEUED_AT, timedelta(hours=2, minutes=30)),
    tags=["chiso", "warehouse", "dbt"],
    doc_md=__doc__,
) as dag:
    @task
    def raw_gates_passed() -> dict:
        from ingestion.pipeline import PROVINCIAL_SOURCES, require_raw_gates

        return require_raw_gates(PROVINCIAL_SOURCES)

    transform = dbt_task_group(selector="warehouse")

    @task
    def mart_gate() -> dict:
        from ingestion.pipeline import gate

        return gate("mart", pipeline_run=get_current_context()["run_id"], sources=("warehouse",))

    @task
    def docs() -> str:
        from ingestion.config import settings
        from ingestion.transform import run_dbt

        target = settings().home / "dbt-docs"
        run_dbt(["docs", "generate", "--target-path", str(target)],
                pipeline_run=get_current_context()["run_id"])
        return str(target / "index.html")

    @task
    def unit_reports() -> dict:
        """Every unit's report for the month of the run (ingestion.report.reports_for_run)."""
        from ingestion.pipeline import run_time
        from ingestion.report import reports_for_run

        return reports_for_run(run_time(get_current_context()))

    @task(outlets=[WAREHOUSE])
    def publish() -> int:
        from ingestion.pipeline import publish as record_publication
        from ingestion.pipeline import run_time

        day = run_time(get_current_context()).date()
        return record_publication(WAREHOUSE.uri, day, day, get_current_context()["run_id"])

    @task
    def hotspot_alerts() -> list:
        """One alert per unit red today that was not red the day before (ingestion.alerts)."""
        from ingestion.alerts import hotspot_alerts as send

        return send(get_current_context())

    gated = raw_gates_passed() >> transform >> mart_gate()
    gated >> docs() >> publish() >> hotspot_alerts()
    gated >> unit_reports()
