"""Background processes the project starts itself (sandbox sources, Superset): pid files under .chiso/run,
logs under .chiso/logs, idempotent start and stop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from ingestion.config import settings


def _pid_file(name: str) -> Path:
    return settings().home / "run" / f"{name}.pid"


def log_file(name: str) -> Path:
    return settings().log_dir / f"{name}.log"


def pid_of(name: str) -> int | None:
    path = _pid_file(name)
    if not path.exists():
        return None
    pid = int(path.read_text())
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        path.unlink(missing_ok=True)
        return None
    return pid


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def start(name: str, cmd: list[str], port: int | None, env: dict[str, str] | None = None,
          timeout: float = 120, cwd: Path | None = None) -> int:
    """Start `cmd` detached unless it already runs; wait until it listens on `port` (a program with no
    port, e.g. Airflow's dag-processor: until it has stayed up a few seconds)."""
    pid = pid_of(name)
    if pid:
        return pid
    if port is not None and port_open(port):
        raise RuntimeError(f"{name}: port {port} is already taken by another program")
    log = log_file(name)
    log.parent.mkdir(parents=True, exist_ok=True)
    _pid_file(name).parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env={**os.environ, **(env or {})}, cwd=cwd, start_new_session=True)
    _pid_file(name).write_text(str(proc.pid))
    deadline = time.monotonic() + timeout
    settled = time.monotonic() + 3
    while not (port_open(port) if port is not None else time.monotonic() > settled):
        if proc.poll() is not None:
            _pid_file(name).unlink(missing_ok=True)
            raise RuntimeError(f"{name} exited at start (code {proc.returncode}); see {log}")
        if time.monotonic() > deadline:
            stop(name)
            raise RuntimeError(f"{name} did not listen on port {port} within {timeout:.0f} s; see {log}")
        time.sleep(0.3)
    return proc.pid


def stop(name: str, timeout: float = 20) -> bool:
    pid = pid_of(name)
    if not pid:
        return False
    try:
        os.killpg(pid, signal.SIGTERM)  # the whole session: gunicorn workers and the like
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + timeout
    while pid_of(name) and time.monotonic() < deadline:
        time.sleep(0.2)
    if pid_of(name):
        os.killpg(pid, signal.SIGKILL)
    _pid_file(name).unlink(missing_ok=True)
    return True
