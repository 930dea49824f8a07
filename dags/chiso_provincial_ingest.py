"""Provincial sources (S2 dossiers, S3 feedback, S4 service centres): extract and load each, then raw gates.

Nightly at 01:00 Asia/Ho_Chi_Minh. Scheduled runs are incremental: each source continues from its watermark
(audit.watermarks) up to the end of its data interval, which moves only after a window is committed.
Back-fill past nights through the scheduler with `chiso airflow cli backfill create --dag-id
chiso_provincial_ingest --from-date 2026-09-01 --to-date 2026-09-30 --reprocess-behavior completed`
(one run per night, each re-extracting its own data interval; a night's logical date is that interval's
start, 01:00 the day before it runs), or in-process with `chiso pipeline run --dag provincial --start ...
--end ...` (one run over the window). The raw gate, once passed, updates the three assets the warehouse
DAG is scheduled on.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import DAG, Asset, DeadlineReference, Param, get_current_context, task
from airflow.timetables.interval import CronDataIntervalTimetable

from ingestion import alerts
from ingestion.config import retry_args, schedule_args, settings

SOURCES = ("dossiers", "feedback", "centres")
RAW_ASSETS = {source: Asset(f"chiso://raw/{source}") for source in SOURCES}


def _window() -> tuple:
    from ingestion.pipeline import provincial_window, run_type_of

    context = get_current_context()
    return provincial_window(run_type_of(context["dag_run"]), context.get("data_interval_start"),
                             context.get("data_interval_end"), context["params"].get("start"),
                             context["params"].get("end"))


with DAG(
    dag_id="chiso_provincial_ingest",
    description="Provincial dossiers, feedback and centre monitoring: incremental extract and load, raw gate",
    schedule=CronDataIntervalTimetable("0 1 * * *", timezone="Asia/Ho_Chi_Minh"),
    **schedule_args(),  # from 2026-01-01, no catch-up (CHISO_SCHEDULE_START/_END/_CATCHUP)
    max_active_runs=1,
    default_args={
        **retry_args(retries=3, delay_minutes=2),
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
        @task(task_id=f"extract_{source}", queue=settings().extract_queue)
        def extract() -> dict:
            from ingestion.pipeline import extract_provincial

            start, end = _window()
            return extract_provincial(source, start, end, pipeline_run=get_current_context()["run_id"])

        return extract()

    # The raw assets are updated by the gate, not by the extracts: the warehouse DAG they schedule starts
    # only once every source of the night is loaded and validated.
    @task(outlets=list(RAW_ASSETS.values()))
    def raw_gate() -> dict:
        from ingestion.pipeline import gate

        return gate("raw", pipeline_run=get_current_context()["run_id"], sources=SOURCES)

    # Dossiers first: their unit list rebuilds the crosswalk that feedback and centres map unit codes with.
    dossiers, feedback, centres = (extract_task(source) for source in SOURCES)
    dossiers >> [feedback, centres] >> raw_gate()
