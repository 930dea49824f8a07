"""National service index (Bộ chỉ số 766, DVCQG): extract -> raw gate -> dbt (Cosmos) -> mart gate -> publish.

Daily at 03:00 Asia/Ho_Chi_Minh, after the portal's 02:00 recomputation; each run re-extracts the previous
and the current month, which the portal may still revise. Trigger with {"start": "YYYY-MM-DD", "end": ...}
to back-fill another window. The task bodies live in ingestion.pipeline; this file only wires them.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import DAG, Asset, DeadlineReference, Param, get_current_context, task

from ingestion import alerts
from ingestion.config import retry_args, schedule_args, settings
from ingestion.dbt_cosmos import dbt_task_group

NATIONAL_INDEX = Asset("chiso://marts/national_index")


def _window() -> tuple:
    from ingestion.pipeline import national_window

    context = get_current_context()
    params = context["params"]
    return national_window(context["logical_date"], params.get("start"), params.get("end"))


with DAG(
    dag_id="chiso_national_index",
    description="DVCQG national service index: extract, validate, transform, validate, publish",
    schedule="0 3 * * *",
    **schedule_args(),  # from 2026-01-01, no catch-up (CHISO_SCHEDULE_START/_END/_CATCHUP)
    max_active_runs=1,
    default_args={
        **retry_args(retries=2, delay_minutes=5),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=30),
        **alerts.default_args(),
    },
    # a scheduled run's logical date is its 03:00: published by 04:00, or the alert
    deadline=alerts.publish_deadline(DeadlineReference.DAGRUN_LOGICAL_DATE, timedelta(hours=1)),
    params={
        "start": Param(None, type=["null", "string"], format="date", description="window start (YYYY-MM-DD)"),
        "end": Param(None, type=["null", "string"], format="date", description="window end (YYYY-MM-DD)"),
    },
    tags=["chiso", "dvcqg", "index-766"],
    doc_md=__doc__,
) as dag:

    @task(queue=settings().extract_queue)
    def extract_load() -> dict:
        from ingestion.pipeline import extract_national

        start, end = _window()
        return extract_national(start, end, pipeline_run=get_current_context()["run_id"])

    @task
    def raw_gate() -> dict:
        from ingestion.pipeline import gate

        return gate("raw", pipeline_run=get_current_context()["run_id"], sources=("dvcqg",))

    # Only the national slice and what it is built from (selector `national`, dbt_project/selectors.yml);
    # the warehouse DAG builds the rest.
    transform = dbt_task_group(selector="national")

    @task
    def mart_gate() -> dict:
        from ingestion.pipeline import gate

        return gate("mart", pipeline_run=get_current_context()["run_id"], sources=("dvcqg",))

    @task(outlets=[NATIONAL_INDEX])
    def publish() -> int:
        from ingestion.pipeline import publish as record_publication

        start, end = _window()
        return record_publication(NATIONAL_INDEX.uri, start, end, get_current_context()["run_id"])

    extract_load() >> raw_gate() >> transform >> mart_gate() >> publish()
