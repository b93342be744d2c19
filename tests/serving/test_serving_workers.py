"""``plinth serve --workers N``: N processes on one port, each answering with its own models."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil
from test_serving_cli import env, start_serving

from models_support import iris

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def _worker_of(url: str) -> str:
    """The pid of the worker that answered, on a fresh connection (so the kernel picks a worker)."""
    r = httpx.get(f"{url}/v2/health/live", timeout=10, headers={"connection": "close"})
    assert r.status_code == 200 and r.json() == {"live": True}
    return r.headers["x-plinth-worker"]


def test_two_workers_share_the_port_and_stop_cleanly_on_sigterm(iris_folder: Path, tmp_path: Path) -> None:
    proc, client = start_serving(tmp_path / "home", str(iris_folder), "--workers", "2")
    try:
        children = psutil.Process(proc.pid).children(recursive=True)
        workers = {str(p.pid) for p in children if any("spawn_main" in part for part in p.cmdline())}
        assert len(workers) == 2, workers
        url = str(client.base_url).rstrip("/")
        seen: set[str] = set()
        deadline = time.monotonic() + 120  # the second worker may still be loading its model
        with ThreadPoolExecutor(16) as pool:
            while seen != workers and time.monotonic() < deadline:
                seen.update(pool.map(lambda _: _worker_of(url), range(64)))
        assert seen == workers  # both processes answered, and nothing else did

        X, _ = iris()
        rows = X.head(3)
        body = {
            "inputs": [
                {"name": n, "shape": [3], "datatype": "FP64", "data": rows[n].astype(float).tolist()} for n in FEATURES
            ]
        }
        answers = {
            tuple(client.post("/v2/models/iris/infer", json=body).json()["outputs"][0]["data"]) for _ in range(8)
        }
        assert answers == {(0, 0, 0)}  # every worker serves the same model: the first iris rows are setosa
        bad = client.post("/v2/models/iris/infer", json={"inputs": [{"name": "sepal_length"}]})
        assert bad.status_code == 400 and "shape must be a list" in bad.json()["error"]
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert not [p for p in map(int, workers) if psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"]
    assert "serving iris version 1" in out


def test_workers_refuse_a_grpc_port_and_a_count_below_one(iris_folder: Path, tmp_path: Path) -> None:
    base = [sys.executable, "-m", "plinth.cli.main", "serve", str(iris_folder), "--port", "1"]
    for extra, message in (
        (["--workers", "2", "--grpc-port", "0"], "--grpc-port serves from one process"),
        (["--workers", "0"], "--workers must be at least 1, got 0"),
    ):
        out = subprocess.run([*base, *extra], env=env(tmp_path / "home"), capture_output=True, text=True, timeout=120)
        assert out.returncode == 2, (extra, out.stderr)
        assert message in out.stderr + out.stdout
