"""Secrets stay secret: no URL or process list shows a password, no role reaches another app's metadata, and
no secret has a default anywhere in the configuration (each comes from the environment or is generated)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from ingestion import config, pg
from ingestion.config import credentials

ROOT = Path(__file__).resolve().parents[2]
SECRET_NAME = re.compile(r"(PASSWORD|SECRET|_KEY|SALT|TOKEN)", re.I)


def _chiso(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "ingestion.cli", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, check=True)
    return done.stdout.strip()


def test_warehouse_url_hides_the_password_and_works(warehouse) -> None:
    shown = _chiso("warehouse-url")
    assert credentials()["reader"] not in shown and "passfile=" in shown
    assert (pg.passfile().stat().st_mode & 0o777) == 0o600
    with psycopg.connect(shown) as conn:
        assert conn.execute("select current_user").fetchone()[0] == pg.ROLES["reader"]
    assert credentials()["reader"] in _chiso("warehouse-url", "--show-password")


@pytest.mark.parametrize("role", ["loader", "transform", "reader"])
def test_warehouse_roles_cannot_reach_the_metadata_databases(warehouse, role) -> None:
    for kind in ("airflow", "superset"):
        with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
            pg.connect(role, db=kind).close()


def test_no_secret_has_a_default() -> None:
    # the local setup: every secret is in config.SECRETS (environment, else generated per install)
    for line in (ROOT / ".env.example").read_text().splitlines():
        for name, value in re.findall(r"\b(CHISO_[A-Z_]+)=(\S*)", line):
            if SECRET_NAME.search(name):
                assert value == "" and name in config.SECRETS.values(), line
    # the deployment: Compose refuses to start without each secret (${VAR:?...}), never a default value
    compose = (ROOT / "docker" / "compose.yaml").read_text()
    required = set(re.findall(r"\$\{(\w+):\?", compose))
    for name, default in re.findall(r"\$\{(\w+)(?::?-([^}]*))?\}", compose):
        if SECRET_NAME.search(name):
            assert not default, f"{name} has a default in docker/compose.yaml"
            assert name in required or name == "CHISO_SMTP_PASSWORD", f"{name} is never required"
    for line in (ROOT / "docker" / ".env.example").read_text().splitlines():
        if "=" in line and not line.startswith("#") and SECRET_NAME.search(line.split("=")[0]):
            assert line.split("=", 1)[1] == "", line
    # Superset's key and Airflow's keys come from there too, never from a literal
    superset = (ROOT / "superset" / "superset_config.py").read_text()
    assert 'SECRET_KEY = os.environ["CHISO_SUPERSET_SECRET_KEY"]' in superset
    assert not re.search(r"(SECRET_KEY|PASSWORD)\s*=\s*['\"]", superset)
    from ingestion import orchestration

    env = orchestration.airflow_environ()
    assert env["AIRFLOW__CORE__FERNET_KEY"] == credentials()["airflow_fernet_key"]
    from cryptography.fernet import Fernet

    Fernet(env["AIRFLOW__CORE__FERNET_KEY"])  # a valid key
