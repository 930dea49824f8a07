"""Shared fixtures: the private PostgreSQL (started, bootstrapped), the sandbox sources, a landing dir."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

FIXTURES = Path(__file__).resolve().parent / "fixtures"
ROOT = Path(__file__).resolve().parent.parent

# Tests keep their own state (database, Superset, landing) apart from a developer's demo, and their own
# ports, so `make test` runs beside a running `make demo`. Set before anything reads the settings.
os.environ.setdefault("CHISO_HOME_DIR", str(ROOT / ".chiso" / "test"))
os.environ.setdefault("CHISO_SUPERSET_PORT", "18088")
# The tests log in as the admin often; the login limit per account stays on, higher than a deployment's.
os.environ.setdefault("CHISO_SUPERSET_LOGIN_RATE_LIMIT", "30 per minute")
os.environ.setdefault("CHISO_SANDBOX_DVCQG_PORT", "18701")
# The project's clock (ingestion/clock.py) stands still for the tests: nothing depends on the day they run.
# Any other moment works too (`CHISO_TODAY=2027-12-06 make test`).
os.environ.setdefault("CHISO_TODAY", "2026-12-06T06:00:00+07:00")
# A developer's own alert channels never hear from the tests (the alert tests start their own receivers), and
# their source and warehouse connections (ingestion/connections.py) never replace the tests' sandboxes.
for _name in [*(k for k in os.environ if k.startswith("AIRFLOW_CONN_CHISO_")), "CHISO_ALERT_EMAILS"]:
    os.environ.pop(_name, None)

from pipeline_fixtures import (  # noqa: E402, F401
    PROVINCE_SCALE,
    airflow_env,
    national_pipeline,
    pipeline_window,
    warehouse_pipeline,
)


@pytest.fixture(scope="session")
def landing_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Landed pages go to a temporary folder, not the developer's .chiso/landing."""
    path = tmp_path_factory.mktemp("landing")
    old = os.environ.get("CHISO_LANDING_DIR")
    os.environ["CHISO_LANDING_DIR"] = str(path)
    yield path
    if old is None:
        os.environ.pop("CHISO_LANDING_DIR", None)
    else:
        os.environ["CHISO_LANDING_DIR"] = old


@pytest.fixture(scope="session")
def warehouse() -> Iterator[None]:
    """The warehouse PostgreSQL: the private server (or CHISO_WAREHOUSE_URL's), bootstrapped; a private
    server the session started is stopped at its end."""
    from ingestion import pg

    started = pg.is_private() and not pg.private_status().startswith("running")
    if pg.is_private():
        pg.start_private()
    pg.bootstrap()
    yield
    if started:
        pg.stop_private()


@pytest.fixture(scope="session")
def dvcqg_server() -> Iterator[str]:
    from ingestion.sandbox import dvcqg

    # the sandbox province of the provincial sandboxes: S1 scores its units from the same dossiers
    with dvcqg.serve(**PROVINCE_SCALE) as base_url:
        yield base_url


@pytest.fixture
def dvcqg_sandbox(dvcqg_server: str) -> Iterator[str]:
    """The S1 sandbox's base URL, with no fault queued before or after the test."""
    httpx.post(f"{dvcqg_server}/_sandbox/reset")
    yield dvcqg_server
    httpx.post(f"{dvcqg_server}/_sandbox/reset")


@pytest.fixture
def dvcqg_faults(dvcqg_sandbox: str) -> Callable[[list[dict]], None]:
    """Queue faults on the S1 sandbox for the next requests (see ingestion/sandbox/__init__.py)."""

    def queue(faults: list[dict]) -> None:
        httpx.post(f"{dvcqg_sandbox}/_sandbox/faults", json=faults).raise_for_status()

    return queue
