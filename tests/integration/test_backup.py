"""`chiso backup` and `chiso restore` on the test warehouse: a backup restores with every table's checksum
equal to what was saved, files are private, and a damaged backup is refused before anything is touched."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ingestion import backup, pg

ROOT = Path(__file__).resolve().parents[2]


def _chiso(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ingestion.cli", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)


@pytest.fixture(scope="module")
def saved(warehouse, tmp_path_factory) -> Path:
    with pg.connect("loader") as conn:  # at least one row whatever ran before
        conn.execute("insert into audit.extract_runs (source, entity, status) values ('backup-test', 'x',"
                     " 'success')")
    folder = tmp_path_factory.mktemp("backups") / "one"
    done = _chiso("backup", "--out", str(folder))
    assert done.returncode == 0, done.stderr
    yield folder
    with pg.connect("loader") as conn:
        conn.execute("delete from audit.extract_runs where source = 'backup-test'")


def test_a_backup_restores_to_the_same_checksums(saved: Path) -> None:
    manifest = json.loads((saved / "manifest.json").read_text())
    assert set(manifest["files"]) == {"warehouse.dump", "airflow.dump", "superset.dump", "landing.tar"}
    assert manifest["tables"]["audit.extract_runs"][0] >= 1
    assert {p.stat().st_mode & 0o777 for p in saved.iterdir()} == {0o600}
    assert saved.stat().st_mode & 0o777 == 0o700
    done = _chiso("restore", str(saved), "--check")
    assert done.returncode == 0, done.stderr
    assert f"{len(manifest['tables'])} tables" in done.stdout and "match their checksums" in done.stdout
    # the check leaves no scratch database behind
    with pg.admin_connect() as conn:
        assert not conn.execute("select from pg_database where datname like '%restore_check'").fetchall()


def _copy(saved: Path, to: Path) -> Path:
    to.mkdir()
    for p in saved.iterdir():
        (to / p.name).write_bytes(p.read_bytes())
    return to


def test_a_backup_that_restores_other_rows_is_refused(saved: Path, tmp_path: Path) -> None:
    other = _copy(saved, tmp_path / "other")
    manifest = json.loads((other / "manifest.json").read_text())
    manifest["tables"]["audit.extract_runs"][1] = "0" * 32  # as if other rows had been saved
    (other / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(backup.BackupError, match="1 tables differ once restored: audit.extract_runs"):
        backup.restore(other, check=True)


def test_a_damaged_backup_is_refused_before_anything_is_touched(saved: Path, tmp_path: Path) -> None:
    damaged = _copy(saved, tmp_path / "damaged")
    with open(damaged / "warehouse.dump", "r+b") as fh:
        fh.seek(100)
        fh.write(b"\x00\x01\x02")
    done = _chiso("restore", str(damaged))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "warehouse.dump is missing or does not match its checksum; nothing was restored" in done.stderr
