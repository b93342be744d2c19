"""Tracking: logging and search, side by side with MLflow (its own venv) in one run.

Workloads (the issue's):

* one run, 10 params, 5 metrics × 2,000 steps, one call per point: the time a call takes
  to return to the training loop, and the time until every point is stored;
* batches of 1,000 points: points stored per second;
* ``search_runs`` over 2,000 runs with a metric and a param filter, and ordering all
  2,000 runs by a metric; then Plinth alone over 100,000 runs (1,000,000 with
  ``BENCH_TRACKING_RUNS=1000000``).

Each is measured on the embedded SQLite store and through a server (``plinth server`` /
``mlflow server``, both on SQLite). MLflow's per-point workload is cut to fewer calls
(``MLFLOW_POINT_CALLS``): at its speed the full 10,000 calls would take minutes; the
per-call time is what is compared. Set ``BENCH_TRACKING_QUICK=1`` for a short run.
"""

from __future__ import annotations

import json
import os
import random
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from benchmarks.anchors import anchor_python

QUICK = os.environ.get("BENCH_TRACKING_QUICK") == "1"
STEPS = 2000
KEYS = 5
PARAMS = 10
BATCH = 1000
BATCHES = 20 if QUICK else 50
SEARCH_RUNS = 500 if QUICK else 2000
BIG_RUNS = int(os.environ.get("BENCH_TRACKING_RUNS", "20000" if QUICK else "100000"))
MLFLOW_POINT_CALLS = {"sqlite": 500 if QUICK else 1000, "server": 100 if QUICK else 300}
MLFLOW_BATCHES = {"sqlite": 5 if QUICK else 20, "server": 3 if QUICK else 10}
REPEAT = 5
# the filtered search takes milliseconds on both sides: a median of 21 calls, not 5, so that one
# slow call in a few (the shared machine) does not move it; the orderings keep REPEAT
FILTER_REPEAT = 21
SEARCH_FILTER = "metrics.auc > 0.9 and params.model = 'rf'"
RARE_FILTER = "params.seed = '3' and metrics.auc > 0.999"  # about 1 run in 10,000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


def _median(fn: Callable[[], Any], repeat: int = REPEAT) -> float:
    fn()  # warm
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


# --- Plinth ---------------------------------------------------------------------------------
def _use_backend(uri: str | None) -> None:
    from plinth.client.backend import reset_backend

    if uri:
        os.environ["PLINTH_URI"] = uri
    else:
        os.environ.pop("PLINTH_URI", None)
    reset_backend()


def _plinth_points() -> dict[str, float]:
    import plinth

    plinth.set_experiment("bench-points")
    with plinth.start_run(name="points") as run:
        plinth.log_params({f"p{i}": i for i in range(PARAMS)})
        calls = STEPS * KEYS
        t0 = time.perf_counter()
        for step in range(STEPS):
            for k in range(KEYS):
                plinth.log_metric(f"m{k}", step * 0.001 + k, step=step)
        loop = time.perf_counter() - t0
    stored = time.perf_counter() - t0
    histories = [len(plinth.get_metric_history(run.id, f"m{k}")) for k in range(KEYS)]
    assert histories == [STEPS] * KEYS, histories
    return {"per_call_us": loop / calls * 1e6, "until_stored_s": stored, "calls": calls}


def _plinth_batches() -> dict[str, float]:
    import plinth

    plinth.set_experiment("bench-batches")
    with plinth.start_run(name="batches") as run:
        rows = [[(f"m{i % KEYS}", float(i), b * BATCH + i, None) for i in range(BATCH)] for b in range(BATCHES)]
        t0 = time.perf_counter()
        for batch in rows:
            plinth.log_batch(metrics=batch)
        dt = time.perf_counter() - t0
    assert len(plinth.get_metric_history(run.id, "m0")) == BATCH * BATCHES // KEYS
    return {"points_per_s": BATCH * BATCHES / dt}


def _seed_plinth_runs(n: int, experiment: str) -> None:
    from plinth.core.platform import local_platform
    from plinth.tracking import service as svc

    caller = local_platform().caller()
    rng = random.Random(1)
    for i in range(n):
        run = caller.call(svc.start_run, experiment=experiment, name=f"r{i}")
        model, auc, loss = rng.choice(["rf", "gbm", "lr"]), rng.random(), rng.random()
        caller.call(
            svc.log_batch,
            run_id=run.id,
            params={"model": model, "seed": i % 10, "fold": i % 5},
            metrics=[("auc", auc, 0, None), ("loss", loss, 0, None)],
        )
        caller.call(svc.end_run, run_id=run.id)


