"""Fixtures of the end-to-end tests: Superset over the marts of a real pipeline run."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ingestion import superset


@pytest.fixture(scope="session")
def superset_url(national_pipeline) -> Iterator[str]:
    """Superset over the marts of a real pipeline run; stopped at the end if this session started it."""
    started = superset.status() == "stopped"
    yield superset.up()
    if started:
        superset.down()
