"""The `chiso` command line. Errors print as one line plus where to look, and exit non-zero."""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date

from ingestion.config import settings


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text}") from exc


def _say(message: str) -> None:
    print(f"chiso: {message}", flush=True)


def sandbox_up() -> None:
    from ingestion import services

    s = settings()
    cmd = [sys.executable, "-m", "ingestion.sandbox.dvcqg", "--host", s.sandbox_host,
           "--port", str(s.sandbox_dvcqg_port)]
    services.start("sandbox-dvcqg", cmd, s.sandbox_dvcqg_port)


def cmd_up(args: argparse.Namespace) -> None:
    from ingestion import pg

    started = time.monotonic()
    if pg.is_private():
        port = pg.start_private()
        _say(f"PostgreSQL running on 127.0.0.1:{port} (data in {settings().pg_dir})")
    pg.bootstrap()
    _say("warehouse ready: databases, roles, schemas, audit tables")
    if not args.no_sandbox:
        sandbox_up()
        _say(f"sandbox DVCQG serving on http://{settings().sandbox_host}:{settings().sandbox_dvcqg_port}")
    _say(f"up in {time.monotonic() - started:.1f} s")


def cmd_down(args: argparse.Namespace) -> None:
    from ingestion import pg, services, superset

    if superset.down():
        _say("Superset stopped")
    if services.stop("sandbox-dvcqg"):
        _say("sandbox DVCQG stopped")
    if pg.stop_private():
        _say("PostgreSQL stopped")


def cmd_status(args: argparse.Namespace) -> None:
    from ingestion import pg, services, superset

    pid = services.pid_of("sandbox-dvcqg")
    print(f"postgres:      {pg.private_status()}")
    print(f"sandbox-dvcqg: {f'running (pid {pid})' if pid else 'stopped'}")
    print(f"superset:      {superset.status()}")


def cmd_warehouse_url(args: argparse.Namespace) -> None:
    from ingestion import pg

    print(pg.url(args.role, driver="postgresql"))


def cmd_extract(args: argparse.Namespace) -> None:
    from ingestion.sources import dvcqg

    started = time.monotonic()
    summary = dvcqg.extract(args.start, args.end)
    _say(f"extracted {args.source} {args.start}..{args.end}: {summary} in {time.monotonic() - started:.1f} s")


def cmd_pipeline_run(args: argparse.Namespace) -> None:
    from ingestion.orchestration import NATIONAL_DAG, run_dag

    started = time.monotonic()
    _say(f"running {NATIONAL_DAG} for {args.start}..{args.end} in-process")
    run_dag(NATIONAL_DAG, args.start, args.end)
    _say(f"pipeline succeeded in {time.monotonic() - started:.1f} s")


def cmd_sandbox_serve(args: argparse.Namespace) -> None:
    from ingestion.sandbox import dvcqg

    dvcqg.main(["--host", settings().sandbox_host, "--port", str(args.port or settings().sandbox_dvcqg_port)])


def cmd_superset(args: argparse.Namespace) -> None:
    from ingestion import superset

    if args.action == "up":
        url = superset.up()
        user, password = superset.admin_login()
        _say(f"Superset at {url} (login {user} / {password})")
    else:
        superset.down()
        _say("Superset stopped")


def cmd_demo(args: argparse.Namespace) -> None:
    from ingestion.orchestration import NATIONAL_DAG, run_dag

    started = time.monotonic()
    cmd_up(argparse.Namespace(no_sandbox=False))
    end = date.today()
    start = end.replace(day=1, year=end.year - 1)  # thirteen months, the current one included
    _say(f"running {NATIONAL_DAG} over {start}..{end}")
    run_dag(NATIONAL_DAG, start, end)
    from ingestion import superset

    url = superset.up()
    user, password = superset.admin_login()
    _say(f"demo ready in {time.monotonic() - started:.0f} s")
    print(f"\n  Dashboards: {url}/superset/dashboard/chi-so-766-toan-quoc/\n"
          f"  Login:      {user} / {password}\n"
          "  Warehouse:  psql \"$(.venv/bin/chiso warehouse-url)\"\n"
          "  Stop:       make stop\n")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chiso", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="start PostgreSQL (private unless CHISO_WAREHOUSE_URL) and the sandbox")
    up.add_argument("--no-sandbox", action="store_true")
    up.set_defaults(func=cmd_up)
    sub.add_parser("down", help="stop everything chiso started").set_defaults(func=cmd_down)
    sub.add_parser("status", help="what runs where").set_defaults(func=cmd_status)
    sub.add_parser("demo", help="up, pipeline over thirteen months, Superset").set_defaults(func=cmd_demo)

    url = sub.add_parser("warehouse-url", help="print a libpq URL of the warehouse")
    url.add_argument("--role", default="reader", choices=["reader", "transform", "loader", "admin"])
    url.set_defaults(func=cmd_warehouse_url)

    extract = sub.add_parser("extract", help="extract one source over a window into raw")
    extract.add_argument("source", choices=["dvcqg"])
    extract.add_argument("--start", type=_day, required=True)
    extract.add_argument("--end", type=_day, required=True)
    extract.set_defaults(func=cmd_extract)

    pipeline = sub.add_parser("pipeline", help="run the pipeline DAG in-process")
    pipeline_sub = pipeline.add_subparsers(dest="action", required=True)
    run = pipeline_sub.add_parser("run")
    run.add_argument("--start", type=_day, required=True)
    run.add_argument("--end", type=_day, required=True)
    run.set_defaults(func=cmd_pipeline_run)

    sandbox = sub.add_parser("sandbox", help="sandbox source servers")
    sandbox_sub = sandbox.add_subparsers(dest="action", required=True)
    serve = sandbox_sub.add_parser("serve", help="serve the DVCQG sandbox in the foreground")
    serve.add_argument("--port", type=int)
    serve.set_defaults(func=cmd_sandbox_serve)

    superset = sub.add_parser("superset", help="start or stop Superset with the dashboards")
    superset.add_argument("action", choices=["up", "down"])
    superset.set_defaults(func=cmd_superset)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # one clear line; details are in the logs named in the message
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"chiso: error: {message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
