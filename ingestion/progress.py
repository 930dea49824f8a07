"""How a long load shows its work: one event per staged page (pages, rows, rate, ETA against the server's
total), logged on the `ingestion.progress` logger. Inside Airflow that is one line per page in the task's log;
the `chiso` command shows the same events as a bar on a terminal, or as one line each on a pipe."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

log = logging.getLogger(__name__)


class Progress:
    """The pages of one load (source/entity, run id) as they are staged; thread-safe (two sessions stage)."""

    def __init__(self, source: str, entity: str, run_id: int, clock=time.monotonic) -> None:
        self.name, self.run_id, self.clock = f"{source}/{entity}", run_id, clock
        self.started, self.pages, self.rows, self.expected = clock(), 0, 0, None
        self._lock = threading.Lock()

    def expect(self, total: int | None) -> None:
        """The number of records the server says the list holds (its totalElements), when it says one."""
        if total is not None:
            with self._lock:
                self.expected = max(total, self.expected or 0)

    def page(self, rows: int) -> None:
        """One more page staged, holding `rows` records."""
        with self._lock:
            self.pages += 1
            self.rows += rows
            event = self.event()
        log.info(self.line(event), extra={"chiso_progress": event})

    def event(self) -> dict[str, Any]:
        seconds = max(self.clock() - self.started, 1e-9)
        rate = self.rows / seconds
        left = None
        if self.expected is not None and rate > 0:
            left = max(self.expected - self.rows, 0) / rate
        return {"name": self.name, "run_id": self.run_id, "pages": self.pages, "rows": self.rows,
                "expected": self.expected, "rate": rate, "eta": left}

    @staticmethod
    def line(e: dict[str, Any]) -> str:
        of = f" of {e['expected']}" if e["expected"] is not None else ""
        eta = f", about {e['eta']:.0f} s left" if e["eta"] is not None else ""
        return (f"{e['name']} run {e['run_id']}: page {e['pages']}, {e['rows']}{of} rows,"
                f" {e['rate']:.0f} rows/s{eta}")


class _Bar(logging.Handler):
    """Draws the progress events as rich bars, one per load, on a terminal."""

    def __init__(self, stream: IO[str]) -> None:
        super().__init__()
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.bars = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                             TextColumn("{task.fields[rate]:.0f} rows/s"), TimeRemainingColumn(),
                             console=Console(file=stream), transient=False,
                             redirect_stdout=False, redirect_stderr=False)  # stdout stays the result's
        self.tasks: dict[tuple[str, int], Any] = {}

    def emit(self, record: logging.LogRecord) -> None:
        e = getattr(record, "chiso_progress", None)
        if e is None:
            return
        key = (e["name"], e["run_id"])
        if key not in self.tasks:
            if not self.tasks:
                self.bars.start()
            self.tasks[key] = self.bars.add_task(f"{e['name']} run {e['run_id']}", total=None, rate=0)
        self.bars.update(self.tasks[key], completed=e["rows"], total=e["expected"], rate=e["rate"],
                         description=f"{e['name']} run {e['run_id']} page {e['pages']}")

    def close(self) -> None:
        if self.tasks:
            self.bars.stop()
        super().close()


@contextmanager
def shown_on(stream: IO[str]) -> Iterator[None]:
    """Show the progress events on `stream` meanwhile: bars when it is a terminal, else one line per page."""
    if stream.isatty():
        handler: logging.Handler = _Bar(stream)
    else:
        handler = logging.StreamHandler(stream)
        handler.setFormatter(logging.Formatter("chiso: %(message)s"))
    before = log.level, log.propagate
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False  # shown once, here
    try:
        yield
    finally:
        log.removeHandler(handler)
        handler.close()
        log.setLevel(before[0])
        log.propagate = before[1]
