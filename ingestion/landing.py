"""The landing area: every page a source answered, kept byte for byte (gzip), with its sha256.

Layout: <landing_dir>/<source>/<entity>/<run_id>/page-00001.json.gz. The checksum is over the raw bytes
as received (before compression), so it can be checked against a re-download. Pages carry applicants'
personal data in clear: the folders are created 0700 and the files 0600, readable by the account that
runs the loads only (see docs/runbook.md, "Who may read the landing area").
"""

from __future__ import annotations

import gzip
import hashlib
import os
from pathlib import Path

from ingestion.config import settings


def run_dir(source: str, entity: str, run_id: int | str) -> Path:
    return settings().landing_dir / source / entity / str(run_id)


def land_page(source: str, entity: str, run_id: int | str, page_no: int, raw: bytes) -> tuple[Path, str, int]:
    """Write one page; returns (path, sha256 hex of the raw bytes, number of raw bytes)."""
    folder = run_dir(source, entity, run_id)
    if not folder.is_dir():
        private_dirs(folder)
    path = folder / f"page-{page_no:05d}.json.gz"
    tmp = path.with_suffix(".tmp")
    # mtime=0 keeps the gzip bytes reproducible; write then rename so a crash leaves no half page. Level 1:
    # a third of level 6's CPU for files ~40% larger (the load compresses every page it reads).
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh, gzip.GzipFile(fileobj=fh, mode="wb", mtime=0, compresslevel=1) as gz:
        gz.write(raw)
    os.replace(tmp, path)
    return path, hashlib.sha256(raw).hexdigest(), len(raw)


def private_dirs(folder: Path) -> None:
    """Create `folder` and its missing parents 0700, and make the landing dir itself 0700 (an older install
    made it 0755): nobody but the loads' account lists or reads what landed."""
    for path in reversed([p for p in (folder, *folder.parents) if not p.exists()]):
        try:
            path.mkdir(mode=0o700)
        except FileExistsError:  # another load made it first
            pass
    root = settings().landing_dir
    if root.is_dir() and root.stat().st_mode & 0o077:
        os.chmod(root, 0o700)


def read_page(path: Path) -> bytes:
    return gzip.decompress(path.read_bytes())


def combined_checksum(checksums: list[str]) -> str:
    """sha256 over the pages' checksums in page order (what audit.extract_runs.checksum holds)."""
    return hashlib.sha256("\n".join(checksums).encode()).hexdigest()


def relative(path: Path) -> str:
    """Path as stored in the warehouse: relative to the landing dir, so it survives a moved checkout."""
    try:
        return str(path.relative_to(settings().landing_dir))
    except ValueError:
        return str(path)
