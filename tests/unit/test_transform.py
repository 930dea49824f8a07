"""ingestion.transform without a database: the environment dbt gets, and the profile that reads it."""

from __future__ import annotations

from ingestion import pg, transform


def test_dbt_env_splits_the_transform_url(monkeypatch):
    monkeypatch.setattr(pg, "url", lambda role, db="warehouse", driver="": (
        "postgresql://chiso_transform:p%40ss%2Fw0rd%3A@10.0.0.5:6543/chiso"))
    env = transform.dbt_env()
    assert env["CHISO_DBT_HOST"] == "10.0.0.5" and env["CHISO_DBT_PORT"] == "6543"
    assert env["CHISO_DBT_USER"] == "chiso_transform" and env["CHISO_DBT_PASSWORD"] == "p@ss/w0rd:"
    assert env["CHISO_DBT_DBNAME"] == "chiso"
    assert env["DBT_PROFILES_DIR"] == env["DBT_PROJECT_DIR"] == str(transform.DBT_PROJECT_DIR)


def test_dbt_env_without_a_server_still_names_the_project(monkeypatch):
    def not_initialised(*args, **kwargs):
        raise pg.PostgresError("not initialised")

    monkeypatch.setattr(pg, "url", not_initialised)
    env = transform.dbt_env()
    assert "CHISO_DBT_HOST" not in env and env["DBT_PROJECT_DIR"] == str(transform.DBT_PROJECT_DIR)


def test_profile_reads_only_the_environment():
    text = (transform.DBT_PROJECT_DIR / "profiles.yml").read_text()
    for var in ("HOST", "PORT", "USER", "PASSWORD", "DBNAME"):
        assert f"env_var('CHISO_DBT_{var}'" in text
    assert "threads: 2" in text
