"""Start-up: ``import plinth``, ``plinth --help`` and a server's first ``/healthz``,
side by side with ``import mlflow`` and ``mlflow server`` (its own venv)."""

from __future__ import annotations

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

from benchmarks.anchors import anchor_python

REPEAT = 5


def _median_seconds(cmd: list[str], env: dict[str, str] | None = None) -> float:
    times = []
    for _ in range(REPEAT):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, env=env)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _time_to_healthz(cmd: list[str], port: int, env: dict[str, str], path: str) -> float:
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while time.perf_counter() - t < 120:
            try:
                if httpx.get(f"http://127.0.0.1:{port}{path}", timeout=1).status_code == 200:
                    return time.perf_counter() - t
            except httpx.TransportError:
                time.sleep(0.05)
        raise RuntimeError(f"{cmd[0]} did not answer {path} within 120 s")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def run(emit: Callable[..., Any]) -> None:
    bin_dir = Path(sys.executable).parent
    mlflow_py = anchor_python("mlflow")
    plinth_import = _median_seconds([sys.executable, "-c", "import plinth"])
    mlflow_import = _median_seconds([str(mlflow_py), "-c", "import mlflow"])
    emit(
        workload="import",
        plinth_s=round(plinth_import, 3),
        mlflow_s=round(mlflow_import, 3),
        ratio=round(mlflow_import / plinth_import, 1),
    )
    help_s = _median_seconds([str(bin_dir / "plinth"), "--help"])
    mlflow_help = _median_seconds([str(mlflow_py.parent / "mlflow"), "--help"])
    emit(
        workload="cli --help",
        plinth_s=round(help_s, 3),
        mlflow_s=round(mlflow_help, 3),
        ratio=round(mlflow_help / help_s, 1),
    )
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "PLINTH_HOME": tmp}
        env.pop("PLINTH_URI", None)
        port = _free_port()
        plinth_up = _time_to_healthz([str(bin_dir / "plinth"), "server", "--port", str(port)], port, env, "/healthz")
        port = _free_port()
        mlflow_env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp}/mlflow.db"}
        mlflow_up = _time_to_healthz(
            [
                str(mlflow_py.parent / "mlflow"),
                "server",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--backend-store-uri",
                f"sqlite:///{tmp}/mlflow.db",
                "--workers",
                "1",
            ],
            port,
            mlflow_env,
            "/health",
        )
    emit(
        workload="server first health check",
        plinth_s=round(plinth_up, 2),
        mlflow_s=round(mlflow_up, 2),
        ratio=round(mlflow_up / plinth_up, 1),
    )
