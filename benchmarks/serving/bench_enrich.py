"""The cost of a feature-enriched request: the same model, the same server, requests that carry
the entity key (features looked up in the online store, SQLite) next to requests that carry the
features themselves, interleaved, one client, closed loop.

No anchor is measured here: the systems compared elsewhere (MLflow, Feast) have no endpoint
that looks features up before predicting; with them it takes two calls (a feature server, then
the model server).

    python -m benchmarks.serving.bench_enrich                # 3 rounds of 300 requests per target
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from benchmarks.serving.bench_grpc import _free_port, _server, _timed, cli

DRIVERS = 10_000


def _repository(work: Path) -> tuple[Path, Any]:
    """A driver feature view (Parquet source), applied and materialized into PLINTH_HOME's online
    store; a model trained on it, saved as a folder. Returns the folder and the feature values."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq
    from sklearn.linear_model import LogisticRegression

    import plinth
    from plinth.features import Entity, FeatureService, FeatureView, Field, Source
    from plinth.models.packaging import save_model

    rng = np.random.default_rng(0)
    now = datetime.now(UTC)
    conv, trips = rng.random(DRIVERS), rng.integers(0, 50, DRIVERS).astype("float64")
    source = work / "driver_stats"
    source.mkdir()
    table_ = pa.table(
        {
            "driver_id": pa.array(np.arange(DRIVERS), pa.int64()),
            "event_timestamp": pa.array([now - timedelta(minutes=5)] * DRIVERS, pa.timestamp("us", tz="UTC")),
            "conv_rate": conv,
            "trips": trips,
        }
    )
    pq.write_table(table_, source / "part-0.parquet")
    driver = Entity(name="driver", join_keys=["driver_id"])
    stats = FeatureView(
        name="driver_stats",
        entities=[driver],
        schema=[Field(name="conv_rate", dtype="float64"), Field(name="trips", dtype="float64")],
        source=Source(str(source), timestamp_field="event_timestamp"),
        ttl=timedelta(days=1),
    )
    plinth.features.apply([driver, stats, FeatureService(name="driver_model", features=[stats])])
    plinth.features.materialize(None, now)
    import pandas as pd

    X = pd.DataFrame({"conv_rate": conv, "trips": trips})
    model = LogisticRegression().fit(X, trips > 25)
    folder = work / "eta"
    save_model(model, folder, input_example=X.head(2))
    return folder, X


def _call(client: httpx.Client, bodies: list[dict[str, Any]]) -> Callable[[], Any]:
    encoded = [json.dumps(b).encode() for b in bodies]
    headers = {"content-type": "application/json"}
    state = {"i": 0}

    def call() -> Any:
        state["i"] += 1
        response = client.post("/models/eta/predict", content=encoded[state["i"] % len(encoded)], headers=headers)
        assert response.status_code == 200, response.text

    return call


def run(emit: Callable[..., Any], requests: int = 300, rounds: int = 3) -> dict[str, list[float]]:
    import numpy as np

    results: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        work = Path(tmp)
        os.environ["PLINTH_HOME"] = str(work / "home")
        folder, X = _repository(work)
        port = _free_port()
        code = "from plinth.cli.main import main; main()"
        command = [sys.executable, "-c", code, "serve", str(folder), "--port", str(port), "--trust"]
        command += ["--features", "features:/driver_model"]
        stack.enter_context(_server(command, f"http://127.0.0.1:{port}/v2", {"PLINTH_HOME": str(work / "home")}))
        client = stack.enter_context(httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30))
        rng = np.random.default_rng(1)
        calls = {}
        for n in (1, 100):
            picks = [rng.integers(0, DRIVERS, n).tolist() for _ in range(50)]
            label = f"{n} row{'s' if n > 1 else ''}"
            keyed = [{"records": [{"driver_id": i} for i in p]} for p in picks]
            carried = [{"records": X.iloc[p].to_dict(orient="records")} for p in picks]
            calls[f"plain predict, entity keys (features looked up), {label}"] = _call(client, keyed)
            calls[f"plain predict, features in the request, {label}"] = _call(client, carried)
        for r in range(rounds):
            for label, call in calls.items():
                latencies = _timed(call, requests)
                results.setdefault(label, []).extend(latencies)
                emit(
                    workload=label,
                    round=r,
                    p50_ms=round(statistics.median(latencies), 3),
                    loadavg=Path("/proc/loadavg").read_text().split()[:3],
                )
    return results


def main() -> None:
    cli(__doc__, run)


if __name__ == "__main__":
    main()
