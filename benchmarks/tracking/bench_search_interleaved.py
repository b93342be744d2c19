"""Tracking search, Plinth and MLflow interleaved call by call (SQLite: embedded, then servers).

On a shared machine the load moves within seconds, so running one side and then the
other compares two different machines. Here both seed the same 2,000 runs as
``bench_logging`` (``metrics.auc``, ``metrics.loss``, ``params.model`` …), MLflow in its
own venv as a worker process that answers one search per request, and the two sides
take turns: one Plinth call, one MLflow call, repeated; then the same through ``plinth
server`` and ``mlflow server --workers 1`` on the databases just seeded. Reported: medians
of each side and the ratio of the medians, with the load average before and after.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.anchors import anchor_python
from benchmarks.tracking.bench_logging import (
    SEARCH_FILTER,
    SEARCH_RUNS,
    _free_port,
    _seed_plinth_runs,
    _use_backend,
    _wait_healthy,
)

ROUNDS = int(os.environ.get("BENCH_TRACKING_ROUNDS", "40"))
# Calls per turn: 1 alternates call by call; more keeps each side's caches warm within a turn.
BLOCK = int(os.environ.get("BENCH_TRACKING_BLOCK", "1"))

MLFLOW_WORKER = r"""
import random, sys, time
import mlflow
from mlflow import MlflowClient
from mlflow.entities import Metric, Param
uri, n, search_filter, seed = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4] == "1"
mlflow.set_tracking_uri(uri)
client = MlflowClient()
exp = mlflow.set_experiment("bench-search")
rng = random.Random(1)
ts = int(time.time() * 1000)
for i in range(n if seed else 0):
    r = client.create_run(exp.experiment_id, run_name=f"r{i}")
    model, auc, loss = rng.choice(["rf", "gbm", "lr"]), rng.random(), rng.random()
    client.log_batch(r.info.run_id, metrics=[Metric("auc", auc, ts, 0), Metric("loss", loss, ts, 0)],
                     params=[Param("model", model), Param("seed", str(i % 10)), Param("fold", str(i % 5))])
    client.set_terminated(r.info.run_id)
ids = [exp.experiment_id]
searches = {
    "filter": lambda: mlflow.search_runs(ids, search_filter, max_results=n),
    "order": lambda: mlflow.search_runs(ids, order_by=["metrics.auc DESC"], max_results=n),
}
print("ready", len(searches["filter"]()), flush=True)  # the runs that pass: 0 means not seeded
for line in sys.stdin:
    name, _, count = line.strip().partition(" ")
    fn = searches.get(name)
    if fn is None:
        break
    times = []
    for _ in range(int(count or 1)):
        t = time.perf_counter(); fn(); times.append(time.perf_counter() - t)
    print(*times, flush=True)
"""


def _load() -> list[str]:
    return Path("/proc/loadavg").read_text().split()[:3]


def _worker(python: Path, uri: str, seed: bool) -> subprocess.Popen[str]:
    worker = subprocess.Popen(
        [str(python), "-c", MLFLOW_WORKER, uri, str(SEARCH_RUNS), SEARCH_FILTER, "1" if seed else "0"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert worker.stdout is not None
    ready = worker.stdout.readline().split()
    if not ready or ready[0] != "ready" or int(ready[1]) == 0:
        worker.kill()
        raise RuntimeError("the MLflow worker did not start")
    return worker


def _stop(worker: subprocess.Popen[str]) -> None:
    assert worker.stdin is not None
    worker.stdin.write("quit\n")
    worker.stdin.flush()
    worker.wait(timeout=60)


def _interleave(emit: Callable[..., Any], where: str, worker: subprocess.Popen[str]) -> None:
    import plinth

    assert worker.stdin is not None and worker.stdout is not None
    plinth_searches = {
        "filter": lambda: plinth.search_runs("bench-search", SEARCH_FILTER, max_results=SEARCH_RUNS),
        "order": lambda: plinth.search_runs("bench-search", order_by=["metrics.auc desc"], max_results=SEARCH_RUNS),
    }
    matched = len(plinth_searches["filter"]())
    for name, rounds in (("filter", ROUNDS), ("order", max(5, ROUNDS // 4))):
        before = _load()
        plinth_times, mlflow_times = [], []
        plinth_searches[name]()  # warm: statements built, pages cached by SQLite
        for _ in range(rounds):
            for _ in range(BLOCK):
                t = time.perf_counter()
                plinth_searches[name]()
                plinth_times.append(time.perf_counter() - t)
            worker.stdin.write(f"{name} {BLOCK}\n")
            worker.stdin.flush()
            mlflow_times += [float(x) for x in worker.stdout.readline().split()]
        p, m = statistics.median(plinth_times), statistics.median(mlflow_times)
        emit(
            workload=f"search_runs {name} over {SEARCH_RUNS} runs, interleaved {BLOCK} call(s) a turn ({where})",
            plinth_s=round(p, 5),
            mlflow_s=round(m, 5),
            ratio=round(m / p, 1),
            plinth_min_s=round(min(plinth_times), 5),
            mlflow_min_s=round(min(mlflow_times), 5),
            calls=len(plinth_times),
            plinth_matched=matched if name == "filter" else None,
            load_average_before=before,
            load_average_after=_load(),
        )


def run(emit: Callable[..., Any]) -> None:
    os.environ["PLINTH_SYSTEM_METRICS"] = "0"
    mlflow_python = anchor_python("mlflow")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["PLINTH_HOME"] = f"{tmp}/plinth"
        _use_backend(None)
        _seed_plinth_runs(SEARCH_RUNS, "bench-search")
        worker = _worker(mlflow_python, f"sqlite:///{tmp}/mlflow.db", seed=True)
        try:
            _interleave(emit, "sqlite", worker)
        finally:
            _stop(worker)
        # Both servers on the databases just seeded
        plinth_port, mlflow_port = _free_port(), _free_port()
        servers = [
            subprocess.Popen(
                [sys.executable, "-m", "plinth.cli.main", "server", "--no-auth", "--port", str(plinth_port)],
                env={k: v for k, v in os.environ.items() if k != "PLINTH_URI"},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            ),
            subprocess.Popen(
                [str(mlflow_python.parent / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(mlflow_port)]
                + ["--backend-store-uri", f"sqlite:///{tmp}/mlflow.db", "--workers", "1"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            ),
        ]
        try:
            _wait_healthy(f"http://127.0.0.1:{plinth_port}/healthz", servers[0])
            _wait_healthy(f"http://127.0.0.1:{mlflow_port}/health", servers[1])
            _use_backend(f"http://127.0.0.1:{plinth_port}")
            worker = _worker(mlflow_python, f"http://127.0.0.1:{mlflow_port}", seed=False)
            try:
                _interleave(emit, "server", worker)
            finally:
                _stop(worker)
        finally:
            _use_backend(None)
            for proc in servers:
                proc.terminate()
                proc.wait(timeout=30)
