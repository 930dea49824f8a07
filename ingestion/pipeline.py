"""What the pipeline's tasks do. DAG files only wire these together, so the same code runs under Airflow,
from `chiso pipeline run`, and in tests. Heavy imports stay inside functions: DAG parsing must be fast."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

LOCAL_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
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


def gate(layer: str, pipeline_run: str | None = None) -> dict:
    """Run the GX suites of a layer; raises GateFailed (the task fails) when any expectation fails."""
    from ingestion import quality

    result = quality.run_gate(layer, pipeline_run=pipeline_run)
    return {"layer": layer, "suites": len(getattr(result, "suites", []) or [])}


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
