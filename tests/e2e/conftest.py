"""Fixtures for the end-to-end tests of the dashboards."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sample_marts


@pytest.fixture(scope="session")
def populated_marts(warehouse) -> Iterator[None]:
    """The national-slice marts with rows, as the dashboards read them.

    This fills a mart that is missing or empty with generated sample rows and leaves it as found
    afterwards; a mart that already has rows (a real pipeline run) is used as it is. To test on the real
    pipeline instead, run it here (extract, load, dbt build) before yielding.
    """
    done = sample_marts.fill()
    yield
    sample_marts.undo(done)