def _plinth_search(experiment: str, max_results: int) -> dict[str, float]:
    import plinth

    filtered = _median(lambda: plinth.search_runs(experiment, SEARCH_FILTER, max_results=max_results), FILTER_REPEAT)
    ordered = _median(lambda: plinth.search_runs(experiment, order_by=["metrics.auc desc"], max_results=max_results))
    n = len(plinth.search_runs(experiment, SEARCH_FILTER, max_results=max_results))
    return {"filter_s": filtered, "order_s": ordered, "matched": n}


def _bulk_seed(db_url: str, n: int) -> str:
    """Seed ``n`` finished runs straight into the tables (seeding speed is not measured)."""
    from sqlalchemy import insert

    from plinth.core.context import utcnow
    from plinth.core.ids import new_id
    from plinth.core.platform import local_platform
    from plinth.tracking import service as svc
    from plinth.tracking.tables import LatestMetric, Run, RunParam

    caller = local_platform().caller()
    exp = caller.call(svc.set_experiment, name="bench-big")
    project_id = caller.call(lambda ctx: ctx.project_id())
    rng = random.Random(2)
    now = utcnow()
    chunk = 20_000
    for start in range(0, n, chunk):
        runs, params, metrics = [], [], []
        for i in range(start, min(n, start + chunk)):
            rid = new_id()
            runs.append(
                {
                    "id": rid,
                    "project_id": project_id,
                    "experiment_id": exp.id,
                    "name": f"r{i}",
                    "status": "finished",
                    "start_time": now,
                    "end_time": now,
                    "created_by": "bench",
                    "parent_id": None,
                }
            )
            params += [
                {"run_id": rid, "key": "model", "value": rng.choice(["rf", "gbm", "lr"])},
                {"run_id": rid, "key": "seed", "value": str(i % 10)},
            ]
            metrics += [
                {"run_id": rid, "key": "auc", "step": 0, "timestamp": 0, "value": rng.random()},
                {"run_id": rid, "key": "loss", "step": 0, "timestamp": 0, "value": rng.random()},
            ]

        def write(ctx: Any, runs: list = runs, params: list = params, metrics: list = metrics) -> None:  # type: ignore[type-arg]
            ctx.session.execute(insert(Run.__table__), runs)
            ctx.session.execute(insert(RunParam.__table__), params)
            ctx.session.execute(insert(LatestMetric.__table__), metrics)

        caller.call(write)
    return exp.name


def _plinth_big(n: int) -> dict[str, float]:
    import plinth

    experiment = _bulk_seed("", n)
    filtered = _median(lambda: plinth.search_runs(experiment, SEARCH_FILTER, max_results=100), 3)
    ordered = _median(lambda: plinth.search_runs(experiment, order_by=["metrics.auc desc"], max_results=100), 3)
    both = _median(
        lambda: plinth.search_runs(experiment, SEARCH_FILTER, order_by=["metrics.auc desc"], max_results=100), 3
    )
    rare = _median(lambda: plinth.search_runs(experiment, RARE_FILTER, max_results=100), 3)
    rare_ordered = _median(
        lambda: plinth.search_runs(experiment, RARE_FILTER, order_by=["metrics.auc desc"], max_results=100), 3
    )
    return {
        "runs": n,
        "filter_first_page_s": filtered,
        "order_first_page_s": ordered,
        "filter_order_first_page_s": both,
        "rare_filter_s": rare,
        "rare_filter_order_s": rare_ordered,
    }


