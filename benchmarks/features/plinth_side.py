"""The Plinth side of ``bench_feast``: run in a fresh process of the project's interpreter.

    python plinth_side.py CONFIG_JSON

The same Parquet files as sources; historical retrieval cold (first call: the per-view
indexes are built) and warm; materialize into SQLite, online p99 in-process, through the
feature server over HTTP; then the same on Redis. Prints one JSON object; writes the
historical result to ``<work>/plinth_historical.parquet``.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
from datetime import timedelta


def _p(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def _online(cfg: dict, out: dict, prefix: str) -> None:
    import random

    import plinth

    features = cfg["features"]
    rng = random.Random(1)
    drivers = cfg["drivers"]
    for _ in range(50):
        plinth.features.get_online_features(features, [{"driver_id": rng.randrange(drivers)}])
    one = []
    for _ in range(cfg["online_calls"]):
        rows = [{"driver_id": rng.randrange(drivers)}]
        t = time.perf_counter()
        plinth.features.get_online_features(features, rows).to_dict()
        one.append(time.perf_counter() - t)
    hundred = []
    for _ in range(cfg["online_calls_100"]):
        rows = [{"driver_id": rng.randrange(drivers)} for _ in range(100)]
        t = time.perf_counter()
        plinth.features.get_online_features(features, rows).to_dict()
        hundred.append(time.perf_counter() - t)
    present = plinth.features.get_online_features(features, [{"driver_id": d} for d in range(100)])
    out[f"{prefix}_online_present_share"] = sum(s == "present" for s in present.statuses[present_key(features)]) / 100
    out[f"{prefix}_online1_p50_ms"] = _p(one, 50) * 1e3
    out[f"{prefix}_online1_p99_ms"] = _p(one, 99) * 1e3
    out[f"{prefix}_online100_p50_ms"] = _p(hundred, 50) * 1e3
    out[f"{prefix}_online100_p99_ms"] = _p(hundred, 99) * 1e3


def present_key(features: list[str]) -> str:
    return features[0].split(":", 1)[1]


def _http(cfg: dict, out: dict) -> None:
    import random

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "plinth.cli.main", "features", "serve", "--no-auth", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)
        deadline = time.monotonic() + 60
        while True:
            try:
                if client.get("/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        client.close()
        # The standard library's client: httpx alone adds about 0.8 ms a request on this machine.
        conn = http.client.HTTPConnection("127.0.0.1", port)
        rng = random.Random(2)

        def post() -> float:
            body = json.dumps(
                {"features": cfg["features"], "entity_rows": [{"driver_id": rng.randrange(cfg["drivers"])}]}
            )
            t = time.perf_counter()
            conn.request("POST", "/features/online", body, {"Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
            elapsed = time.perf_counter() - t
            if response.status != 200:
                raise RuntimeError(f"feature server answered {response.status}")
            return elapsed

        for _ in range(100):
            post()
        lat = [post() for _ in range(cfg["online_calls"])]
        conn.close()
        out["http_online1_p50_ms"] = _p(lat, 50) * 1e3
        out["http_online1_p99_ms"] = _p(lat, 99) * 1e3
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def main() -> None:
    cfg = json.loads(sys.argv[1])
    os.environ["PLINTH_HOME"] = cfg["home"]
    import pandas as pd
    import pyarrow.parquet as pq

    import plinth
    from plinth.client.backend import reset_backend
    from plinth.features import Entity, FeatureView, Field, Source

    out: dict = {}
    driver = Entity(name="driver", join_keys=["driver_id"])
    ttl = timedelta(seconds=cfg["ttl_seconds"])
    hourly = FeatureView(
        name="driver_hourly",
        entities=[driver],
        schema=[Field("conv_rate", "float64"), Field("acc_rate", "float64"), Field("avg_daily_trips", "int64")],
        source=Source(cfg["hourly"], created_field="created"),
        ttl=ttl,
    )
    daily = FeatureView(
        name="driver_daily",
        entities=[driver],
        schema=[Field("rating", "float64"), Field("trips_today", "int64")],
        source=Source(cfg["daily"], created_field="created"),
        ttl=ttl,
    )
    plinth.features.apply([driver, hourly, daily])
    entities = pq.read_table(cfg["entities"])
    t = time.perf_counter()
    result = plinth.features.get_historical_features(entities, cfg["features"])
    out["historical_cold_s"] = time.perf_counter() - t
    warm = []
    for _ in range(5):
        t = time.perf_counter()
        plinth.features.get_historical_features(entities, cfg["features"])
        warm.append(time.perf_counter() - t)
    out["historical_warm_s"] = sorted(warm)[len(warm) // 2]
    from plinth.features import offline

    offline.FORCE_DUCKDB = True  # the fallback engine (composite keys): DuckDB ASOF JOIN over the same indexes
    t = time.perf_counter()
    plinth.features.get_historical_features(entities, cfg["features"])
    out["historical_duckdb_s"] = time.perf_counter() - t
    offline.FORCE_DUCKDB = False
    out["historical_rows"] = result.num_rows
    pq.write_table(result, os.path.join(cfg["work"], "plinth_historical.parquet"))
    start, end = pd.Timestamp(cfg["start"]).to_pydatetime(), pd.Timestamp(cfg["end"]).to_pydatetime()
    from plinth.features.index import index_cache

    index_cache.clear()  # materialize from the sources, as a fresh process would
    t = time.perf_counter()
    plinth.features.materialize(start, end)
    out["sqlite_materialize_s"] = time.perf_counter() - t
    plinth.features.get_historical_features(entities.slice(0, 10), cfg["features"])  # builds the indexes
    t = time.perf_counter()
    plinth.features.materialize(start, end)  # now from the offline engine's cached indexes
    out["sqlite_materialize_indexed_s"] = time.perf_counter() - t
    _online(cfg, out, "sqlite")
    _http(cfg, out)
    if cfg.get("redis"):
        os.environ["PLINTH_ONLINE_STORE_URL"] = f"redis://127.0.0.1:6379/{cfg['redis_db']}"
        reset_backend()
        plinth.features.list_feature_views()  # the platform starts here, as Feast builds its store before timing
        index_cache.clear()
        t = time.perf_counter()
        plinth.features.materialize(start, end)
        out["redis_materialize_s"] = time.perf_counter() - t
        _online(cfg, out, "redis")
    print(json.dumps(out))


def big(cfg: dict) -> None:
    """One call over the big entity frame, in its own process: time and peak memory."""
    import resource

    os.environ["PLINTH_HOME"] = cfg["home"]
    import pyarrow.parquet as pq

    import plinth

    entities = pq.read_table(cfg["big_entities"])
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    plinth.features.get_historical_features(entities, cfg["features"])  # builds the indexes too
    cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    plinth.features.get_historical_features(entities, cfg["features"])
    warm = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "big_rows": entities.num_rows,
                "big_cold_s": cold,
                "big_warm_s": warm,
                "big_peak_mb": peak / 1024,
                "big_before_mb": before / 1024,
            }
        )
    )


if __name__ == "__main__":
    config = json.loads(sys.argv[1])
    big(config) if len(sys.argv) > 2 and sys.argv[2] == "big" else main()
