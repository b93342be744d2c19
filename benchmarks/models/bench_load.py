"""Model loading and registration.

* Cold ``plinth.models.load("models:/bench@champion")`` + first ``predict()`` of a
  registered scikit-learn pipeline, against ``joblib.load`` + ``predict`` of the same
  pipeline: each in a fresh Python process (interpreter start and imports included), the
  two interleaved, median of several. Plinth's model is in skops' secure format; its run
  also resolves the alias in the metadata database and checks every file's sha256. Timed
  with the local model cache emptied before each run (the files are fetched from the
  artifact store) and with the cache kept (a restarted server).
* Registering a version with lineage (run, params, metrics, lineage edge) on SQLite, in
  process, the median of many registrations (target: under 50 ms).
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPEAT = 7
REGISTRATIONS = 30

PLINTH_CODE = """
import pandas as pd, plinth
X = pd.read_parquet({x!r})
plinth.models.load("models:/bench@champion").predict(X)
"""
JOBLIB_CODE = """
import pandas as pd, joblib
X = pd.read_parquet({x!r})
joblib.load({path!r}).predict(X)
"""


def _prepare(home: Path) -> tuple[Path, Path]:
    """Train a pipeline, log and register it (alias champion), and dump it with joblib."""
    import joblib
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    import plinth

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y)
    with plinth.start_run(name="bench", experiment="bench"):
        plinth.log_params({"C": 1.0, "max_iter": 1000})
        plinth.log_metrics({"accuracy": float(model.score(X, y))})
        info = plinth.models.log_model(model, "model", input_example=X.head(5))
    plinth.registry.register_model("bench", info.uri)
    plinth.registry.set_alias("bench", "champion", 1)
    joblib_path = home / "model.joblib"
    joblib.dump(model, joblib_path)
    x_path = home / "x.parquet"
    X.head(20).to_parquet(x_path)
    return joblib_path, x_path


def _run(code: str, env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system) of one fresh process running ``code``.

    CPU time is the steadier number on a shared machine: it does not count waiting for a core.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, env=env, capture_output=True)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _cold_load(home: Path, joblib_path: Path, x_path: Path, env: dict[str, str], keep_cache: bool) -> dict[str, float]:
    plinth_code = PLINTH_CODE.format(x=str(x_path))
    joblib_code = JOBLIB_CODE.format(x=str(x_path), path=str(joblib_path))
    _run(plinth_code, env)  # once to fill the page cache and the bytecode of both
    _run(joblib_code, env)
    plinth_times, joblib_times = [], []
    for _ in range(REPEAT):
        if not keep_cache:
            shutil.rmtree(home / "cache", ignore_errors=True)
        plinth_times.append(_run(plinth_code, env))
        joblib_times.append(_run(joblib_code, env))
    return {
        "plinth_s": statistics.median(w for w, _ in plinth_times),
        "joblib_s": statistics.median(w for w, _ in joblib_times),
        "plinth_cpu_s": statistics.median(c for _, c in plinth_times),
        "joblib_cpu_s": statistics.median(c for _, c in joblib_times),
    }


def _registration_ms() -> tuple[float, float]:
    """Median ms of register_version through the service, and through the embedded SDK."""
    import plinth
    from plinth.client.backend import current_backend
    from plinth.registry import service as svc

    source = plinth.registry.get_version("bench", 1).source
    caller = current_backend().platform.caller()  # type: ignore[attr-defined]
    service_times, sdk_times = [], []
    for _ in range(REGISTRATIONS):
        t = time.perf_counter()
        caller.call(svc.register_version, name="bench", source=source)
        service_times.append(time.perf_counter() - t)
        t = time.perf_counter()
        plinth.registry.register_model("bench", source)
        sdk_times.append(time.perf_counter() - t)
    return statistics.median(service_times) * 1000, statistics.median(sdk_times) * 1000


def run(emit: Callable[..., Any]) -> None:
    from plinth.client.backend import reset_backend

    saved = {
        k: os.environ.get(k)
        for k in ("PLINTH_HOME", "PLINTH_URI", "PLINTH_SYSTEM_METRICS", "PLINTH_CAPTURE_ENVIRONMENT")
    }
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        os.environ.update(PLINTH_HOME=str(home), PLINTH_SYSTEM_METRICS="0", PLINTH_CAPTURE_ENVIRONMENT="0")
        os.environ.pop("PLINTH_URI", None)
        reset_backend()
        try:
            joblib_path, x_path = _prepare(home)
            env = {k: v for k, v in os.environ.items() if k != "PLINTH_URI"}
            for keep_cache in (False, True):
                t = _cold_load(home, joblib_path, x_path, env, keep_cache)
                emit(
                    workload="cold load + first predict, cache " + ("kept" if keep_cache else "emptied"),
                    **{k: round(v, 3) for k, v in t.items()},
                    plinth_over_joblib_wall=round(t["plinth_s"] / t["joblib_s"], 2),
                    plinth_over_joblib_cpu=round(t["plinth_cpu_s"] / t["joblib_cpu_s"], 2),
                    target="<= 1.5",
                )
            service_ms, sdk_ms = _registration_ms()
            emit(
                workload="register a version with lineage (SQLite)",
                service_ms=round(service_ms, 1),
                sdk_ms=round(sdk_ms, 1),
                target_ms=50,
            )
        finally:
            reset_backend()
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
