"""Provincial sources (S2 dossiers, S3 feedback, S4 service centres): extract and load each, then raw gates.

Nightly at 01:00 Asia/Ho_Chi_Minh. Scheduled runs are incremental: each source continues from its watermark
(audit.watermarks), which moves only after a window is committed. Back-fill a past window with
`airflow backfill create --dag-id chiso_provincial_ingest --from-date 2026-09-01 --to-date 2026-09-30`
(each run re-extracts its own day) or `chiso pipeline run --dag provincial --start ... --end ...`
(one run over the whole window). Each source updates an asset the warehouse DAG is scheduled on.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.sdk import DAG, Asset, DeadlineReference, Param, get_current_context, task
from airflow.timetables.interval import CronDataIntervalTimetable

from ingestion import alerts
from ingestion.config import settings

SOURCES = ("dossiers", "feedback", "centres")
RAW_ASSETS = {source: Asset(f"chiso://raw/{source}") for source in SOURCES}


def _window() -> tuple:
    from ingestion.pipeline import provincial_window

    context = get_current_context()
    run = context["dag_run"]
    return provincial_window(str(run.run_type), context.get("data_interval_start"),
                             context.get("data_interval_end"), context["params"].get("start"),
                             context["params"].get("end"))


with DAG(
    dag_id="chiso_provincial_ingest",
    description="Provincial dossiers, feedback and centre monitoring: incremental extract and load, raw gate",
    schedule=CronDataIntervalTimetable("0 1 * * *", timezone="Asia/Ho_Chi_Minh"),
    start_date=pendulum.datetime(2026, 1, 1, tz="Asia/Ho_Chi_Minh"),
    catchup=False,
    max_active_runs=1,
    default_args={
        "retries": int(os.environ.get("CHISO_TASK_RETRIES", "3")),
        "retry_delay": timedelta(minutes=2),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=30),
        **alerts.default_args(),
    },
    # the logical date is the data interval's start, 01:00 the day before the run: 27 h on is the night's
    # 04:00, and an ingest still running then means the warehouse cannot have published
    deadline=alerts.publish_deadline(DeadlineReference.DAGRUN_LOGICAL_DATE, timedelta(hours=27)),
    params={
        "start": Param(None, type=["null", "string"], format="date", description="window start (YYYY-MM-DD)"),
        "end": Param(None, type=["null", "string"], format="date", description="window end (YYYY-MM-DD)"),
    },
    tags=["chiso", "provincial", "ingest"],
    doc_md=__doc__,
) as dag:

    def extract_task(source: str):
        @task(task_id=f"extract_{source}", outlets=[RAW_ASSETS[source]], queue=settings().extract_queue)
        def extract() -> dict:
            from ingestion.pipeline import extract_provincial

            start, end = _window()
            return extract_provincial(source, start, end, pipeline_run=get_current_context()["run_id"])

        return extract()

    @task
    def raw_gate() -> dict:
        from ingestion.pipeline import gate

        return gate("raw", pipeline_run=get_current_context()["run_id"], sources=SOURCES)

    # Dossiers first: their unit list rebuilds the crosswalk that feedback and centres map unit codes with.
    dossiers, feedback, centres = (extract_task(source) for source in SOURCES)
    dossiers >> [feedback, centres] >> raw_gate()
