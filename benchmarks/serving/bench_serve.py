"""Serving: ``plinth serve`` on a scikit-learn pipeline (scaler + logistic regression on
iris), single-row v2 requests at 16 concurrent connections, batching on and off, and the
time from ``plinth serve`` to the first ready answer.

The load generator is Python (httpx, asyncio) in this process, not ``wrk``: on a small
machine it competes with the server for the CPUs, so the numbers are a floor and the
on/off ratio is the meaningful one. The comparison with ``mlflow models serve`` is not
done yet.
"""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

CONCURRENCY = 16
SECONDS = 8.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _model_folder(root: Path) -> Path:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from plinth.models.packaging import save_model

    X, y = load_iris(return_X_y=True, as_frame=True)
    X.columns = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    folder = root / "iris"
    save_model(make_pipeline(StandardScaler(), LogisticRegression(max_iter=300)).fit(X, y), folder, input_example=X)
    return folder


def _start(folder: Path, port: int, *extra: str) -> tuple[subprocess.Popen[bytes], float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLINTH_")}
    cmd = [str(Path(sys.executable).parent / "plinth"), "serve", str(folder), "--port", str(port), *extra]
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while time.perf_counter() - t < 60:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v2/models/iris/ready", timeout=1).status_code == 200:
                return proc, time.perf_counter() - t
        except httpx.TransportError:
            time.sleep(0.02)
    proc.kill()
    raise RuntimeError("plinth serve did not become ready in 60 s")


async def _load(url: str, body: dict[str, Any]) -> list[float]:
    latencies: list[float] = []
    deadline = time.perf_counter() + SECONDS
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:

        async def worker() -> None:
            while time.perf_counter() < deadline:
                t = time.perf_counter()
                r = await client.post("/v2/models/iris/infer", json=body)
                r.raise_for_status()
                latencies.append(time.perf_counter() - t)

        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return latencies


def run(emit: Callable[..., Any]) -> None:
    names = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    body = {"inputs": [{"name": n, "shape": [1], "datatype": "FP64", "data": [1.5]} for n in names]}
    with tempfile.TemporaryDirectory() as tmp:
        folder = _model_folder(Path(tmp))
        results = {}
        for label, extra in (("batching on", ()), ("batching off", ("--no-batching",))):
            port = _free_port()
            proc, ready_s = _start(folder, port, *extra)
            try:
                latencies = asyncio.run(_load(f"http://127.0.0.1:{port}", body))
            finally:
                proc.terminate()
                proc.wait(timeout=30)
            rps = len(latencies) / SECONDS
            results[label] = rps
            emit(
                workload=f"single-row v2 infer, {CONCURRENCY} connections ({label})",
                requests_per_s=round(rps),
                p50_ms=round(statistics.median(latencies) * 1000, 1),
                p99_ms=round(statistics.quantiles(latencies, n=100)[98] * 1000, 1),
                ready_s=round(ready_s, 2),
            )
        emit(workload="batching on / off", ratio=round(results["batching on"] / results["batching off"], 2))
