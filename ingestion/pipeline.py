"""What the pipeline's tasks do. DAG files only wire these together, so the same code runs under Airflow,
from `chiso pipeline run`, and in tests. Heavy imports stay inside functions: DAG parsing must be fast."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta

from ingestion.clock import LOCAL_TZ

NATIONAL_INDEX_ASSET = "chiso://marts/national_index"


def month_start(day: date) -> date:
    return day.replace(day=1)


def national_window(logical_date: datetime | date, start: str | None = None,
                    end: str | None = None) -> tuple[date, date]:
    """The months to (re-)extract: the portal revises the current and previous month, so by default the
    window runs from the first day of the previous month to the run's local date."""
    if isinstance(logical_date, datetime):
        logical_date = logical_date.astimezone(LOCAL_TZ).date()
    window_end = date.fromisoformat(end) if end else logical_date
    window_start = date.fromisoformat(start) if start else month_start(
        month_start(window_end) - timedelta(days=1))
    if window_start > window_end:
        raise ValueError(f"window start {window_start} is after its end {window_end}")
    return window_start, window_end


def extract_national(window_start: date, window_end: date, pipeline_run: str | None = None) -> dict:
    from ingestion.sources import dvcqg

    return dvcqg.extract(window_start, window_end, run_label=pipeline_run)


def gate(layer: str, pipeline_run: str | None = None, sources: tuple[str, ...] | None = None) -> dict:
    """Run the GX suites of a layer (of some sources); raises GateFailed, failing the task, when any fails."""
    from ingestion import quality

    result = quality.run_gate(layer, pipeline_run=pipeline_run, sources=sources)
    return {"layer": layer, "suites": [o.suite for o in result.suites], "seconds": result.seconds}


def require_raw_gates(sources: tuple[str, ...]) -> dict:
    """The latest raw gate of every suite of these sources passed. The warehouse DAG starts with this: its
    assets are only updated by ingest runs whose gate passed, but a manual run could follow a failed one."""
    from ingestion import pg, quality

    names = [s.name for s in quality.suites("raw", sources)]
    with pg.connect("loader") as conn:
        latest = dict(conn.execute(
            "select distinct on (suite) suite, success from audit.validation_runs where suite = any(%s)"
            " order by suite, validation_id desc", (names,)).fetchall())
    bad = [n for n in names if latest.get(n) is not True]
    if bad:
        raise quality.GateFailed(f"raw gate not passed for {', '.join(bad)}: run the ingest DAG first"
                                 " (see audit.validation_runs)")
    return {"suites": names}


def publish(dataset: str, window_start: date, window_end: date, pipeline_run: str | None,
            details: dict | None = None) -> int:
    """Record that the gated marts are the current ones; dashboards and downstream DAGs key on this."""
    from ingestion import pg

    with pg.connect("loader") as conn:
        row = conn.execute(
            "insert into audit.publications (dataset, pipeline_run, window_start, window_end, details)"
            " values (%s, %s, %s, %s, %s) returning publication_id",
            (dataset, pipeline_run, window_start, window_end, json.dumps(details or {})),
        ).fetchone()
    return row[0]


PROVINCIAL_SOURCES = ("dossiers", "feedback", "centres")


def run_time(context) -> datetime:
    """A task's logical date, or for an asset-triggered run (which has none) the time it ran for."""
    return context.get("logical_date") or context["dag_run"].run_after


def run_type_of(run) -> str:
    """A DAG run's type as its plain value ("scheduled", "backfill", ...): the Task SDK's enum prints as
    "DagRunType.SCHEDULED"."""
    kind = run.run_type
    return str(getattr(kind, "value", kind))


def provincial_window(run_type: str, interval_start: datetime | None, interval_end: datetime | None,
                      start: str | None = None, end: str | None = None) -> tuple[date | datetime | None, ...]:
    """Scheduled runs extract incrementally, from each source's watermark to the end of their data interval
    (None, end): a night the scheduler catches up on later reads what its night would have read. A back-fill
    run, or one triggered with {"start", "end"}, re-extracts exactly that window and never moves a watermark
    back; any other run (triggered without a window) reads from the watermark to now (None, None)."""
    if start or end:
        if not (start and end):
            raise ValueError("give both start and end, or neither")
        return date.fromisoformat(start), date.fromisoformat(end)
    if run_type == "backfill" and interval_start and interval_end:
        return interval_start, interval_end
    if run_type == "scheduled" and interval_end:
        return None, interval_end
    return None, None


def extract_provincial(source: str, window_start, window_end, pipeline_run: str | None = None) -> dict:
    if source not in PROVINCIAL_SOURCES:
        raise ValueError(f"unknown provincial source {source!r}; one of {', '.join(PROVINCIAL_SOURCES)}")
    import importlib

    module = importlib.import_module(f"ingestion.sources.{source}")
    return module.extract(window_start, window_end, run_label=pipeline_run)
