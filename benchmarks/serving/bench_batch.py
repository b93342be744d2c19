"""Batch inference, side by side in one run, rounds interleaved, on the same data:

* ``plinth.serving.predict_batch``: a dataset version (breast cancer from scikit-learn, its 569
  rows replicated to a few million, with a key and the label) scored by a registered
  StandardScaler + LogisticRegression pipeline, written as a new dataset version (Delta,
  with its profile and lineage); one process, and ``--workers`` processes; and the same job
  submitted to a Plinth server (``PLINTH_URI``: ``POST /api/v1/batch-jobs``, run by the
  server, followed by the client until done) on a loopback port of this process;
* the plain loop a user would write: ``pandas.read_parquet`` of the same Parquet files,
  ``pipeline.predict``, the key, label and prediction written with ``to_parquet``;
* MLflow (its own environment): ``mlflow.pyfunc.load_model(...).predict`` of the same
  pipeline on the whole frame read from the same files, written the same way.

    python -m benchmarks.serving.bench_batch                   # 4000 replicas: 2,276,000 rows
    python -m benchmarks.serving.bench_batch --replicas 1000 --rounds 2

Times are wall clock of the scoring job (imports, training and the input ingest excluded).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.anchors import run_in_anchor

# the anchor: the same pipeline trained the same way, saved and loaded by MLflow, timed inside
_MLFLOW = """
import json, sys, tempfile, time
import pandas as pd
import mlflow.pyfunc, mlflow.sklearn
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

