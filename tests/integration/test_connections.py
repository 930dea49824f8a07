"""Sources and the warehouse as Airflow connections (ingestion.connections), with the CHISO_* settings as the
default: the S2 and S4 sandboxes answer only with the connection's credentials, the warehouse is reached
through its connection, and a connection added with `airflow connections add` is what a task sees."""

from __future__ import annotations

import json
import subprocess
import textwrap
from urllib.parse import quote, urlsplit

import pytest

from ingestion import connections, pg
from ingestion.config import credentials, settings
from ingestion.http import SourceError
from ingestion.orchestration import airflow_bin
from ingestion.sandbox.provincial import serve_centres, serve_dossiers
from ingestion.sources import centres, dossiers

SMALL = {"dossiers_per_day": 5, "history_days": 3, "as_of": "2026-10-01T00:00:00+07:00"}
NOWHERE = "http://127.0.0.1:9"  # the CHISO_* default, wrong on purpose: only the connection can work


@pytest.fixture
def env(monkeypatch):
    """No connection and no Airflow deployment around, and settings read afresh."""
    for conn_id in (*connections.SOURCE_CONN_IDS.values(), connections.WAREHOUSE_CONN_ID):
        monkeypatch.delenv(f"AIRFLOW_CONN_{conn_id.upper()}", raising=False)
    monkeypatch.delenv("AIRFLOW_HOME", raising=False)
    settings.cache_clear()
    connections._warehouse_connection_url.cache_clear()
    yield monkeypatch
    monkeypatch.undo()
    settings.cache_clear()
    connections._warehouse_connection_url.cache_clear()


def _http(url: str, **fields) -> str:
    parts = urlsplit(url)
    return json.dumps({"conn_type": "http", "host": parts.hostname, "port": parts.port,
                       "schema": parts.scheme, **fields})


def test_without_a_connection_the_chiso_settings_serve(env) -> None:
    env.setenv("CHISO_DOSSIERS_BASE_URL", NOWHERE)
    env.setenv("CHISO_DOSSIERS_CLIENT_ID", "tinh-dak-lak")
    assert connections.source("dossiers") == connections.Endpoint(
        NOWHERE, "tinh-dak-lak", credentials()["dossiers_client_secret"])
    assert connections.source("centres").secret == credentials()["centres_api_key"]
    assert connections.source("dvcqg").secret is None
    assert connections.warehouse_url() == settings().warehouse_url


@pytest.mark.parametrize(("fields", "url"), [
    ({"host": "s2.dak-lak.gov.vn", "schema": "https", "port": 8443}, "https://s2.dak-lak.gov.vn:8443"),
    ({"host": "s2.dak-lak.gov.vn"}, "http://s2.dak-lak.gov.vn"),
    ({"host": "https://s2.dak-lak.gov.vn/hcc/"}, "https://s2.dak-lak.gov.vn/hcc"),
])
def test_an_http_connection_gives_the_base_url_as_airflow_builds_it(env, fields, url) -> None:
    env.setenv("AIRFLOW_CONN_CHISO_DOSSIERS", json.dumps({"conn_type": "http", **fields}))
    endpoint = connections.source("dossiers")
    assert endpoint.base_url == url
    # fields the connection leaves empty come from the settings
    assert (endpoint.login, endpoint.secret) == (settings().dossiers_client_id,
                                                 credentials()["dossiers_client_secret"])


def test_s2_is_read_with_the_connections_client_credentials(env) -> None:
    env.setenv("CHISO_DOSSIERS_BASE_URL", NOWHERE)
    with serve_dossiers(client_id="ky-su-du-lieu", client_secret="tu-ket-noi-airflow", **SMALL) as url:
        env.setenv("AIRFLOW_CONN_CHISO_DOSSIERS", _http(url, login="ky-su-du-lieu",
                                                        password="tu-ket-noi-airflow"))
        api = dossiers.client(max_tries=1)
        assert api.token() and api.tokens_fetched == 1
        env.setenv("AIRFLOW_CONN_CHISO_DOSSIERS", _http(url, login="ky-su-du-lieu", password="sai"))
        with pytest.raises(SourceError, match="401"):
            dossiers.client(max_tries=1).token()


def test_s4_is_read_with_the_connections_api_key(env) -> None:
    env.setenv("CHISO_CENTRES_BASE_URL", NOWHERE)
    with serve_centres(api_key="khoa-tu-ket-noi", **SMALL) as url:
        env.setenv("AIRFLOW_CONN_CHISO_CENTRES", _http(url, password="khoa-tu-ket-noi"))
        page = centres.client(max_tries=1).get_json(centres.CENTRES_ENTITY.path, {"page": 0, "size": 5})
        assert page.status == 200


@pytest.mark.parametrize("form", ["json", "uri"])
def test_the_warehouse_is_reached_through_its_connection(env, warehouse, form) -> None:
    server = pg.server()
    value = json.dumps({"conn_type": "postgres", "host": server.host, "port": server.port,
                        "schema": server.admin_db, "login": server.admin_user,
                        "password": server.admin_password})
    if form == "uri":
        value = (f"postgres://{quote(server.admin_user, safe='')}:{quote(server.admin_password, safe='')}"
                 f"@{server.host}:{server.port}/{server.admin_db}")
    env.setenv("CHISO_WAREHOUSE_URL", "postgresql://nobody@127.0.0.1:9/postgres")  # the connection wins
    env.setenv("AIRFLOW_CONN_CHISO_WAREHOUSE", value)
    settings.cache_clear()
    connections._warehouse_connection_url.cache_clear()
    assert not pg.is_private()
    with pg.connect("reader") as conn:
        assert conn.execute("select current_user").fetchone()[0] == pg.ROLES["reader"]


_PROBE_DAG = textwrap.dedent("""
    import json, os
    import pendulum
    from airflow.sdk import DAG, task

    with DAG("chiso_connection_probe", schedule=None, start_date=pendulum.datetime(2026, 1, 1)):
        @task
        def probe():
            from ingestion import connections

            endpoint = connections.source("centres")
            with open(os.environ["PROBE_OUT"], "w") as out:
                json.dump({"base_url": endpoint.base_url, "secret": endpoint.secret}, out)

        probe()
""")


def test_a_task_sees_a_connection_added_with_the_airflow_cli(env, airflow_env, tmp_path) -> None:
    """`airflow connections add` writes the metadata database; a task reads it through the execution API."""
    (tmp_path / "dags").mkdir()
    (tmp_path / "dags" / "probe.py").write_text(_PROBE_DAG)
    run_env = {**airflow_env, "AIRFLOW__CORE__DAGS_FOLDER": str(tmp_path / "dags"),
               "PROBE_OUT": str(tmp_path / "endpoint.json")}

    def airflow(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([airflow_bin(), *args], env=run_env, capture_output=True, text=True,
                              timeout=600)

    added = airflow("connections", "add", "chiso_centres", "--conn-type", "http", "--conn-host",
                    "s4.dak-lak.gov.vn", "--conn-schema", "https", "--conn-password", "khoa-trong-airflow")
    assert added.returncode == 0, added.stderr[-2000:]
    try:
        ran = airflow("dags", "test", "chiso_connection_probe", "2026-10-01")
        assert ran.returncode == 0, (ran.stdout + ran.stderr)[-3000:]
    finally:
        airflow("connections", "delete", "chiso_centres")
    seen = json.loads((tmp_path / "endpoint.json").read_text())
    assert seen == {"base_url": "https://s4.dak-lak.gov.vn", "secret": "khoa-trong-airflow"}