# --- MLflow (in its own venv) --------------------------------------------------------------
MLFLOW_SCRIPT = r"""
import json, os, random, sys, time, statistics
import mlflow
from mlflow import MlflowClient
from mlflow.entities import Metric, Param
uri, point_calls, batches, search_runs, batch_size, keys, params_n, repeat, search_filter = sys.argv[1:10]
filter_repeat = sys.argv[10]
point_calls, batches, search_runs, batch_size, keys, params_n, repeat, filter_repeat = map(
    int, (point_calls, batches, search_runs, batch_size, keys, params_n, repeat, filter_repeat)
)
mlflow.set_tracking_uri(uri)
client = MlflowClient()
out = {}
mlflow.set_experiment("bench-points")
with mlflow.start_run() as run:
    mlflow.log_params({f"p{i}": i for i in range(params_n)})
    t0 = time.perf_counter()
    for c in range(point_calls):
        mlflow.log_metric(f"m{c % keys}", c * 0.001, step=c // keys)
    loop = time.perf_counter() - t0
stored = time.perf_counter() - t0
out["points"] = {"per_call_us": loop / point_calls * 1e6, "until_stored_s": stored, "calls": point_calls}
exp = mlflow.set_experiment("bench-batches")
run = client.create_run(exp.experiment_id)
ts = int(time.time() * 1000)
rows = [[Metric(f"m{i % keys}", float(i), ts, b * batch_size + i) for i in range(batch_size)] for b in range(batches)]
t0 = time.perf_counter()
for batch in rows:
    client.log_batch(run.info.run_id, metrics=batch)
out["batches"] = {"points_per_s": batch_size * batches / (time.perf_counter() - t0)}
client.set_terminated(run.info.run_id)
exp = mlflow.set_experiment("bench-search")
rng = random.Random(1)
t0 = time.perf_counter()
for i in range(search_runs):
    r = client.create_run(exp.experiment_id, run_name=f"r{i}")
    model, auc, loss = rng.choice(["rf", "gbm", "lr"]), rng.random(), rng.random()
    client.log_batch(r.info.run_id, metrics=[Metric("auc", auc, ts, 0), Metric("loss", loss, ts, 0)],
                     params=[Param("model", model), Param("seed", str(i % 10)), Param("fold", str(i % 5))])
    client.set_terminated(r.info.run_id)
out["seed_s"] = time.perf_counter() - t0
def median(fn, n=repeat):
    fn()
    times = []
    for _ in range(n):
        t = time.perf_counter(); fn(); times.append(time.perf_counter() - t)
    return statistics.median(times)
ids = [exp.experiment_id]
out["search"] = {
    "filter_s": median(lambda: mlflow.search_runs(ids, search_filter, max_results=search_runs), filter_repeat),
    "order_s": median(lambda: mlflow.search_runs(ids, order_by=["metrics.auc DESC"], max_results=search_runs)),
    "matched": len(mlflow.search_runs(ids, search_filter, max_results=search_runs)),
}
print(json.dumps(out))
"""


