"""Benchmark: the warehouse at provincial scale (5 million dossiers or more): load, full dbt build, nightly
incremental builds against history, and every dashboard chart's query through Superset.

    .venv/bin/python -m bench.bench_warehouse [--per-day 13000 --months 12 --chart-runs 9]

Steps, in one run, on the bench's own PostgreSQL (home .chiso/bench unless CHISO_HOME_DIR says otherwise):
1. Raw data: the newest month from the S2-S4 sandboxes (their own processes) and S1 (in-process) through the
   real extractors and loader; a full build; night 1 (one day's extract, then the warehouse DAG's build).
   Then the `--months - 1` earlier months as copies of the loaded month's finished dossiers moved back 30
   days per month (`_copy_months`: one INSERT ... SELECT; the sandbox through the loader is far too slow
   for millions).
   Figures: the loader's rows/s, the copies' rows/s.
2. Full build: `dbt build --full-refresh` of every model (tests are the nights') at full history, against a
   baseline measured just after it: `create table as select * from raw.dossiers`.
3. Night 2 after one more day's extract, with the full history; night 2 / night 1 shows whether a night's
   cost grows with history. Before it, the night's fct_dossier reads are EXPLAINed.
4. Charts: Superset over the bench warehouse with the assets imported; every chart of every dashboard the
   API lists, its query context as the dashboard sends it (captured by opening each dashboard in headless
   Chromium), replayed `--chart-runs` times through /api/v1/chart/data with force=true (no cache), then
   cached; median and 95th percentile per chart (target median < 300 ms), the same SQL straight on
   PostgreSQL, and the API floor (GET /api/v1/chart/<id>).
`--resume`, `--from-history`, `--skip-full-build`, `--night-models-only` and `--charts-only` finish or
shorten a run on a busy machine. Servers the bench started (PostgreSQL, sandboxes, Superset) are stopped at
the end. Results go to <home>/bench/warehouse-<time>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from contextlib import ExitStack
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

os.environ.setdefault("CHISO_HOME_DIR", str(Path(__file__).resolve().parent.parent / ".chiso" / "bench"))

from bench.bench_dossiers import _free_port  # noqa: E402
from ingestion import pg, superset  # noqa: E402
from ingestion.config import settings  # noqa: E402
from ingestion.sources import centres, dossiers, dvcqg, feedback  # noqa: E402
from ingestion.sources.provincial import LOCAL_TZ  # noqa: E402
from ingestion.transform import DBT_PROJECT_DIR, run_dbt  # noqa: E402

TARGET_MEDIAN_MS = 300
# fct_dossier re-reads the raw versions loaded up to fct_dossier_lookback (3 hours) before its newest
# loaded_at: in production the night before's load (one day). Here the load before a night is a month or
# the copies, seconds earlier: the nights run with no look-back (only rows loaded after the last build).
NIGHT = ["--vars", '{"fct_dossier_lookback": "0 seconds"}']
HISTORY_END = datetime(2026, 10, 1, tzinfo=LOCAL_TZ)  # the first nightly day starts here


def _log(message: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {message}", flush=True)


def _month_starts(months: int) -> list[datetime]:
    starts, month = [], HISTORY_END
    for _ in range(months + 1):
        starts.append(month)
        month = (month - timedelta(days=1)).replace(day=1)
    return starts[::-1]  # oldest first, HISTORY_END last


# --- sources ------------------------------------------------------------------------------------------------


class Sandboxes:
    """The S2-S4 sandboxes as processes (their JSON work does not share our interpreter) and S1 in-process;
    one clock for all."""

    def __init__(self, stack: ExitStack, per_day: int, start: date) -> None:
        self.urls: dict[str, str] = {}
        for source in ("dossiers", "feedback", "centres"):
            port = _free_port()
            proc = subprocess.Popen([sys.executable, "-m", "ingestion.sandbox.provincial", "--source", source,
                                     "--port", str(port), "--dossiers-per-day", str(per_day), "--start",
                                     start.isoformat(), "--as-of", HISTORY_END.isoformat()],
                                    stdout=subprocess.DEVNULL)
            stack.callback(_stop, proc)
            self.urls[source] = f"http://127.0.0.1:{port}"
        for url in self.urls.values():
            _wait_for(f"{url}/_sandbox/clock")
        from ingestion.sandbox.dvcqg import serve

        self.urls["dvcqg"] = stack.enter_context(serve())

    def clock(self, at: datetime) -> None:
        for source in ("dossiers", "feedback", "centres"):
            httpx.post(f"{self.urls[source]}/_sandbox/clock", json={"as_of": at.isoformat()},
                       timeout=30).raise_for_status()

    def extract(self, start: datetime, end: datetime) -> dict[str, float]:
        """Every provincial entity updated in [start, end), the clock at `end`; dossier rows and seconds."""
        self.clock(end)
        label = "bench-warehouse"
        started = time.perf_counter()
        summary = dossiers.extract(start, end, base_url=self.urls["dossiers"], run_label=label)
        dossier_seconds = time.perf_counter() - started
        feedback.extract(start, end, base_url=self.urls["feedback"], run_label=label)
        centres.extract(start, end, base_url=self.urls["centres"], run_label=label)
        return {"dossier_rows": summary["runs"]["dossiers"]["loaded"], "dossier_seconds": dossier_seconds,
                "run_id": summary["runs"]["dossiers"]["run_id"],
                "seconds": time.perf_counter() - started}

    def national(self, first: date, last: date) -> None:
        dvcqg.extract(first, last, base_url=self.urls["dvcqg"], run_label="bench-warehouse")


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    proc.wait(timeout=30)


def _wait_for(url: str) -> None:
    for _ in range(600):
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


# --- database -----------------------------------------------------------------------------------------------


def _reset_warehouse() -> None:
    """Start from empty: the raw, audit and quarantine rows of earlier runs, and everything dbt built."""
    with pg.connect("admin", autocommit=True) as conn:
        tables = [r[0] for r in conn.execute(
            "select format('%I.%I', schemaname, tablename) from pg_tables"
            " where schemaname in ('raw', 'audit', 'quarantine')").fetchall()]
        if tables:
            conn.execute(f"truncate {', '.join(tables)} cascade")
        built = conn.execute(
            "select format('%I.%I', n.nspname, c.relname), c.relkind = 'v' from pg_class c"
            " join pg_namespace n on n.oid = c.relnamespace where c.relkind in ('r', 'v')"
            " and n.nspname in ('staging', 'intermediate', 'marts', 'seeds')").fetchall()
        for name, is_view in built:
            conn.execute(f"drop {'view' if is_view else 'table'} if exists {name} cascade")


def _vacuum() -> None:
    with pg.connect("admin", autocommit=True) as conn:
        conn.execute("vacuum analyze")


def _scalar_row(query: str, role: str = "loader") -> tuple:
    with pg.connect(role) as conn:
        return conn.execute(query).fetchone()


def _scalar(query: str, role: str = "loader") -> Any:
    return _scalar_row(query, role)[0]


def _ctas_baseline() -> float:
    """One pass over raw.dossiers written back as a table (the cheapest full build could not beat it)."""
    with pg.connect("loader") as conn:
        conn.execute("drop table if exists raw.bench_ctas")
        conn.commit()
        started = time.perf_counter()
        conn.execute("create table raw.bench_ctas as select * from raw.dossiers")
        conn.commit()
        seconds = time.perf_counter() - started
        conn.execute("drop table raw.bench_ctas")
        conn.commit()
    return seconds


# The earlier months, when the machine is too slow to page them out of the sandbox in time: copies of the
# loaded month, every time moved back by 30 days per month (a bijection on days, so MaHoSo stays unique),
# the supplement dates inside `record` too (they feed the waiting time and the on-time verdict). Only the
# dossiers the month had finished are copied: history is finished work; a copy of the month's open dossiers
# would stay open for ever and pile up a backlog of a million never-closing dossiers no province has.
SHIFT_FUNCTION = """
create function pg_temp.shift_ts(v text, shift interval) returns text language sql immutable as $$
    select case when raw.local_ts(v) is null then v
    else to_char((raw.local_ts(v) - shift) at time zone 'Asia/Ho_Chi_Minh', 'YYYYMMDDHH24MISS') end $$"""
SUPPLEMENT_DATES = ("NgayYeuCauBoSung", "NgayTiepNhanBoSung", "NgayHenTraTruoc", "NgayHenTraMoi")
SHIFTED_COLUMNS = ("ngay_cap_nhat", "ngay_nop_ho_so", "ngay_tiep_nhan", "ngay_hen_tra", "ngay_ket_thuc_xu_ly",
                   "ngay_tra")


def _copy_months(run_id: int, months: int) -> tuple[int, float]:
    """Insert the rows load `run_id` committed for its finished dossiers again for each of `months` earlier
    months, the k-th moved back by 30 x k days (one statement: it reads only the rows there before it);
    (rows, seconds)."""
    # loaded_at kept: the copies are history, loaded before the last build (a night must not re-read them)
    columns = [*dossiers.DOSSIERS.columns, "record", "run_id", "landing_file", "page_no", "loaded_at"]
    shift = "interval '30 days' * k"
    dates = ", ".join(f"'{d}', pg_temp.shift_ts(item ->> '{d}', {shift})" for d in SUPPLEMENT_DATES)
    expressions = {
        **{c: c for c in columns},
        **{c: f"{c} - {shift}" for c in SHIFTED_COLUMNS},
        "ma_ho_so": ("regexp_replace(ma_ho_so, '-\\d{6}-', '-' || to_char(to_date(substring(ma_ho_so from"
                     " '-(\\d{6})-'), 'YYMMDD') - 30 * k, 'YYMMDD') || '-')"),
        "record": ("case when jsonb_typeof(record -> 'DanhSachHoSoBoSung') = 'array' then jsonb_set(record,"
                   " '{DanhSachHoSoBoSung}', coalesce((select jsonb_agg(item || jsonb_strip_nulls("
                   f"jsonb_build_object({dates})) order by n) from jsonb_array_elements(record ->"
                   " 'DanhSachHoSoBoSung') with ordinality as a (item, n)), '[]')) else record end"),
    }
    with pg.connect("loader") as conn:
        conn.execute(SHIFT_FUNCTION)
        started = time.perf_counter()
        insert = (f"insert into raw.dossiers ({', '.join(columns)})"
                  f" select {', '.join(expressions[c] for c in columns)}"
                  " from raw.dossiers cross join generate_series(1, %s) as k where run_id = %s"
                  " and ma_ho_so in (select ma_ho_so from raw.dossiers where run_id = %s"
                  " and ngay_ket_thuc_xu_ly is not null) on conflict do nothing")
        rows = conn.execute(insert, (months, run_id, run_id)).rowcount
        conn.commit()
    return rows, time.perf_counter() - started


# --- dbt ----------------------------------------------------------------------------------------------------


def _build(args: list[str], label: str) -> dict[str, Any]:
    _log(f"dbt {' '.join(args)} ({label}) ...")
    started = time.perf_counter()
    result = run_dbt([*args, "--quiet"], pipeline_run=f"bench-{label}")
    seconds = time.perf_counter() - started
    nodes = sorted(((r.node.unique_id.split(".", 2)[-1], round(r.execution_time or 0, 2))
                    for r in result.result.results), key=lambda n: -n[1])
    _log(f"  {seconds:.1f} s; slowest: " + ", ".join(f"{n} {s} s" for n, s in nodes[:6]))
    return {"seconds": round(seconds, 2), "nodes": len(nodes), "slowest": nodes[:12]}


def _explain_fct_dossier() -> dict[str, Any]:
    """EXPLAIN the night's fct_dossier reads: the changed codes (as the model reads them before the build)
    and the compiled incremental query (is_incremental now), which must read raw.dossiers by its indexes."""
    target = settings().home / "bench" / "dbt-compile"
    result = run_dbt(["compile", "--select", "fct_dossier", "--target-path", str(target), "--quiet", *NIGHT],
                     record=False)
    sql = result.result.results[0].node.compiled_code
    with pg.connect("transform") as conn:
        cutoff = conn.execute("select max(loaded_at) from marts.fct_dossier").fetchone()[0]
        codes = "\n".join(r[0] for r in conn.execute(
            "explain select distinct dossier_code from staging.stg_igate__dossiers where loaded_at > %s",
            (cutoff,)))
        plan = "\n".join(r[0] for r in conn.execute(f"explain {sql}"))
    return {"changed_codes_use_loaded_at_index": "dossiers_loaded_idx" in codes,
            "query_uses_primary_key": "dossiers_pkey" in plan,
            "seq_scan_of_raw_dossiers": "Seq Scan on dossiers" in plan, "changed_codes_plan": codes,
            "plan": plan}


# --- Superset -----------------------------------------------------------------------------------------------


def _dashboards(client: httpx.Client) -> list[dict[str, Any]]:
    """Every dashboard the API lists, with its charts (id, name)."""
    query = "(page:0,page_size:100)"
    found = []
    for dashboard in client.get(f"/api/v1/dashboard/?q={query}").raise_for_status().json()["result"]:
        charts = client.get(f"/api/v1/dashboard/{dashboard['id']}/charts").raise_for_status().json()["result"]
        found.append({"id": dashboard["id"], "title": dashboard["dashboard_title"],
                      "slug": dashboard.get("slug"),
                      "charts": {c["id"]: c["slice_name"] for c in charts}})
    return found


def _capture_queries(dashboards: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """Open each dashboard in headless Chromium (every tab, scrolled to the end) and keep the query context
    the front end posts to /api/v1/chart/data for each chart: the chart's real query with the dashboard's
    default filters, which the saved chart alone does not hold."""
    from playwright.sync_api import sync_playwright

    sys.path.insert(0, str(DBT_PROJECT_DIR.parent))
    from tests.e2e.superset_browser import CHROMIUM, CHROMIUM_ARGS

    base = superset.base_url()
    user, password = superset.admin_login()
    captured: dict[int, dict[str, Any]] = {}

    def keep(request) -> None:
        if request.method == "POST" and "/api/v1/chart/data" in request.url:
            body = request.post_data_json or {}
            slice_id = (body.get("form_data") or {}).get("slice_id")
            if slice_id is not None:
                captured.setdefault(int(slice_id), body)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 4000}, locale="vi-VN")
            page.on("request", keep)
            page.set_default_timeout(120_000)  # a busy machine: pages may take long
            page.goto(f"{base}/login/")
            page.wait_for_selector("#username")
            page.fill("#username", user)
            page.fill("#password", password)
            page.keyboard.press("Enter")
            page.wait_for_url("**/superset/welcome/**")
            for dashboard in dashboards:
                page.goto(f"{base}/superset/dashboard/{dashboard['id']}/")
                deadline = time.monotonic() + 180
                while time.monotonic() < deadline and not set(dashboard["charts"]) <= set(captured):
                    page.wait_for_load_state("networkidle")
                    for tab in page.query_selector_all('[role="tab"]'):
                        if tab.is_visible():
                            tab.click()
                            page.wait_for_load_state("networkidle")
                    page.mouse.wheel(0, 20000)
                    page.wait_for_timeout(1000)
        finally:
            browser.close()
    return captured


def _timings(call, runs: int) -> list[float]:
    """Milliseconds of `runs` calls, sorted, after one untimed call (warms Superset and PostgreSQL up)."""
    call()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return sorted(times)


def _p95(times: list[float]) -> float:
    return times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]


def _time_charts(dashboards: list[dict[str, Any]], captured: dict[int, dict[str, Any]],
                 runs: int) -> tuple[list[dict[str, Any]], float]:
    """Each chart's query context through /api/v1/chart/data: uncached (force) `runs` times, then cached;
    its SQL alone on PostgreSQL as the reader role. Also the API floor: GET /api/v1/chart/<id> (login,
    permissions, metadata database, JSON; no warehouse query), the least a chart request costs."""
    client = superset.api_client()
    reader = pg.connect("reader", autocommit=True)
    rows = []
    try:
        first = next((c for d in dashboards for c in d["charts"]), None)
        floor = statistics.median(_timings(lambda: client.get(f"/api/v1/chart/{first}").raise_for_status(),
                                           runs)) if first else 0.0
        for dashboard in dashboards:
            for chart_id, name in sorted(dashboard["charts"].items()):
                row = {"dashboard": dashboard["title"], "chart_id": chart_id, "chart": name}
                rows.append(row)
                body = captured.get(chart_id)
                if body is None:
                    row["error"] = "the dashboard sent no query for it"
                    continue
                body = {**body, "force": True, "result_format": "json", "result_type": "full"}
                response = client.post("/api/v1/chart/data", json=body)
                if response.status_code != 200:
                    row["error"] = f"{response.status_code}: {response.text[:300]}"
                    continue
                row["rows"] = sum(q.get("rowcount") or 0 for q in response.json()["result"])
                times = _timings(lambda b=body: client.post("/api/v1/chart/data", json=b).raise_for_status(),
                                 runs)
                cached = _timings(lambda b=body: client.post("/api/v1/chart/data", json={**b, "force": False})
                                  .raise_for_status(), runs)
                row.update(median_ms=round(statistics.median(times), 1), p95_ms=round(_p95(times), 1),
                           cached_median_ms=round(statistics.median(cached), 1))
                sql = client.post("/api/v1/chart/data", json={**body, "result_type": "query"})
                queries = [q["query"] for q in sql.raise_for_status().json()["result"]]
                row["sql"] = queries
                direct = _timings(lambda q=queries: [reader.execute(x).fetchall() for x in q], 3)
                row["sql_direct_ms"] = round(statistics.median(direct), 1)
                if row["median_ms"] >= TARGET_MEDIAN_MS:
                    row["explain"] = ["\n".join(r[0] for r in reader.execute(f"explain analyze {q}"))
                                      for q in queries]
    finally:
        client.close()
        reader.close()
    return rows, round(floor, 1)


# --- the run ------------------------------------------------------------------------------------------------


FULL_BUILD = ["build", "--full-refresh", "--exclude-resource-type", "test", "unit_test"]  # tests: nightly


def _night(args: argparse.Namespace) -> list[str]:
    """The warehouse DAG's build (selector `warehouse` of dbt_project/selectors.yml: what the national and
    reconciliation DAGs build excluded); without the data tests if asked."""
    night = ["build", "--selector", "warehouse", *NIGHT]
    if args.night_models_only:
        night += ["--exclude-resource-type", "test", "unit_test"]
    return night


def _first_load() -> dict[str, Any]:
    """The first dossier load of the month (an interrupted run's), from its audit row."""
    run_id, rows, seconds = _scalar_row(
        "select run_id, records_loaded, extract(epoch from finished_at - started_at)::float from"
        " audit.extract_runs where source = 'dossiers' and entity = 'dossiers' and status = 'success'"
        " order by run_id limit 1")
    return {"run_id": run_id, "dossier_rows": rows, "dossier_seconds": seconds, "seconds": seconds}


def _warehouse(args: argparse.Namespace, results: dict[str, Any]) -> None:
    """Steps 1-3: the history loaded, the full build against CTAS, the two nights. With --from-history,
    only the full build and night 2, over the raw data (and night 1) an interrupted run left."""
    months = _month_starts(args.months)
    nights = [(HISTORY_END + timedelta(days=d), HISTORY_END + timedelta(days=d + 1)) for d in (0, 1)]
    if not (args.from_history or args.resume):
        _reset_warehouse()
    with ExitStack() as stack:
        sandboxes = Sandboxes(stack, args.per_day, (months[-2] - timedelta(days=120)).date())
        if not args.from_history:
            if not args.resume:
                sandboxes.national(months[0].date(), (HISTORY_END - timedelta(days=1)).date())

            if args.resume:  # the month and night 1's day are loaded, the month built
                loads = [_first_load()]
            else:
                _log(f"one month of history: {months[-2]:%Y-%m-%d} .. {HISTORY_END:%Y-%m-%d}")
                loads = [sandboxes.extract(months[-2], HISTORY_END)]
                _vacuum()
                results["build_one_month"] = _build(FULL_BUILD, "full-1-month")
                _log("night 1 (one month of history): extract one day, nightly build")
                results["night_one_month_extract"] = sandboxes.extract(*nights[0])
            results["night_one_month"] = _build(_night(args), "night-1-month")

            _log(f"back-filling {args.months - 1} months before {months[-2]:%Y-%m-%d}: copies of that month")
            copied, copy_seconds = _copy_months(loads[0]["run_id"], args.months - 1)
            loaded, seconds = loads[0]["dossier_rows"], loads[0]["dossier_seconds"]
            results["load"] = {"loader_rows": loaded, "loader_seconds": round(seconds, 1),
                               "loader_rows_per_s": round(loaded / seconds),
                               "all_sources_seconds": round(loads[0]["seconds"], 1),
                               "copied_rows": copied, "copy_seconds": round(copy_seconds, 1),
                               "copied_rows_per_s": round(copied / copy_seconds)}
            _log(f"  loader {results['load']['loader_rows_per_s']} rows/s; copies {copied} rows, "
                 f"{results['load']['copied_rows_per_s']} rows/s")
            _vacuum()

        results["raw_dossiers"] = _scalar("select count(*) from raw.dossiers")
        _log(f"raw.dossiers: {results['raw_dossiers']} rows")
        if not args.skip_full_build:
            results["build_full"] = _build(FULL_BUILD, "full")
            results["ctas_seconds"] = round(_ctas_baseline(), 2)
            results["build_vs_ctas"] = round(results["build_full"]["seconds"] / results["ctas_seconds"], 1)
        results["fct_dossier_rows"] = _scalar("select count(*) from marts.fct_dossier", "transform")

        _log(f"night 2 ({args.months} months of history): extract one day, EXPLAIN, nightly build")
        results["night_history_extract"] = sandboxes.extract(*nights[1])
        results["explain_fct_dossier"] = _explain_fct_dossier()
        results["night_history"] = _build(_night(args), "night-history")
        results["night_history"]["models_only"] = args.night_models_only
        if "night_one_month" in results:
            results["night_history_vs_one_month"] = round(
                results["night_history"]["seconds"] / results["night_one_month"]["seconds"], 2)


def _charts(args: argparse.Namespace, results: dict[str, Any]) -> None:
    """Step 4: every chart of every dashboard the API lists, through Superset."""
    _log("Superset: start, import the assets, capture and time every chart")
    superset.up()
    client = superset.api_client()
    try:
        dashboards = _dashboards(client)
    finally:
        client.close()
    captured = _capture_queries(dashboards)
    charts, floor = _time_charts(dashboards, captured, args.chart_runs)
    timed = [c for c in charts if "median_ms" in c]
    results["charts"] = charts
    results["charts_summary"] = {
        "dashboards": len(dashboards), "charts": len(charts), "timed": len(timed), "api_floor_ms": floor,
        "median_of_medians_ms": statistics.median(c["median_ms"] for c in timed) if timed else None,
        "worst_median_ms": max((c["median_ms"] for c in timed), default=None),
        "worst_p95_ms": max((c["p95_ms"] for c in timed), default=None),
        "median_of_cached_ms": statistics.median(c["cached_median_ms"] for c in timed) if timed else None,
        "median_of_sql_alone_ms": statistics.median(c["sql_direct_ms"] for c in timed) if timed else None,
        "over_target": [c["chart"] for c in timed if c["median_ms"] >= TARGET_MEDIAN_MS],
        "failed": [c["chart"] for c in charts if "error" in c]}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # 13,000 a day: the month through the loader and its finished dossiers copied to eleven earlier months
    # make over 5 million dossiers
    parser.add_argument("--per-day", type=int, default=13000, help="sandbox dossiers per calendar day")
    parser.add_argument("--months", type=int, default=12, help="months of history before the nightly days")
    parser.add_argument("--chart-runs", type=int, default=9, help="timed requests per chart")
    parser.add_argument("--skip-full-build", action="store_true",
                        help="no full build over the whole history (the nights then see it in raw only)")
    parser.add_argument("--resume", action="store_true",
                        help="after a run interrupted in night 1: night 1's build, then on from there")
    parser.add_argument("--from-history", action="store_true",
                        help="skip the load and night 1: full build and night 2 over what is there")
    parser.add_argument("--night-models-only", action="store_true",
                        help="the nights without the data tests (on a machine too slow for them)")
    parser.add_argument("--charts-only", action="store_true",
                        help="only step 4, over the warehouse an earlier run left")
    args = parser.parse_args(argv)
    results: dict[str, Any] = {"at": datetime.now(LOCAL_TZ).isoformat(), "per_day": args.per_day,
                               "months": args.months, "load_average_start": os.getloadavg()}
    started_pg = not pg.private_status().startswith("running")  # stop at the end what we started
    superset_was_running = superset.status().startswith("running")
    pg.start_private()
    pg.bootstrap()
    try:
        if not args.charts_only:
            _warehouse(args, results)
        _charts(args, results)
    finally:
        if not superset_was_running:
            superset.down()
        results["load_average_end"] = os.getloadavg()
        results["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        results["peak_rss_children_mb"] = round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)
        out = settings().home / "bench"
        out.mkdir(parents=True, exist_ok=True)
        path = out / f"warehouse-{datetime.now():%Y%m%dT%H%M%S}.json"
        path.write_text(json.dumps(results, indent=2, default=str))
        print(f"results: {path}")
        if started_pg:
            pg.stop_private()
    _report(results)
    return results


def _report(results: dict[str, Any]) -> None:
    figures = [
        ("raw.dossiers rows", "raw_dossiers"), ("fct_dossier rows", "fct_dossier_rows"),
        ("loader: dossier rows/s (newest month)", "load", "loader_rows_per_s"),
        ("copies: rows/s (earlier months)", "load", "copied_rows_per_s"),
        ("full build, s", "build_full", "seconds"), ("CTAS of raw.dossiers, s", "ctas_seconds"),
        ("full build / CTAS", "build_vs_ctas"),
        ("night, 1 month of history, s", "night_one_month", "seconds"),
        ("night, full history, s", "night_history", "seconds"),
        ("night ratio (full history / 1 month)", "night_history_vs_one_month"),
        ("night reads raw by loaded_at index", "explain_fct_dossier", "changed_codes_use_loaded_at_index"),
        ("night reads raw by primary key", "explain_fct_dossier", "query_uses_primary_key"),
    ]
    lines = []
    for label, *path in figures:
        value: Any = results
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if value is not None:
            lines.append((label, value))
    summary = results.get("charts_summary", {})
    lines += [(f"charts: {k}", v) for k, v in summary.items()]
    lines += [("peak RSS bench / children, MB",
               f"{results['peak_rss_mb']} / {results['peak_rss_children_mb']}")]
    for key, value in lines:
        print(f"{key:<40}{value!s:>24}")
    for chart in results.get("charts", []):
        figure = (f"median {chart['median_ms']:>7} p95 {chart['p95_ms']:>7} cached "
                  f"{chart['cached_median_ms']:>7} SQL alone {chart['sql_direct_ms']:>7} ms"
                  if "median_ms" in chart else chart["error"])
        print(f"  {chart['dashboard'][:28]:<28} {chart['chart'][:40]:<40} {figure}")


if __name__ == "__main__":
    main()
