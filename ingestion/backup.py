"""Backups of what a chiso install cannot rebuild, and their restore.

Raw is the history of what the sources sent (they may not send it again), Airflow's and Superset's metadata
hold the runs, users, roles and UI changes, the landing area holds every page byte for byte. A backup is one
folder, 0700 with 0600 files (it holds personal data):

    warehouse.dump, airflow.dump, superset.dump   pg_dump, custom format, one per database
    landing.tar                                   the landing area
    manifest.json                                 sha256 of each file; per warehouse table, rows and checksum

`restore(folder)` puts a backup back in place: the roles and databases are (re)created, each database is
replaced by its dump (the warehouse's tables then checked against the manifest), the landing files are put
back. It refuses while another session uses a database (stop
Airflow and Superset first) and before touching anything when a file does not match the manifest.
`restore(folder, check=True)` proves a backup: the warehouse dump is restored into a scratch database the
same way, every table's checksum is compared with the manifest, and the scratch database is dropped.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tarfile
import time
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from ingestion import clock, pg
from ingestion.config import settings

CHECKED_SCHEMAS = ("raw", "audit", "quarantine", "seeds", "staging", "intermediate", "marts")
MANIFEST = "manifest.json"


class BackupError(RuntimeError):
    pass


def table_checksums(conn: psycopg.Connection) -> dict[str, list[Any]]:
    """schema.table -> [rows, md5 over the rows' md5s in order]: equal whatever the rows' physical order."""
    tables = conn.execute("select schemaname, tablename from pg_tables where schemaname = any(%s)"
                          " order by 1, 2", (list(CHECKED_SCHEMAS),)).fetchall()
    out = {}
    for schema, table in tables:
        rows, digest = conn.execute(sql.SQL(
            "select count(*), coalesce(md5(string_agg(h, '' order by h)), '') from"
            " (select md5(t::text) as h from {} as t) as x").format(sql.Identifier(schema, table))).fetchone()
        out[f"{schema}.{table}"] = [rows, digest]
    return out


def _client_env() -> dict[str, str]:
    """pg_dump/pg_restore reach the server as its admin; the password in the environment, not argv."""
    srv = pg.server()
    return {**os.environ, "PGHOST": srv.host, "PGPORT": str(srv.port), "PGUSER": srv.admin_user,
            "PGPASSWORD": srv.admin_password}


def _run(args: list[str]) -> None:
    done = subprocess.run(args, env=_client_env(), capture_output=True, text=True)
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        raise BackupError(f"{Path(args[0]).name} failed: {lines[-1] if lines else done.returncode}")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _private_file(path: Path) -> None:
    path.chmod(0o600)


def backup(out: Path | None = None) -> dict[str, Any]:
    started = time.monotonic()
    folder = out or settings().home / "backups" / clock.now().strftime("%Y%m%dT%H%M%S")
    folder.mkdir(mode=0o700, parents=True, exist_ok=False)
    folder.chmod(0o700)
    bin_dir = pg.server_bin()
    for kind in pg.DATABASES:
        dump = folder / f"{kind}.dump"
        _run([str(bin_dir / "pg_dump"), "--format=custom", "--file", str(dump), pg.database_name(kind)])
        _private_file(dump)
    landing = settings().landing_dir
    tar_path = folder / "landing.tar"
    with tarfile.open(tar_path, "w") as tar:  # the pages are gzip already
        if landing.is_dir():
            tar.add(landing, arcname="landing")
    _private_file(tar_path)
    with pg.connect("admin") as conn:
        tables = table_checksums(conn)
    files = sorted(p.name for p in folder.iterdir())
    manifest = {"created_at": clock.now().isoformat(),
                "databases": {k: pg.database_name(k) for k in pg.DATABASES},
                "files": {name: _sha256(folder / name) for name in files}, "tables": tables}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1))
    _private_file(folder / MANIFEST)
    size = sum((folder / name).stat().st_size for name in files)
    return {"folder": str(folder), "bytes": size, "tables": len(tables),
            "rows": sum(rows for rows, _ in tables.values()), "seconds": round(time.monotonic() - started, 1)}


def _manifest(folder: Path) -> dict[str, Any]:
    """The backup's manifest, once every file it names matches its checksum."""
    path = folder / MANIFEST
    if not path.is_file():
        raise BackupError(f"{folder} is not a chiso backup (no {MANIFEST})")
    manifest = json.loads(path.read_text())
    for name, digest in manifest["files"].items():
        if not (folder / name).is_file() or _sha256(folder / name) != digest:
            raise BackupError(f"backup {folder}: {name} is missing or does not match its checksum;"
                              " nothing was restored")
    return manifest


def _restore_database(dump: Path, name: str) -> None:
    """Replace database `name` by the dump's content (dropped and created again)."""
    with pg.admin_connect() as conn:
        others = conn.execute("select count(*) from pg_stat_activity where datname = %s",
                              (name,)).fetchone()[0]
        if others:
            raise BackupError(f"{others} sessions use database {name}; stop Airflow and Superset first")
        conn.execute(sql.SQL("drop database if exists {}").format(sql.Identifier(name)))
        conn.execute(sql.SQL("create database {} encoding 'UTF8' template template0").format(
            sql.Identifier(name)))
    _run([str(pg.server_bin() / "pg_restore"), "--exit-on-error", "--dbname", name, str(dump)])


def _same_tables(folder: Path, manifest: dict[str, Any], restored: dict[str, list[Any]]) -> None:
    differ = sorted(t for t in set(restored) | set(manifest["tables"])
                    if restored.get(t) != manifest["tables"].get(t))
    if differ:
        raise BackupError(f"backup {folder}: {len(differ)} tables differ once restored:"
                          f" {', '.join(differ[:5])}")


def restore(folder: Path, check: bool = False) -> dict[str, Any]:
    started = time.monotonic()
    manifest = _manifest(folder)
    if check:
        scratch = f"{pg.database_name('warehouse')}_restore_check"
        try:
            _restore_database(folder / "warehouse.dump", scratch)
            with pg.admin_connect(scratch) as conn:
                restored = table_checksums(conn)
        finally:
            with pg.admin_connect() as conn:
                conn.execute(sql.SQL("drop database if exists {} with (force)").format(
                    sql.Identifier(scratch)))
        _same_tables(folder, manifest, restored)
        return {"checked_tables": len(restored), "rows": sum(r for r, _ in restored.values()),
                "seconds": round(time.monotonic() - started, 1)}
    pg.bootstrap()  # the roles (pg_dump keeps none) and the databases, on a new server too
    for kind in pg.DATABASES:
        _restore_database(folder / f"{kind}.dump", pg.database_name(kind))
    with pg.connect("admin") as conn:
        _same_tables(folder, manifest, table_checksums(conn))
    pg.bootstrap()  # grants of a newer chiso, if the backup is older
    landing = settings().landing_dir
    with tarfile.open(folder / "landing.tar") as tar:
        members = [m for m in tar.getmembers() if m.name == "landing" or m.name.startswith("landing/")]
        for member in members:
            member.name = member.name[len("landing"):].lstrip("/") or "."
        landing.mkdir(mode=0o700, parents=True, exist_ok=True)
        tar.extractall(landing, members=members, filter="data")
    return {"restored": list(pg.DATABASES), "landing_files": len(members),
            "seconds": round(time.monotonic() - started, 1)}