def _mlflow(uri: str, where: str, python: Path) -> dict[str, Any]:
    args = [
        uri,
        str(MLFLOW_POINT_CALLS[where]),
        str(MLFLOW_BATCHES[where]),
        str(SEARCH_RUNS),
        str(BATCH),
        str(KEYS),
        str(PARAMS),
        str(REPEAT),
        SEARCH_FILTER,
        str(FILTER_REPEAT),
    ]
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    out = subprocess.run(
        [str(python), "-c", MLFLOW_SCRIPT, *args], capture_output=True, text=True, timeout=3600, env=env, check=False
    )
    if out.returncode != 0:
        raise RuntimeError(f"MLflow benchmark failed:\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _sqlite_ceiling() -> float:
    with tempfile.TemporaryDirectory() as tmp:
        con = sqlite3.connect(f"{tmp}/c.db", isolation_level=None)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=NORMAL")
        con.execute("CREATE TABLE m (run_id TEXT, key TEXT, step INTEGER, ts INTEGER, value REAL)")
        rows = [("r" * 26, f"m{i % KEYS}", i, 0, float(i)) for i in range(BATCH)]
        t0 = time.perf_counter()
        for _ in range(BATCHES):
            con.execute("BEGIN")
            con.executemany("INSERT INTO m VALUES (?,?,?,?,?)", rows)
            con.execute("COMMIT")
        dt = time.perf_counter() - t0
        con.close()
    return BATCH * BATCHES / dt


# --- the run ---------------------------------------------------------------------------------
def _plinth_all(where: str) -> dict[str, Any]:
    out: dict[str, Any] = {"points": _plinth_points(), "batches": _plinth_batches()}
    t0 = time.perf_counter()
    _seed_plinth_runs(SEARCH_RUNS, "bench-search")
    out["seed_s"] = time.perf_counter() - t0
    out["search"] = _plinth_search("bench-search", SEARCH_RUNS)
    return out


def run(emit: Callable[..., Any]) -> None:
    os.environ["PLINTH_SYSTEM_METRICS"] = "0"  # MLflow samples no system metrics by default either
    mlflow_python = anchor_python("mlflow")
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        # Plinth embedded and MLflow on SQLite
        os.environ["PLINTH_HOME"] = f"{tmp}/plinth-local"
        _use_backend(None)
        results["plinth/sqlite"] = _plinth_all("sqlite")
        results["mlflow/sqlite"] = _mlflow(f"sqlite:///{tmp}/mlflow-local.db", "sqlite", mlflow_python)
        # Both through their servers
        port = _free_port()
        server_env = {**os.environ, "PLINTH_HOME": f"{tmp}/plinth-server"}
        server_env.pop("PLINTH_URI", None)
        proc = subprocess.Popen(
            [sys.executable, "-m", "plinth.cli.main", "server", "--no-auth", "--port", str(port)],
            env=server_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_healthy(f"http://127.0.0.1:{port}/healthz", proc)
            _use_backend(f"http://127.0.0.1:{port}")
            points = _plinth_points()
            batches = _plinth_batches()
            _use_backend(None)
            os.environ["PLINTH_HOME"] = f"{tmp}/plinth-server"  # seed the server's store in-process
            _seed_plinth_runs(SEARCH_RUNS, "bench-search")
            _use_backend(f"http://127.0.0.1:{port}")
            results["plinth/server"] = {
                "points": points,
                "batches": batches,
                "search": _plinth_search("bench-search", SEARCH_RUNS),
            }
        finally:
            _use_backend(None)
            proc.terminate()
            proc.wait(timeout=30)
        port = _free_port()
        mlflow_bin = mlflow_python.parent / "mlflow"
        proc = subprocess.Popen(
            [
                str(mlflow_bin),
                "server",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--backend-store-uri",
                f"sqlite:///{tmp}/mlflow-server.db",
                "--workers",
                "1",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_healthy(f"http://127.0.0.1:{port}/health", proc)
            results["mlflow/server"] = _mlflow(f"http://127.0.0.1:{port}", "server", mlflow_python)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        ceiling = _sqlite_ceiling()
        # Plinth alone at scale (embedded, SQLite)
        os.environ["PLINTH_HOME"] = f"{tmp}/plinth-big"
        _use_backend(None)
        big = _plinth_big(BIG_RUNS)
    for where in ("sqlite", "server"):
        p, m = results[f"plinth/{where}"], results[f"mlflow/{where}"]
        emit(
            workload=f"log_metric one call per point ({where})",
            plinth_us_per_call=round(p["points"]["per_call_us"], 2),
            mlflow_us_per_call=round(m["points"]["per_call_us"], 1),
            ratio=round(m["points"]["per_call_us"] / p["points"]["per_call_us"], 1),
            plinth_calls=p["points"]["calls"],
            mlflow_calls=m["points"]["calls"],
            plinth_until_stored_s=round(p["points"]["until_stored_s"], 3),
        )
        emit(
            workload=f"log_batch of {BATCH} points ({where})",
            plinth_points_per_s=round(p["batches"]["points_per_s"]),
            mlflow_points_per_s=round(m["batches"]["points_per_s"]),
            ratio=round(p["batches"]["points_per_s"] / m["batches"]["points_per_s"], 1),
            sqlite3_executemany_ceiling_rows_per_s=round(ceiling) if where == "sqlite" else None,
        )
        emit(
            workload=f"search_runs metric+param filter over {SEARCH_RUNS} runs ({where})",
            plinth_s=round(p["search"]["filter_s"], 4),
            mlflow_s=round(m["search"]["filter_s"], 4),
            ratio=round(m["search"]["filter_s"] / p["search"]["filter_s"], 1),
            matched=(p["search"]["matched"], m["search"]["matched"]),
        )
        emit(
            workload=f"search_runs ordering all {SEARCH_RUNS} runs by a metric ({where})",
            plinth_s=round(p["search"]["order_s"], 4),
            mlflow_s=round(m["search"]["order_s"], 4),
            ratio=round(m["search"]["order_s"] / p["search"]["order_s"], 1),
        )
    emit(
        workload=f"search_runs first page (100) over {big['runs']} runs (sqlite, Plinth only)",
        filter_s=round(big["filter_first_page_s"], 4),
        order_by_metric_s=round(big["order_first_page_s"], 4),
        filter_and_order_s=round(big["filter_order_first_page_s"], 4),
        rare_filter_s=round(big["rare_filter_s"], 4),
        rare_filter_and_order_s=round(big["rare_filter_order_s"], 4),
        load_average=Path("/proc/loadavg").read_text().split()[:3],
    )