files, out = json.loads(sys.argv[1]), sys.argv[2]
X, y = load_breast_cancer(return_X_y=True, as_frame=True)
X.columns = [c.replace(" ", "_") for c in X.columns]
pipeline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y)
folder = tempfile.mkdtemp() + "/model"
mlflow.sklearn.save_model(pipeline, folder, input_example=X.head(3))
started = time.perf_counter()
model = mlflow.pyfunc.load_model(folder)
frame = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
scored = frame[["row_id", "label"]].assign(prediction=model.predict(frame[list(X.columns)]))
scored.to_parquet(out)
print(json.dumps({"seconds": time.perf_counter() - started, "rows": len(scored)}))
"""


def _prepare(replicas: int) -> tuple[Any, list[str], list[str]]:
    """A fresh embedded platform with model ``bc`` 1 and dataset ``bc`` 1; the pipeline, features, files."""
    os.environ["PLINTH_HOME"] = tempfile.mkdtemp(prefix="plinth-bench-batch-")
    os.environ.update(PLINTH_SYSTEM_METRICS="0", PLINTH_CAPTURE_ENVIRONMENT="0")
    import numpy as np
    import pandas as pd
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    import plinth
    from plinth.core.platform import local_platform
    from plinth.serving.batch import _version_files

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X.columns = [c.replace(" ", "_") for c in X.columns]
    pipeline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y)
    with plinth.start_run(name="fit"):
        plinth.models.log_model(pipeline, "model", input_example=X.head(3), registered_model_name="bc")
    frame = pd.concat([X] * replicas, ignore_index=True)
    frame.insert(0, "row_id", np.arange(len(frame), dtype="int64"))
    frame["label"] = np.tile(y.to_numpy(), replicas)
    plinth.data.ingest("bc", frame, profile=False)
    files = local_platform().caller().call(_version_files, ref="datasets:/bc/1")
    return pipeline, list(X.columns), files


def _plain_loop(pipeline: Any, features: list[str], files: list[str], out: str) -> int:
    import pandas as pd

    rows = 0
    for i, file in enumerate(files):
        frame = pd.read_parquet(file)
        scored = frame[["row_id", "label"]].assign(prediction=pipeline.predict(frame[features]))
        scored.to_parquet(f"{out}-{i}.parquet")
        rows += len(scored)
    return rows


def _start_server() -> tuple[str, Any]:
    """A Plinth server (no auth) on the embedded platform, on a free loopback port; (url, server)."""
    import socket
    import threading

    import uvicorn

    from plinth.core.platform import local_platform
    from plinth.server.app import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(local_platform(), auth=False), port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.01)
    return f"http://127.0.0.1:{port}", server


def _on_server(url: str) -> int:
    import plinth
    from plinth.client.backend import RemoteBackend, bound_backend

    with bound_backend(RemoteBackend(url, None)):
        return plinth.serving.predict_batch("models:/bc/1", "bc", "bc_scores").rows


def _timed(fn: Callable[[], int]) -> tuple[float, int]:
    started = time.perf_counter()
    rows = fn()
    return time.perf_counter() - started, rows


def _loadavg() -> str:
    try:
        return Path("/proc/loadavg").read_text().split(" ", 3)[:3].__str__()
    except OSError:
        return "n/a"


def run(
    emit: Callable[..., None],
    replicas: int = 4000,
    rounds: int = 3,
    workers: int = 2,
    mlflow: bool = True,
    server: bool = True,
) -> None:
    import plinth

    pipeline, features, files = _prepare(replicas)
    scratch = tempfile.mkdtemp(prefix="plinth-bench-out-")
    times: dict[str, list[float]] = {
        "plinth": [],
        f"plinth_{workers}_workers": [],
        "plinth_server_job": [],
        "plain_loop": [],
        "mlflow": [],
    }
    rows = 0
    plinth.serving.predict_batch("models:/bc/1", "bc", "bc_scores")  # warm: first imports, first writes
    url, uv = _start_server() if server else (None, None)
    for r in range(rounds):
        seconds, rows = _timed(lambda: plinth.serving.predict_batch("models:/bc/1", "bc", "bc_scores").rows)
        times["plinth"].append(seconds)
        seconds, _ = _timed(lambda: _plain_loop(pipeline, features, files, f"{scratch}/plain-{r}"))  # noqa: B023
        times["plain_loop"].append(seconds)
        if workers > 1:
            seconds, _ = _timed(
                lambda: plinth.serving.predict_batch("models:/bc/1", "bc", "bc_scores", workers=workers).rows
            )
            times[f"plinth_{workers}_workers"].append(seconds)
        if url is not None:
            seconds, _ = _timed(lambda: _on_server(url))  # type: ignore[arg-type]  # noqa: B023
            times["plinth_server_job"].append(seconds)
        if mlflow:
            out = run_in_anchor("mlflow", _MLFLOW, json.dumps(files), f"{scratch}/mlflow-{r}.parquet")
            times["mlflow"].append(json.loads(out.strip().splitlines()[-1])["seconds"])
    if uv is not None:
        uv.should_exit = True
    medians = {k: statistics.median(v) for k, v in times.items() if v}
    emit(
        rows=rows,
        rounds=rounds,
        seconds={k: round(v, 3) for k, v in medians.items()},
        rows_per_second={k: round(rows / v) for k, v in medians.items()},
        ratio_plain_over_plinth=round(medians["plain_loop"] / medians["plinth"], 2),
        ratio_mlflow_over_plinth=round(medians["mlflow"] / medians["plinth"], 2) if "mlflow" in medians else None,
        ratio_server_job_over_plinth=(
            round(medians["plinth_server_job"] / medians["plinth"], 2) if "plinth_server_job" in medians else None
        ),
        all_seconds={k: [round(x, 3) for x in v] for k, v in times.items() if v},
        loadavg=_loadavg(),
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--replicas", type=int, default=4000, help="copies of the 569 rows")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2, help="also time this many worker processes (1: not)")
    parser.add_argument("--no-mlflow", action="store_true", help="skip the MLflow anchor")
    parser.add_argument("--no-server", action="store_true", help="skip the job submitted to a server")
    args = parser.parse_args()

    def _print(**fields: Any) -> None:
        print(json.dumps({"benchmark": "serving.bench_batch", **fields}), flush=True)

    run(_print, args.replicas, args.rounds, args.workers, not args.no_mlflow, not args.no_server)
    sys.exit(0)
