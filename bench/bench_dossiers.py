"""Benchmark: S2 dossiers end to end (sandbox over HTTP -> landing -> raw.dossiers), and the load stage
against PostgreSQL COPY of the same rows.

    .venv/bin/python -m bench.bench_dossiers [--per-day 60000 --days 20 --page-size 1000]

The sandbox runs as its own process (its JSON work does not share our interpreter). Each timed step starts
from the same state: the window's rows deleted from raw.dossiers and the table vacuumed (a first load of the
window). Figures:
- end to end: dossiers/s of `dossiers.extract` over the window (HTTP, landing, load, audit);
- load stage: from landed pages to committed raw rows: the run's landed pages read back (gunzip) and loaded
  again through `ingestion.load.run_load` (landing, NFC, parse, checks, typing, quarantine, insert, commit;
  no HTTP, no sandbox);
- baseline: the rows the load stage commits, exactly as they are in raw.dossiers (typed columns, record
  without personal data, run_id, landing_file, page_no), written to a local file in COPY text format and
  COPied back into raw.dossiers itself (same indexes, foreign key and defaults) in one transaction;
  ratio = load-stage rate / COPY rate;
- peak memory: the extractor process's peak RSS (ru_maxrss) at the end of the extract.
Results go to <home>/bench/dossiers-<time>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

os.environ.setdefault("CHISO_HOME_DIR", str(Path(__file__).resolve().parent.parent / ".chiso" / "bench"))

from ingestion import landing, pg  # noqa: E402
from ingestion.config import credentials, settings  # noqa: E402
from ingestion.load import SourcePage, run_load  # noqa: E402
from ingestion.sources import dossiers, provincial  # noqa: E402


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _sandbox(port: int, per_day: int, start: str, as_of: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "ingestion.sandbox.provincial", "--source", "dossiers",
                             "--port", str(port), "--dossiers-per-day", str(per_day), "--start", start,
                             "--as-of", as_of], stdout=subprocess.DEVNULL)
    for _ in range(300):
        try:
            httpx.get(f"http://127.0.0.1:{port}/_sandbox/clock", timeout=1)
            return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the dossiers sandbox did not start")


def _clear(window: tuple[datetime, datetime]) -> int:
    """Delete the window's rows from raw.dossiers and vacuum it: every timed step starts from this state."""
    with pg.connect("loader") as conn:
        rows = conn.execute("delete from raw.dossiers where ngay_cap_nhat >= %s and ngay_cap_nhat < %s",
                            window).rowcount
        conn.commit()
    with pg.connect("loader", autocommit=True) as conn:
        conn.execute("vacuum analyze raw.dossiers")
    return rows


COLUMNS = [*dossiers.DOSSIERS.columns, "record", "run_id", "landing_file", "page_no"]


def _export(window: tuple[datetime, datetime], path: str) -> int:
    """The window's raw rows (as the load committed them) to a local file in COPY text format."""
    collist = ", ".join(COLUMNS)
    with open(path, "wb") as fh, pg.connect("loader") as conn:
        with conn.cursor().copy(f"copy (select {collist} from raw.dossiers where ngay_cap_nhat >= %s"
                                " and ngay_cap_nhat < %s) to stdout", window) as cp:
            for chunk in cp:
                fh.write(chunk)
        return conn.execute("select count(*) from raw.dossiers where ngay_cap_nhat >= %s"
                            " and ngay_cap_nhat < %s", window).fetchone()[0]


def _copy_baseline(path: str) -> tuple[int, float]:
    """COPY the file into raw.dossiers (the window is empty), one transaction, timed to the commit."""
    with pg.connect("loader") as conn:
        started = time.perf_counter()
        with conn.cursor() as cur:
            with cur.copy(f"copy raw.dossiers ({', '.join(COLUMNS)}) from stdin") as cp:
                with open(path, "rb") as fh:
                    while chunk := fh.read(1 << 20):
                        cp.write(chunk)
            rows = cur.rowcount
        conn.commit()
        seconds = time.perf_counter() - started
    return rows, seconds


