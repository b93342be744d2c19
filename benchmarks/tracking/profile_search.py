"""Where one filtered ``search_runs`` over 2,000 runs spends its time, phase by phase.

    python -m benchmarks.tracking.profile_search            # warm: calls back to back
    BENCH_PROFILE_PAUSE=0.05 python -m benchmarks.tracking.profile_search   # cold caches

Seeds the same 2,000 runs as ``bench_logging`` into a temporary home, then times the
steps ``tracking.service.search_runs`` takes (built from the same functions, in the same
order), the DataFrame, the whole SDK call, and the same search through ``plinth server``:
the HTTP round trip, JSON decoding, the client's parse and its DataFrame. With a pause
between calls the CPU caches go cold, as they do when the interleaved benchmark runs
MLflow between two Plinth calls. Medians and minimums in milliseconds, with the load.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.tracking.bench_logging import (
    SEARCH_FILTER,
    SEARCH_RUNS,
    _free_port,
    _seed_plinth_runs,
    _use_backend,
    _wait_healthy,
)

CALLS = int(os.environ.get("BENCH_PROFILE_CALLS", "100"))
PAUSE = float(os.environ.get("BENCH_PROFILE_PAUSE", "0"))
EXPERIMENT = "bench-search"


def _phases() -> dict[str, list[float]]:
    """One search, step by step, as the service runs it; the time of each step."""
    from plinth.core.platform import local_platform
    from plinth.tracking import schemas as s
    from plinth.tracking import search_plan as plan
    from plinth.tracking import service as svc
    from plinth.tracking.search import parse_filter, parse_order_by

    platform = local_platform()
    times: dict[str, list[float]] = {}

    def step(name: str, since: float) -> float:
        now = time.perf_counter()
        times.setdefault(name, []).append(now - since)
        return now

    for _ in range(CALLS):
        t = start = time.perf_counter()
        with platform.context() as ctx:
            t = step("session", t)
            node, order = parse_filter(SEARCH_FILTER), parse_order_by(None)
            t = step("parse filter (kept per process)", t)
            conn = ctx.session.connection()
            t = step("BEGIN IMMEDIATE", t)
            found = dict(svc._experiments_by_name().fetch(conn, {"project": ctx.project, "names": [EXPERIMENT]}))
            scope = list(found.values())
            t = step("experiment lookup", t)
            page = plan.find_page(conn, node, order, "experiment_id", scope, False, True, "auto", 0, SEARCH_RUNS + 1)
            t = step("plan counts + page of runs (SQL)", t)
            ids = [r[0] for r in page]
            stmt, _ = plan.page_values("experiment_id", scope, False, False)
            rows = stmt.fetch(conn, {"ids": ids})
            t = step("the page's metrics/params/tags (SQL)", t)
            index = {run_id: i for i, run_id in enumerate(ids)}
            columns: tuple[dict[str, list[Any]], ...] = ({}, {}, {})
            for kind, run_id, key, number, text in rows:
                col = columns[kind].setdefault(key, [None] * len(ids))
                col[index[run_id]] = number if kind == 0 else text
            table = s.RunTable.model_construct(
                run_id=ids,
                experiment_id=[r[1] for r in page],
                name=[r[2] for r in page],
                status=[r[3] for r in page],
                parent_id=[r[4] for r in page],
                start_time=svc._utc_times([r[5] for r in page]),
                end_time=svc._utc_times([r[6] for r in page]),
                created_by=[r[7] for r in page],
                metrics=columns[0],
                params=columns[1],
                tags=columns[2],
            )
            t = step("columns + RunTable", t)
        t = step("COMMIT", t)
        table.to_pandas()
        t = step("DataFrame", t)
        step("total (steps above)", start)
        if PAUSE:
            time.sleep(PAUSE)
    return times


def _timed(fn: Callable[[], Any]) -> list[float]:
    fn()
    out = []
    for _ in range(CALLS):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
        if PAUSE:
            time.sleep(PAUSE)
    return out


def _remote(port: int) -> dict[str, list[float]]:
    import httpx

    import plinth
    from plinth.tracking import schemas as s

    client = httpx.Client(base_url=f"http://127.0.0.1:{port}")
    body = {"experiments": [EXPERIMENT], "filter": SEARCH_FILTER, "max_results": SEARCH_RUNS}
    response = client.post(s.SEARCH_RUNS.path, json=body)
    payload = response.json()
    table = s.SEARCH_RUNS.parse(payload)
    return {
        "SDK search_runs through the server, DataFrame out": _timed(
            lambda: plinth.search_runs(EXPERIMENT, SEARCH_FILTER, max_results=SEARCH_RUNS)
        ),
        "HTTP: GET /healthz round trip (the floor)": _timed(lambda: client.get("/healthz")),
        "HTTP: POST /runs/search round trip": _timed(lambda: client.post(s.SEARCH_RUNS.path, json=body)),
        f"client: JSON decode ({len(response.content)} bytes)": _timed(response.json),
        "client: RunTable parse": _timed(lambda: s.SEARCH_RUNS.parse(payload)),
        "client: DataFrame": _timed(table.to_pandas),
    }


def _print(where: str, times: dict[str, list[float]]) -> None:
    load = Path("/proc/loadavg").read_text().split()[:3]
    for name, values in times.items():
        line = {
            "where": where,
            "phase": name,
            "median_ms": round(statistics.median(values) * 1e3, 3),
            "min_ms": round(min(values) * 1e3, 3),
            "pause_s": PAUSE,
            "load": load,
        }
        print(json.dumps(line), flush=True)


def main() -> None:
    os.environ["PLINTH_SYSTEM_METRICS"] = "0"
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["PLINTH_HOME"] = f"{tmp}/plinth"
        _use_backend(None)
        _seed_plinth_runs(SEARCH_RUNS, EXPERIMENT)
        import plinth

        sdk = _timed(lambda: plinth.search_runs(EXPERIMENT, SEARCH_FILTER, max_results=SEARCH_RUNS))
        _print("embedded", {**_phases(), "SDK search_runs, DataFrame out": sdk})
        port = _free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "plinth.cli.main", "server", "--no-auth", "--port", str(port)],
            env={k: v for k, v in os.environ.items() if k != "PLINTH_URI"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_healthy(f"http://127.0.0.1:{port}/healthz", server)
            _use_backend(f"http://127.0.0.1:{port}")
            _print("server", _remote(port))
        finally:
            _use_backend(None)
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
