"""The project's clock. `CHISO_TODAY` fixes it (a date `YYYY-MM-DD` stands at 00:00 local time of that
day, or a full ISO datetime); unset, it is the wall clock. Windows, sandboxes and fixtures read it here,
so tests and demos can run as of any day (tests set it; see tests/conftest.py)."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, timedelta, timezone

LOCAL_TZ = timezone(timedelta(hours=7))  # Asia/Ho_Chi_Minh, no DST


def fixed() -> datetime | None:
    """The fixed moment `CHISO_TODAY` sets, or None (the wall clock)."""
    text = os.environ.get("CHISO_TODAY", "").strip()
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"CHISO_TODAY={text!r} is neither YYYY-MM-DD nor an ISO datetime") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=LOCAL_TZ)


def now() -> datetime:
    """The project's "now", local time (aware)."""
    moment = fixed()
    return moment.astimezone(LOCAL_TZ) if moment else datetime.now(LOCAL_TZ)


def today() -> date:
    """The project's "today" in the province (Asia/Ho_Chi_Minh)."""
    return now().date()


def event_time() -> datetime:
    """When something happens (an audit row's start or end): always the wall clock, in UTC."""
    return datetime.now(UTC)