def _reload(run_id: int, window: tuple[datetime, datetime]) -> tuple[Any, float]:
    """The load stage alone: the run's landed pages through run_load again (same target and window)."""
    folder = landing.run_dir(dossiers.SOURCE, "dossiers", run_id)
    files = sorted(folder.glob("page-*.json.gz"))
    pages = (SourcePage(landing.read_page(f), content_key="content") for f in files)
    started = time.perf_counter()
    result = run_load(source=dossiers.SOURCE, entity="dossiers-bench-reload", target=dossiers.DOSSIERS,
                      pages=pages, window=dossiers.DOSSIERS_ENTITY.window(*window), window_start=window[0],
                      window_end=window[1], session={"chiso.pii_salt": credentials()["pii_salt"]})
    return result, time.perf_counter() - started


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-day", type=int, default=60000, help="sandbox dossiers per calendar day")
    parser.add_argument("--days", type=int, default=20, help="window length in days")
    parser.add_argument("--page-size", type=int, default=1000)
    args = parser.parse_args(argv)

    started_pg = not pg.private_status().startswith("running")  # stop at the end what we started
    pg.start_private()
    pg.bootstrap()
    print(f"extracting {args.days} days x {args.per_day} dossiers a day from the S2 sandbox ...", flush=True)
    as_of = datetime(2026, 3, 1, 0, 0, tzinfo=provincial.LOCAL_TZ)
    window = (as_of - timedelta(days=args.days), as_of)
    port = _free_port()
    proc = _sandbox(port, args.per_day, (as_of - timedelta(days=args.days + 40)).date().isoformat(),
                    as_of.isoformat())
    try:
        _clear(window)
        started = time.perf_counter()
        summary = dossiers.extract(*window, base_url=f"http://127.0.0.1:{port}", page_size=args.page_size,
                                   run_label="bench")
        seconds = time.perf_counter() - started
        peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # the extractor's, in MB
    finally:
        proc.terminate()
        proc.wait()
    run = summary["runs"]["dossiers"]
    fd, path = tempfile.mkstemp(suffix=".copy")
    os.close(fd)
    try:
        exported = _export(window, path)
        _clear(window)
        copy_rows, copy_seconds = _copy_baseline(path)
    finally:
        os.unlink(path)
    print(f"extract: {seconds:.0f} s; COPY baseline: {copy_seconds:.0f} s; timing the load stage", flush=True)
    _clear(window)
    reload, load_seconds = _reload(run["run_id"], window)
    loaded = reload.records_loaded
    if not (loaded == copy_rows == exported == run["loaded"]):
        raise RuntimeError(f"row counts differ: extract {run['loaded']}, exported {exported}, "
                           f"COPY {copy_rows}, load stage {loaded}")
    results = {
        "at": datetime.now(provincial.LOCAL_TZ).isoformat(), "window": [w.isoformat() for w in window],
        "page_size": args.page_size, "pages": run["pages"], "received": run["received"],
        "loaded": run["loaded"], "quarantined": run["quarantined"], "repeats": run["repeats"],
        "end_to_end_seconds": round(seconds, 2), "end_to_end_per_s": round(run["received"] / seconds),
        "load_stage_received": reload.records_received, "load_stage_rows": loaded,
        "load_stage_seconds": round(load_seconds, 2), "load_stage_per_s": round(loaded / load_seconds),
        "copy_rows": copy_rows, "copy_seconds": round(copy_seconds, 2),
        "copy_per_s": round(copy_rows / copy_seconds),
        "load_vs_copy": round((loaded / load_seconds) / (copy_rows / copy_seconds), 2),
        "peak_rss_mb": round(peak_rss),
    }
    print(f"{'measure':<34}{'value':>14}")
    for key in ("received", "loaded", "quarantined", "pages", "end_to_end_seconds", "end_to_end_per_s",
                "load_stage_rows", "load_stage_seconds", "load_stage_per_s", "copy_rows", "copy_seconds",
                "copy_per_s", "load_vs_copy", "peak_rss_mb"):
        print(f"{key:<34}{results[key]:>14}")
    out = settings().home / "bench"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"dossiers-{datetime.now():%Y%m%dT%H%M%S}.json"
    path.write_text(json.dumps(results, indent=2))
    print(f"results: {path}")
    if started_pg:
        pg.stop_private()
    return results


if __name__ == "__main__":
    main()
