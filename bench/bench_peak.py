"""The morning peak: many leaders open their daily dashboard within a few minutes.

Each virtual leader is a commune user (its own login and role, so row-level security is applied as for a
real one) that asks for every chart of the daily dashboard the way the dashboard does: each chart's query
context (the one its page posts) through /api/v1/chart/data, uncached (`force`, the first look after the
night) or from the cache. The load steps through 1, 4, 8, 16 and 32 leaders at once, each opening the
dashboard `--rounds` times; for each step: chart requests per second, median and p95 latency, errors. The
baseline is one leader alone, measured in the same run: throughput at k leaders / throughput at 1 says how
far the deployment scales on this machine. From the best throughput measured: what N leaders opening the
dashboard within W minutes need (N x charts / (W x 60) requests per second), in Superset workers of this
machine's kind.

Run after `make demo` (or the warehouse bench), with Superset up: `python -m bench.bench_peak`
[--leaders 1,4,8,16,32 --rounds 2 --for-leaders 200 --within-minutes 10 --cached].
"""

from __future__ import annotations

import argparse
import json
import math
import secrets
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from bench.bench_warehouse import _capture_queries, _dashboards
from ingestion import superset, superset_rls
from ingestion.config import settings

DASHBOARD = "dieu-hanh-hang-ngay"


def _queries(client: httpx.Client, slug: str) -> list[dict[str, Any]]:
    """The query context the dashboard's page posts for each of its charts (captured in Chromium, as the
    warehouse bench does: the saved charts hold no query context of their own)."""
    dashboards = [d for d in _dashboards(client) if d["slug"] == slug]
    if not dashboards:
        raise SystemExit(f"bench_peak: no dashboard {slug!r}")
    captured = _capture_queries(dashboards)
    return [captured[chart_id] for chart_id in sorted(dashboards[0]["charts"]) if chart_id in captured]


def _leaders(client: httpx.Client, count: int) -> list[tuple[str, str]]:
    """`count` commune logins (created once, each on its own commune's role)."""
    communes = [u for u in superset_rls.load_units() or [] if u.unit_type == "commune"]
    if not communes:
        raise SystemExit("bench_peak: no communes in marts.dim_unit; run `make demo` first")
    logins = []
    for i in range(count):
        unit = communes[i % len(communes)]
        name, password = f"bench-leader-{i:03d}", f"Bl-{secrets.token_urlsafe(16)}7b"  # the policy's kinds
        superset_rls.add_user(client, name, unit.code, first_name="Bench", last_name=f"Leader {i}",
                              password=password)
        logins.append((name, password))
    return logins


def _open_dashboard(login: tuple[str, str], bodies: list[dict[str, Any]], force: bool, rounds: int,
                    times: list[float], errors: list[str], lock: threading.Lock) -> None:
    client = superset.api_client(login)
    try:
        for _ in range(rounds):
            for body in bodies:
                started = time.perf_counter()
                response = client.post("/api/v1/chart/data", json={**body, "force": force})
                elapsed = (time.perf_counter() - started) * 1000
                with lock:
                    times.append(elapsed)
                    if response.status_code != 200:
                        errors.append(f"{response.status_code}")
    finally:
        client.close()


def _step(logins: list[tuple[str, str]], bodies: list[dict[str, Any]], force: bool,
          rounds: int) -> dict[str, Any]:
    times: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    started = time.perf_counter()
    with ThreadPoolExecutor(len(logins)) as pool:
        for future in [pool.submit(_open_dashboard, login, bodies, force, rounds, times, errors, lock)
                       for login in logins]:
            future.result()
    seconds = time.perf_counter() - started
    ordered = sorted(times)
    return {"leaders": len(logins), "requests": len(times), "seconds": round(seconds, 2),
            "requests_per_s": round(len(times) / seconds, 2),
            "median_ms": round(statistics.median(ordered), 1),
            "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))], 1), "errors": len(errors)}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leaders", default="1,4,8,16,32", help="leaders at once, per step")
    parser.add_argument("--rounds", type=int, default=2, help="times each leader opens the dashboard")
    parser.add_argument("--cached", action="store_true", help="from the cache (default: uncached, force)")
    parser.add_argument("--for-leaders", type=int, default=200, help="the peak to size the deployment for")
    parser.add_argument("--within-minutes", type=float, default=10.0)
    parser.add_argument("--dashboard", default=DASHBOARD, help="its slug")
    args = parser.parse_args(argv)
    steps = [int(n) for n in args.leaders.split(",")]
    superset.up()
    admin = superset.api_client()
    try:
        bodies = _queries(admin, args.dashboard)
        logins = _leaders(admin, max(steps))
    finally:
        admin.close()
    results = [_step(logins[:n], bodies, not args.cached, args.rounds) for n in steps]
    alone = results[0]["requests_per_s"]
    for step in results:
        step["vs_one_leader"] = round(step["requests_per_s"] / alone, 2)
    best = max(results, key=lambda s: s["requests_per_s"] if not s["errors"] else 0)
    needed = args.for_leaders * len(bodies) / (args.within_minutes * 60)
    workers = settings().superset_workers
    summary = {"dashboard": args.dashboard, "charts": len(bodies), "cached": args.cached, "steps": results,
               "peak": {"leaders": args.for_leaders, "within_minutes": args.within_minutes,
                        "requests_per_s_needed": round(needed, 2),
                        "best_measured_requests_per_s": best["requests_per_s"],
                        "capacity_ratio": round(best["requests_per_s"] / needed, 2),
                        "superset_workers_here": workers,
                        # a worker per core: what that peak needs at the throughput one worker gave here
                        "superset_workers_needed": math.ceil(needed / (best["requests_per_s"] / workers))}}
    print(json.dumps(summary, indent=1, ensure_ascii=False))
    return summary


if __name__ == "__main__":
    main()
