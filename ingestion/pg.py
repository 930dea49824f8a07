"""The warehouse's PostgreSQL: a private server under .chiso/pg when no URL is configured, else the given one.

Either way `bootstrap()` makes the same databases, least-privilege roles, schemas and audit tables, so the
rest of the project never knows which kind of server it talks to.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

import psycopg
from psycopg import sql

from ingestion import connections
from ingestion.config import PROJECT_ROOT, credentials, settings

ADMIN_ROLE = "chiso_admin"
# role name -> what it may do; the SQL in sql/roles.sql grants exactly this.
ROLES = {
    "loader": "chiso_loader",  # writes raw, audit, quarantine; the only reader of personal data in raw
    "transform": "chiso_transform",  # dbt: reads raw, owns staging/intermediate/marts
    "reader": "chiso_reader",  # Superset's warehouse connection: reads marts and audit
    "airflow": "chiso_airflow",  # owns Airflow's metadata database, nothing in the warehouse
    "superset": "chiso_superset",  # owns Superset's metadata database, nothing in the warehouse
}
DATABASES = ("warehouse", "airflow", "superset")


class PostgresError(RuntimeError):
    pass


@dataclass(frozen=True)
class Server:
    host: str
    port: int
    admin_user: str
    admin_password: str
    admin_db: str  # the database named in a configured URL, or "postgres" for the private server


def server_bin() -> Path:
    configured = os.environ.get("CHISO_PG_BIN")
    if configured:
        return Path(configured)
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name))
    if found:
        return Path(found[-1])
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise PostgresError("no PostgreSQL server binaries found: run `make install` (apt package postgresql)")


def database_name(kind: str) -> str:
    s = settings()
    return {"warehouse": s.warehouse_db, "airflow": f"{s.warehouse_db}_airflow",
            "superset": f"{s.warehouse_db}_superset"}[kind]


def server() -> Server:
    s = settings()
    if configured := connections.warehouse_url():
        u = urlsplit(configured.replace("+psycopg", "").replace("+psycopg2", ""))
        return Server(u.hostname or "127.0.0.1", u.port or 5432, u.username or "postgres",
                      u.password or "", (u.path or "/postgres").lstrip("/") or "postgres")
    port_file = s.pg_dir / "port"
    if not port_file.exists():
        raise PostgresError("the private PostgreSQL is not initialised: run `chiso up`")
    return Server("127.0.0.1", int(port_file.read_text()), ADMIN_ROLE, credentials()["admin"], "postgres")


def _login(role: str) -> tuple[str, str]:
    if role == "admin":
        srv = server()
        return srv.admin_user, srv.admin_password
    return ROLES[role], credentials()[role]


def url(role: str = "transform", db: str = "warehouse", driver: str = "postgresql+psycopg") -> str:
    """SQLAlchemy/libpq URL for a role ("admin", "loader", "transform", "reader") and database kind."""
    srv = server()
    user, password = _login(role)
    return f"{driver}://{quote(user)}:{quote(password, safe='')}@{srv.host}:{srv.port}/{database_name(db)}"


def passfile() -> Path:
    return settings().home / "pgpass"


def url_without_password(role: str = "reader", db: str = "warehouse") -> str:
    """A libpq URL that reads the password from the project's password file (written here, mode 600), so
    the password is neither printed nor in the process list of a `psql "$(chiso warehouse-url)"`."""
    srv = server()
    user, password = _login(role)

    def esc(text: object) -> str:  # the password file's escapes
        return str(text).replace("\\", "\\\\").replace(":", "\\:")

    path = passfile()
    prefix = ":".join(esc(v) for v in (srv.host, srv.port, database_name(db), user)) + ":"
    lines = path.read_text().splitlines() if path.exists() else []
    lines = [line for line in lines if not line.startswith(prefix)] + [prefix + esc(password)]
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    path.chmod(0o600)  # libpq ignores a password file others can read
    return (f"postgresql://{quote(user)}@{srv.host}:{srv.port}/{database_name(db)}"
            f"?passfile={quote(str(path))}")


def connect(role: str = "loader", db: str = "warehouse", **kwargs) -> psycopg.Connection:
    return psycopg.connect(url(role, db, driver="postgresql"), **kwargs)


# --- the private server -------------------------------------------------------------------------------


def _run_as_server_user() -> dict:
    """Keyword arguments that make a subprocess run as 'postgres' when we are root (initdb refuses root)."""
    return {"user": "postgres", "group": "postgres"} if os.geteuid() == 0 else {}


def _make_reachable(path: Path) -> None:
    """As root, the server user must be able to traverse every parent of its data folder."""
    if os.geteuid() != 0:
        return
    shutil.chown(path, "postgres", "postgres")
    for parent in path.parents:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            parent.chmod(mode | 0o001)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _data_dir() -> Path:
    return settings().pg_dir / "data"


def is_private() -> bool:
    return not connections.warehouse_url()


def private_status() -> str:
    if not is_private():
        return "external server configured (connection chiso_warehouse or CHISO_WAREHOUSE_URL)"
    data = _data_dir()
    if not (data / "PG_VERSION").exists():
        return "not initialised"
    result = subprocess.run([str(server_bin() / "pg_ctl"), "status", "-D", str(data)],
                            capture_output=True, text=True, **_run_as_server_user())
    port = (settings().pg_dir / "port").read_text().strip()
    return f"running on 127.0.0.1:{port}" if result.returncode == 0 else "stopped"


def start_private() -> int:
    """Initialise (once) and start the private server; safe to call when it already runs."""
    s = settings()
    pg_dir, data = s.pg_dir, _data_dir()
    pg_dir.mkdir(parents=True, exist_ok=True)
    bin_dir = server_bin()
    port_file = pg_dir / "port"
    if not (data / "PG_VERSION").exists():
        port = s.pg_port or _free_port()
        data.mkdir(parents=True, exist_ok=True)
        _make_reachable(pg_dir)
        _make_reachable(data)
        pwfile = pg_dir / "pwfile"
        pwfile.write_text(credentials()["admin"])
        if os.geteuid() == 0:
            shutil.chown(pwfile, "postgres", "postgres")
        subprocess.run([str(bin_dir / "initdb"), "-D", str(data), "-U", ADMIN_ROLE, "-A", "scram-sha-256",
                        f"--pwfile={pwfile}", "-E", "UTF8", "--locale=C.UTF-8"],
                       check=True, capture_output=True, **_run_as_server_user())
        pwfile.unlink()
        with (data / "postgresql.conf").open("a") as conf:
            conf.write(f"\n# chiso private server\nlisten_addresses = '127.0.0.1'\nport = {port}\n"
                       "unix_socket_directories = ''\nmax_connections = 200\nshared_buffers = 256MB\n"
                       "work_mem = 32MB\nmaintenance_work_mem = 256MB\nfsync = on\n"
                       "timezone = 'Asia/Ho_Chi_Minh'\nlog_timezone = 'Asia/Ho_Chi_Minh'\n")
        port_file.write_text(str(port))
    port = int(port_file.read_text())
    if private_status().startswith("running"):
        return port
    if _port_open(port):
        raise PostgresError(f"port {port} is taken by another program; set CHISO_PG_PORT or free it")
    log = pg_dir / "server.log"
    if os.geteuid() == 0 and log.exists():
        shutil.chown(log, "postgres", "postgres")
    result = subprocess.run([str(bin_dir / "pg_ctl"), "start", "-w", "-t", "60", "-D", str(data),
                             "-l", str(log)], capture_output=True, text=True, **_run_as_server_user())
    if result.returncode != 0:
        raise PostgresError(f"PostgreSQL did not start; see {log}")
    return port


def stop_private() -> bool:
    data = _data_dir()
    if not is_private() or not (data / "PG_VERSION").exists():
        return False
    result = subprocess.run([str(server_bin() / "pg_ctl"), "stop", "-m", "fast", "-w", "-D", str(data)],
                            capture_output=True, text=True, **_run_as_server_user())
    return result.returncode == 0


# --- databases, roles, schemas ------------------------------------------------------------------------


def admin_connect(dbname: str | None = None) -> psycopg.Connection:
    srv = server()
    deadline = time.monotonic() + 30
    while True:
        try:
            return psycopg.connect(host=srv.host, port=srv.port, user=srv.admin_user,
                                   password=srv.admin_password, dbname=dbname or srv.admin_db,
                                   autocommit=True, connect_timeout=5)
        except psycopg.OperationalError as exc:
            if time.monotonic() > deadline:
                raise PostgresError(f"cannot connect to PostgreSQL at {srv.host}:{srv.port}: {exc}") from exc
            time.sleep(0.5)


def bootstrap() -> None:
    """Create databases, roles and warehouse objects; idempotent, so every `chiso up` may run it."""
    creds = credentials()
    with admin_connect() as conn:
        for key, role in ROLES.items():
            exists = conn.execute("select 1 from pg_roles where rolname = %s", (role,)).fetchone()
            verb = "alter" if exists else "create"
            conn.execute(sql.SQL(verb + " role {} login password {}").format(
                sql.Identifier(role), sql.Literal(creds[key])))
        for kind in DATABASES:
            name = database_name(kind)
            if not conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone():
                conn.execute(sql.SQL("create database {} encoding 'UTF8' template template0").format(
                    sql.Identifier(name)))
        for kind in ("airflow", "superset"):  # metadata databases belong to the app that uses them, alone
            name = sql.Identifier(database_name(kind))
            conn.execute(sql.SQL("alter database {} owner to {}").format(name, sql.Identifier(ROLES[kind])))
            conn.execute(sql.SQL("revoke all on database {} from public").format(name))
    with admin_connect(database_name("warehouse")) as conn:
        for name in ("roles.sql", "warehouse.sql", "provincial.sql"):
            text = (PROJECT_ROOT / "ingestion" / "sql" / name).read_text()
            conn.execute(text.replace("{{database}}", database_name("warehouse")))
