"""chiso's service index against DVCQG's: dbt builds mart_index_reconciliation, the GX mart gate validates
it, then it is published.

The mart compares what two DAGs publish (mart_unit_index_766 from chiso_warehouse, mart_unit_official_scores
from chiso_national_index), so it is scheduled on both assets: it runs once each has been updated since its
last run (on a fresh install, not before both exist; on a normal night, after the national DAG's 03:00
run). Neither DAG waits for the other, and a failed national night leaves the warehouse untouched.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, Asset, get_current_context, task

from ingestion import alerts
from ingestion.config import retry_args
from ingestion.dbt_cosmos import dbt_task_group

RECONCILIATION = Asset("chiso://marts/index_reconciliation")


with DAG(
    dag_id="chiso_index_reconciliation",
    description="dbt: chiso's index per unit and month against DVCQG's; mart gate; publish",
    schedule=(Asset("chiso://marts/warehouse") & Asset("chiso://marts/national_index")),
    start_date=pendulum.datetime(2026, 1, 1, tz="Asia/Ho_Chi_Minh"),
    catchup=False,
    max_active_runs=1,
    default_args={**retry_args(retries=1, delay_minutes=5), **alerts.default_args()},
    tags=["chiso", "dvcqg", "index-766", "dbt"],
    doc_md=__doc__,
) as dag:
    transform = dbt_task_group(selector="reconciliation")

    @task
    def mart_gate() -> dict:
        from ingestion.pipeline import gate

        return gate("mart", pipeline_run=get_current_context()["run_id"], sources=("reconciliation",))

    @task(outlets=[RECONCILIATION])
    def publish() -> int:
        from ingestion.pipeline import publish as record_publication
        from ingestion.pipeline import run_time

        context = get_current_context()
        day = run_time(context).date()
        return record_publication(RECONCILIATION.uri, day, day, context["run_id"])

    transform >> mart_gate() >> publish()
