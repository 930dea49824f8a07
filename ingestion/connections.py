"""Where chiso finds its sources and its warehouse: Airflow connections, with the CHISO_* settings as the
local default, so a data engineer manages credentials where Airflow users expect them.

    conn id           type      what chiso reads
    chiso_dvcqg       http      the base URL (S1 is public)
    chiso_dossiers    http      the base URL; login = OAuth client id, password = client secret (S2)
    chiso_feedback    http      the base URL; login = OAuth client id, password = client secret (S3)
    chiso_centres     http      the base URL; password = the X-Api-Key (S4)
    chiso_warehouse   postgres  host, port, schema (the database), login and password of an owner role

The base URL is built as Airflow's HttpHook builds it: `host` when it holds a whole URL, else
`<schema or http>://host[:port]`. A source connection comes from anywhere Airflow reads one: an
`AIRFLOW_CONN_<ID>` variable (JSON or URI), a secrets backend, or `airflow connections add` (the metadata
database, seen from inside a task). The warehouse's is read from AIRFLOW_CONN_CHISO_WAREHOUSE only: Airflow's
own metadata database lives on that server, so no Airflow service can answer before it is known. A
connection that is not defined leaves the CHISO_* settings (and the generated credentials file) in charge;
a field a connection leaves empty falls back the same way.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache
from urllib.parse import quote

from ingestion.config import credentials, settings

SOURCE_CONN_IDS = {"dvcqg": "chiso_dvcqg", "dossiers": "chiso_dossiers", "feedback": "chiso_feedback",
                   "centres": "chiso_centres"}
WAREHOUSE_CONN_ID = "chiso_warehouse"
# the credentials-file key of each source's secret (config.SECRETS)
_SECRET_KEYS = {"dossiers": "dossiers_client_secret", "feedback": "feedback_client_secret",
                "centres": "centres_api_key"}


@dataclass(frozen=True)
class Endpoint:
    base_url: str
    login: str | None = None  # the OAuth client id, where the source has one
    secret: str | None = None  # the OAuth client secret or the API key


def lookup(conn_id: str):
    """Airflow's connection `conn_id`, or None when it is not defined. Airflow is asked only from a process
    of an Airflow deployment (AIRFLOW_HOME set, as chiso sets it for each of them) or when the connection's
    variable is set: importing Airflow elsewhere would create ~/airflow. Nor where Airflow is not installed
    (the Superset image)."""
    if "AIRFLOW_HOME" not in os.environ and f"AIRFLOW_CONN_{conn_id.upper()}" not in os.environ:
        return None
    try:
        from airflow.sdk import BaseHook
        from airflow.sdk.exceptions import AirflowNotFoundException
    except ImportError:
        return None
    try:
        return BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return None


def http_base_url(conn) -> str | None:
    if not conn.host:
        return None
    if "://" in conn.host:
        return conn.host.rstrip("/")
    return f"{conn.schema or 'http'}://{conn.host}" + (f":{conn.port}" if conn.port else "")


def source(name: str) -> Endpoint:
    """The endpoint and credentials of source `name` (dvcqg, dossiers, feedback, centres)."""
    s = settings()
    conn = lookup(SOURCE_CONN_IDS[name])
    base_url = (conn and http_base_url(conn)) or getattr(s, f"{name}_base_url")
    login = (conn and conn.login) or getattr(s, f"{name}_client_id", None)
    secret = (conn and conn.password) or (credentials()[_SECRET_KEYS[name]] if name in _SECRET_KEYS else None)
    return Endpoint(base_url, login, secret)


def warehouse_url() -> str | None:
    """An owner's libpq URL of the warehouse from the chiso_warehouse connection, else CHISO_WAREHOUSE_URL;
    None: chiso's private server."""
    return _warehouse_connection_url() or settings().warehouse_url


@cache  # every database connection asks: the variable is read once per process
def _warehouse_connection_url() -> str | None:
    """From the AIRFLOW_CONN_CHISO_WAREHOUSE variable alone, parsed as Airflow parses it: every process
    (the scheduler's own metadata connection, the triggerer's callbacks, the CLI) needs the warehouse before
    any Airflow service could answer."""
    value = os.environ.get(f"AIRFLOW_CONN_{WAREHOUSE_CONN_ID.upper()}")
    if not value:
        return None
    from airflow.sdk import Connection

    parse = Connection.from_json if value.lstrip().startswith("{") else Connection.from_uri
    conn = parse(value, conn_id=WAREHOUSE_CONN_ID)
    if not conn.host:
        return None
    auth = quote(conn.login or "postgres", safe="") + (f":{quote(conn.password, safe='')}" if conn.password
                                                      else "")
    return f"postgresql://{auth}@{conn.host}:{conn.port or 5432}/{conn.schema or 'postgres'}"
