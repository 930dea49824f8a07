"""The `chiso` command line. Errors print as one line plus where to look, and exit non-zero."""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import date
from pathlib import Path

from ingestion import clock
from ingestion.config import settings


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text}") from exc


def _month(text: str) -> date:
    from ingestion.report import parse_month

    try:
        return parse_month(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _say(message: str) -> None:
    print(f"chiso: {message}", flush=True)


SOURCES = ("dvcqg", "dossiers", "feedback", "centres")


def _sandbox_cmd(source: str, port: int) -> list[str]:
    # S1-S4 serve one sandbox province (same seed, scale and first day: S1 scores the province's units
    # from the dossiers S2 serves), so every server gets the same first day, even across midnight.
    from datetime import timedelta

    from ingestion.sandbox.province import DEFAULT_HISTORY_DAYS

    start = ["--start", (clock.today() - timedelta(days=DEFAULT_HISTORY_DAYS)).isoformat()]
    if source == "dvcqg":
        return [sys.executable, "-m", "ingestion.sandbox.dvcqg", "--host", settings().sandbox_host,
                "--port", str(port), *start]
    return [sys.executable, "-m", "ingestion.sandbox.provincial", "--source", source, "--host",
            settings().sandbox_host, "--port", str(port), *start]


def sandbox_up(sources: tuple[str, ...] = SOURCES) -> None:
    from ingestion import services
    from ingestion.config import sandbox_port

    for source in sources:
        port = sandbox_port(source)
        services.start(f"sandbox-{source}", _sandbox_cmd(source, port), port)
        _say(f"sandbox {source} serving on http://{settings().sandbox_host}:{port}")


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
    _say(f"up in {time.monotonic() - started:.1f} s")


def cmd_down(args: argparse.Namespace) -> None:
    from ingestion import orchestration, pg, services, superset

    if superset.down():
        _say("Superset stopped")
    for name in orchestration.down():
        _say(f"{name} stopped")
    for source in SOURCES:
        if services.stop(f"sandbox-{source}"):
            _say(f"sandbox {source} stopped")
    if pg.stop_private():
        _say("PostgreSQL stopped")


def cmd_status(args: argparse.Namespace) -> None:
    from ingestion import orchestration, pg, services, superset

    postgres = pg.private_status()
    print(f"{'postgres':22} {postgres}")
    if not pg.is_private() or postgres.startswith("running"):
        print(f"{'loads':22} {_loads()}")
    for source in SOURCES:
        pid = services.pid_of(f"sandbox-{source}")
        print(f"{'sandbox-' + source:22} {f'running (pid {pid})' if pid else 'stopped'}")
    print(f"{'superset':22} {superset.status()}")
    running = orchestration.status()
    for name in [n for n in orchestration.service_names() if n in running] or ["airflow"]:
        print(f"{name:22} {f'running (pid {running[name]})' if name in running else 'stopped'}")


def _loads() -> str:
    """Loads in progress; a load whose process or database died is marked failed here (and its work tables
    dropped), as the next load would."""
    from ingestion import load, pg

    with pg.connect("loader", autocommit=True) as conn:
        dead = load.reap_dead_runs(conn)
        running = conn.execute("select count(*) from audit.extract_runs where status = 'running'"
                               ).fetchone()[0]
    died = f"; died, now marked failed: run {', '.join(map(str, dead))}" if dead else ""
    return f"{running} running{died}"


def cmd_warehouse_url(args: argparse.Namespace) -> None:
    from ingestion import pg

    if args.show_password:
        print(pg.url(args.role, driver="postgresql"))
    else:
        print(pg.url_without_password(args.role))


def cmd_extract(args: argparse.Namespace) -> None:
    started = time.monotonic()
    if args.source == "dvcqg":
        from ingestion.sources import dvcqg

        summary = dvcqg.extract(args.start, args.end)
    else:
        from ingestion.pipeline import extract_provincial

        summary = extract_provincial(args.source, args.start, args.end)
    if args.json:
        print(json.dumps(summary, default=str, ensure_ascii=False))
        return
    window = f"{args.start}..{args.end}" if args.start else "from the watermark"
    _say(f"extracted {args.source} {window} in {time.monotonic() - started:.1f} s")
    for entity, run in summary["runs"].items():
        received = run.get("received", run.get("records", 0) + run.get("quarantined", 0))
        loaded = run.get("loaded", run.get("records", 0))
        print(f"  {entity:28} run {run['run_id']}: {run['pages']} pages, {received} received,"
              f" {loaded} loaded, {run['quarantined']} quarantined")


def _check_window(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """A window is checked before any source is read or any run recorded."""
    start, end = getattr(args, "start", None), getattr(args, "end", None)
    if start and end and start > end:
        parser.error(f"the window is reversed: --start {start} is after --end {end}")
    if getattr(args, "command", None) == "extract":
        if args.source == "dvcqg" and not (start and end):
            parser.error("extract dvcqg needs --start and --end (the months to read)")
        if bool(start) != bool(end):
            parser.error("give both --start and --end (a back-fill), or neither (incremental)")


def cmd_pipeline_run(args: argparse.Namespace) -> None:
    from ingestion.orchestration import DAGS, run_dag

    for name in DAGS if args.dag == "all" else (args.dag,):
        started = time.monotonic()
        _say(f"running {DAGS[name]} for {args.start}..{args.end} in-process")
        run_dag(DAGS[name], args.start, args.end)
        _say(f"{DAGS[name]} succeeded in {time.monotonic() - started:.1f} s")


def cmd_sandbox_serve(args: argparse.Namespace) -> None:
    import os

    from ingestion.config import sandbox_port

    cmd = _sandbox_cmd(args.source, args.port or sandbox_port(args.source))
    os.execv(cmd[0], cmd)  # the server in the foreground, as if started directly


def cmd_superset(args: argparse.Namespace) -> None:
    from ingestion import superset

    if args.action == "up":
        url = superset.up()
        user, password = superset.admin_login()
        _say(f"Superset at {url} (login {user} / {password})")
    elif args.action == "down":
        superset.down()
        _say("Superset stopped")
    else:
        cmd_superset_user_add(args)


def cmd_superset_user_add(args: argparse.Namespace) -> None:
    from ingestion import superset, superset_rls

    client = superset.api_client()
    try:
        role, generated = superset_rls.add_user(
            client, args.username, None if args.province else args.unit, first_name=args.first_name,
            last_name=args.last_name, email=args.email, password=args.password)
    finally:
        client.close()
    _say(f"user {args.username} has the role {role!r}" + (f"; password {generated}" if generated else ""))


def cmd_airflow(args: argparse.Namespace) -> None:
    from ingestion import orchestration

    if args.action == "up":
        started = time.monotonic()
        url = orchestration.up()
        user, password = orchestration.login()
        executor = "CeleryExecutor" if orchestration.celery() else "LocalExecutor"
        seconds = time.monotonic() - started
        _say(f"Airflow ({executor}) at {url} (login {user} / {password}), up in {seconds:.0f} s")
    elif args.action == "cli":  # Airflow's own CLI on this deployment, e.g. `backfill create ...`
        import os

        env = {**os.environ, **orchestration.service_environ()}
        airflow = orchestration.airflow_bin()
        os.execve(airflow, [airflow, *args.airflow_args], env)
    else:
        for name in orchestration.down():
            _say(f"{name} stopped")


def cmd_backup(args: argparse.Namespace) -> None:
    from ingestion import backup

    done = backup.backup(args.out)
    _say(f"backup in {done['folder']}: {done['bytes'] / 1e6:.1f} MB, {done['tables']} warehouse tables"
         f" ({done['rows']} rows) checksummed, {done['seconds']} s")


def cmd_restore(args: argparse.Namespace) -> None:
    from ingestion import backup

    done = backup.restore(args.folder, check=args.check)
    if args.check:
        _say(f"backup {args.folder} restores: {done['checked_tables']} tables ({done['rows']} rows) match"
             f" their checksums, {done['seconds']} s")
    else:
        _say(f"restored {', '.join(done['restored'])} and {done['landing_files']} landing entries from"
             f" {args.folder} in {done['seconds']} s")


def cmd_report(args: argparse.Namespace) -> None:
    from ingestion.report import default_dir, month_label, write_reports

    started = time.monotonic()
    paths = write_reports(args.month, args.unit, args.out)
    where = paths[0] if args.unit else args.out or default_dir(args.month)
    seconds = time.monotonic() - started
    _say(f"{len(paths)} report(s) for {month_label(args.month)} in {seconds:.1f} s: {where}")


def cmd_dbt(args: argparse.Namespace) -> None:
    from ingestion.transform import run_dbt

    started = time.monotonic()
    run_dbt(args.dbt_args, pipeline_run="chiso dbt")
    _say(f"dbt {' '.join(args.dbt_args[:1])} done in {time.monotonic() - started:.1f} s")


def cmd_demo(args: argparse.Namespace) -> None:
    """The demo's night through the real scheduler: Airflow's services run the provincial and national DAGs
    (triggered through the REST API, as from the UI), the three raw assets start the warehouse DAG."""
    from datetime import timedelta

    from ingestion import orchestration, pg, superset

    started = time.monotonic()
    cmd_up(argparse.Namespace(no_sandbox=False))
    with pg.connect("loader") as conn:  # a demo that ran before only needs what changed since
        loaded_before = conn.execute("select count(*) from audit.publications").fetchone()[0] > 0
    airflow_url = orchestration.up()
    airflow_user, airflow_password = orchestration.login()
    _say(f"Airflow at {airflow_url} (login {airflow_user} / {airflow_password})")
    end = clock.today()
    windows = {  # no window: each DAG's own nightly one (watermarks; previous and current month)
        "provincial": {} if loaded_before else {"start": (end - timedelta(days=90)).isoformat(),
                                                "end": end.isoformat()},
        "national": {} if loaded_before else {"start": end.replace(day=1, year=end.year - 1).isoformat(),
                                              "end": end.isoformat()},
    }
    with orchestration.api_client() as client:
        runs = {}
        for name, conf in windows.items():
            dag_id = orchestration.DAGS[name]
            runs[name] = orchestration.trigger(client, dag_id, conf)
            window = f"over {conf['start']}..{conf['end']}" if conf else "incrementally"
            _say(f"triggered {dag_id} {window}")
        for name, run_id in runs.items():
            dag_id = orchestration.DAGS[name]
            orchestration.wait(f"{dag_id} {run_id}",
                               lambda d=dag_id, r=run_id: orchestration.finished(client, d, r))
            _say(f"{dag_id} succeeded ({airflow_url}/dags/{dag_id}/runs/{run_id})")
        warehouse = orchestration.DAGS["warehouse"]
        run = orchestration.wait(f"{warehouse} after {runs['provincial']}", lambda: orchestration.started_by(
            client, warehouse, runs["provincial"]))
        _say(f"{warehouse} started by the raw assets and published ({run['dag_run_id']})")
        reconciliation = orchestration.DAGS["reconciliation"]
        done = orchestration.wait(f"{reconciliation} after {run['dag_run_id']}",
                                  lambda: orchestration.started_by(client, reconciliation, run["dag_run_id"]))
        _say(f"{reconciliation} started by the warehouse and national assets ({done['dag_run_id']})")
    url = superset.up()
    user, password = superset.admin_login()
    _say(f"demo ready in {time.monotonic() - started:.0f} s")
    print(f"\n  Dashboards: {url}/dashboard/list/\n"
          f"  Login:      {user} / {password}\n"
          f"  Airflow:    {airflow_url}/ (login {airflow_user} / {airflow_password})\n"
          "  Warehouse:  psql \"$(.venv/bin/chiso warehouse-url)\"\n"
          "  Stop:       make stop\n")


def build_parser() -> argparse.ArgumentParser:
    from ingestion.orchestration import DAGS

    parser = argparse.ArgumentParser(prog="chiso", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="start PostgreSQL (private unless CHISO_WAREHOUSE_URL) and the sandbox")
    up.add_argument("--no-sandbox", action="store_true",
                    help="do not start the four sandbox sources (real sources are configured)")
    up.set_defaults(func=cmd_up)
    sub.add_parser("down", help="stop everything chiso started").set_defaults(func=cmd_down)
    sub.add_parser("status", help="what runs where").set_defaults(func=cmd_status)
    demo = sub.add_parser("demo", help="up, the pipelines over the demo windows, Superset")
    demo.set_defaults(func=cmd_demo)

    url = sub.add_parser("warehouse-url", help="print a libpq URL of the warehouse (no password in it)")
    url.add_argument("--role", default="reader", choices=["reader", "transform", "loader", "admin"],
                     help="whose login the URL carries (default: reader, read-only on the marts)")
    url.add_argument("--show-password", action="store_true",
                     help="put the password in the URL (by default it stays in the project's password file,"
                          " which the URL names)")
    url.set_defaults(func=cmd_warehouse_url)

    extract = sub.add_parser("extract", help="extract one source into raw: a window, or incrementally")
    extract.add_argument("source", choices=SOURCES, help="S1 dvcqg (national portal), S2 dossiers,"
                         " S3 feedback, S4 centres")
    extract.add_argument("--start", type=_day, help="first day of the window (YYYY-MM-DD); with --end")
    extract.add_argument("--end", type=_day, help="last day of the window, included; without both, from"
                         " the watermark to now")
    extract.add_argument("--json", action="store_true", help="print the runs as one JSON object (scripts)")
    extract.set_defaults(func=cmd_extract, parser=extract)

    pipeline = sub.add_parser("pipeline", help="run the pipeline DAG in-process")
    pipeline_sub = pipeline.add_subparsers(dest="action", required=True)
    run = pipeline_sub.add_parser("run", help="run the DAGs over a window (a back-fill when it is past)")
    run.add_argument("--start", type=_day, required=True, help="first day of the window (YYYY-MM-DD)")
    run.add_argument("--end", type=_day, required=True, help="last day of the window, included")
    run.add_argument("--dag", choices=["all", *DAGS], default="all",
                     help="one DAG, or all of them in order (default)")
    run.set_defaults(func=cmd_pipeline_run, parser=run)

    sandbox = sub.add_parser("sandbox", help="sandbox source servers")
    sandbox_sub = sandbox.add_subparsers(dest="action", required=True)
    serve = sandbox_sub.add_parser("serve", help="serve one source's sandbox in the foreground")
    serve.add_argument("source", choices=SOURCES, nargs="?", default="dvcqg",
                       help="which source's sandbox (default dvcqg)")
    serve.add_argument("--port", type=int, help="default: CHISO_SANDBOX_<SOURCE>_PORT (8701-8704)")
    serve.set_defaults(func=cmd_sandbox_serve)

    back = sub.add_parser("backup", help="pg_dump of the warehouse and both metadata databases, the landing"
                                         " files, and a manifest of checksums")
    back.add_argument("--out", type=Path, help="a new folder; default <home>/backups/<time>")
    back.set_defaults(func=cmd_backup)
    restore = sub.add_parser("restore", help="put a backup back in place (Airflow and Superset stopped)")
    restore.add_argument("folder", type=Path, help="the backup's folder")
    restore.add_argument("--check", action="store_true",
                         help="restore the warehouse into a scratch database and compare every table's"
                              " checksum with the backup's manifest; nothing in place is touched")
    restore.set_defaults(func=cmd_restore)

    report = sub.add_parser("report", help="the monthly XLSX report of each unit (or one), from the marts")
    report.add_argument("--month", type=_month, required=True, help="YYYY-MM")
    report.add_argument("--unit", help="one unit's code (e.g. H15.17); default every unit with figures")
    report.add_argument("--out", type=Path, help="folder; default <home>/reports/YYYY-MM")
    report.set_defaults(func=cmd_report)

    dbt = sub.add_parser("dbt", help="run dbt on the warehouse as the transform role, recorded in audit "
                                     "(e.g. chiso dbt build --full-refresh)")
    dbt.add_argument("dbt_args", nargs=argparse.REMAINDER, help="dbt's own arguments")
    dbt.set_defaults(func=cmd_dbt)

    airflow = sub.add_parser("airflow", help="Airflow as a service: api-server, scheduler, dag-processor, "
                             "triggerer (and Redis, Celery workers: CHISO_AIRFLOW_EXECUTOR=celery)")
    airflow_sub = airflow.add_subparsers(dest="action", required=True)
    airflow_sub.add_parser("up", help="start what does not run yet; print the UI's URL and login")
    airflow_sub.add_parser("down", help="stop the Airflow services (and Redis)")
    airflow_cli = airflow_sub.add_parser("cli", help="Airflow's own CLI on this deployment, e.g. chiso "
                                         "airflow cli backfill create --dag-id chiso_provincial_ingest ...")
    airflow_cli.add_argument("airflow_args", nargs=argparse.REMAINDER, help="airflow's own arguments")
    airflow.set_defaults(func=cmd_airflow)

    superset = sub.add_parser("superset", help="start or stop Superset with the dashboards; add users")
    superset_sub = superset.add_subparsers(dest="action", required=True)
    superset_sub.add_parser("up", help="start Superset, import the dashboards and the unit roles")
    superset_sub.add_parser("down", help="stop Superset")
    user = superset_sub.add_parser("user", help="Superset logins of the province and its units")
    user_sub = user.add_subparsers(dest="user_action", required=True)
    user_add = user_sub.add_parser("add", help="create a login that sees one unit's rows, or the province's")
    user_add.add_argument("username", help="the login name")
    scope = user_add.add_mutually_exclusive_group(required=True)
    scope.add_argument("--unit", metavar="CODE", help="unit code of marts.dim_unit (agency or commune)")
    scope.add_argument("--province", action="store_true", help="the province role: every unit's rows")
    user_add.add_argument("--first-name", required=True, help="shown in Superset")
    user_add.add_argument("--last-name", required=True, help="shown in Superset")
    user_add.add_argument("--email", help="where Superset's mails go (default: none)")
    user_add.add_argument("--password", help="default: one generated and printed once")
    superset.set_defaults(func=cmd_superset)
    return parser


def main(argv: list[str] | None = None) -> int:
    from ingestion import progress

    parser = build_parser()
    args = parser.parse_args(argv)
    _check_window(getattr(args, "parser", parser), args)
    try:
        with progress.shown_on(sys.stderr):
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
