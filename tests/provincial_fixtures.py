"""A warehouse database of its own filled from the S2-S4 sandboxes by the real clients (extract once per
session), for the tests of what lies on the provincial raw tables: the raw gates, staging, the personal-data
scan. `provincial_db` is the database's name; a module that uses `provincial_warehouse` runs against it
(settings, pg and the GX context point there) and is switched back at its end. Dropped when the session ends.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

import psycopg
import pytest
from psycopg import sql

from ingestion.sources.provincial import LOCAL_TZ

AS_OF = datetime(2026, 11, 20, 8, 0, tzinfo=LOCAL_TZ)
WINDOW = (AS_OF - timedelta(days=2), AS_OF)
SCALE = {"dossiers_per_day": 300, "history_days": 30, "as_of": AS_OF.isoformat()}


@contextmanager
def using_database(name: str) -> Iterator[None]:
    """Settings, pg and the GX gate point at warehouse database `name` inside the block."""
    from ingestion import pg, quality
    from ingestion.config import settings

    saved = {key: os.environ.get(key) for key in ("CHISO_WAREHOUSE_DB", quality.URL_ENV)}
    os.environ["CHISO_WAREHOUSE_DB"] = name
    settings.cache_clear()
    os.environ[quality.URL_ENV] = pg.url("transform")
    quality.context.cache_clear()
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        settings.cache_clear()
        quality.context.cache_clear()


@pytest.fixture(scope="session")
def provincial_db(warehouse, landing_dir) -> Iterator[str]:
    """The database, bootstrapped and extracted from the three sandboxes over a two-day window."""
    from ingestion import pg
    from ingestion.config import settings
    from ingestion.sandbox.provincial import serve_centres, serve_dossiers, serve_feedback
    from ingestion.sources import centres, dossiers, feedback

    name = f"{settings().warehouse_db}_provincial_test"
    try:
        with using_database(name):
            pg.bootstrap()
            with serve_dossiers(**SCALE) as d, serve_feedback(**SCALE) as f, serve_centres(**SCALE) as c:
                for module, base_url in ((dossiers, d), (feedback, f), (centres, c)):
                    module.extract(*WINDOW, base_url=base_url, run_label="pytest-provincial")
        yield name
    finally:
        srv = pg.server()
        with psycopg.connect(host=srv.host, port=srv.port, user=srv.admin_user, password=srv.admin_password,
                             dbname=srv.admin_db, autocommit=True) as conn:
            for db in (name, f"{name}_airflow", f"{name}_superset"):
                conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(db)))


@pytest.fixture(scope="module")
def provincial_warehouse(provincial_db: str) -> Iterator[str]:
    with using_database(provincial_db):
        yield provincial_db
