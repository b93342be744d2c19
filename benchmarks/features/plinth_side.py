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
    from plinth.client.backend import current_backend, reset_backend
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
    plinth.features.list_feature_views()  # the platform starts here, as Feast builds its store before timing
    from plinth.features.index import index_cache
    from plinth.features.index_files import drop_indexes, index_root

    root = index_root(current_backend().platform.settings)  # type: ignore[attr-defined]
    t = time.perf_counter()
    plinth.features.apply([driver, hourly, daily])  # builds each view's index and keeps it on disk
    out["apply_s"] = time.perf_counter() - t
    out["index_build_s"] = sum(index.built_seconds for index in index_cache.indexes())
    entities = pq.read_table(cfg["entities"])
    t = time.perf_counter()
    result = plinth.features.get_historical_features(entities, cfg["features"])
    out["historical_cold_s"] = time.perf_counter() - t  # first call of this process: the indexes apply built
    out.update(_run_self(cfg, "fresh"))  # first call of a fresh process: the indexes read from disk
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
    index_cache.clear()  # as a fresh process: the indexes apply kept on disk, none in memory
    t = time.perf_counter()
    plinth.features.materialize(start, end)
    out["sqlite_materialize_s"] = time.perf_counter() - t
    index_cache.clear()
    drop_indexes(root)  # no index anywhere: straight from the sources
    t = time.perf_counter()
    plinth.features.materialize(start, end)
    out["sqlite_materialize_unindexed_s"] = time.perf_counter() - t
    index_cache.clear()  # a first call with no index anywhere: it builds them (and keeps them on disk)
    t = time.perf_counter()
    plinth.features.get_historical_features(entities, cfg["features"])
    out["historical_unindexed_s"] = time.perf_counter() - t
    _online(cfg, out, "sqlite")
    _http(cfg, out)
    if cfg.get("redis"):
        import redis

        os.environ["PLINTH_ONLINE_STORE_URL"] = f"redis://127.0.0.1:6379/{cfg['redis_db']}"
        reset_backend()
        plinth.features.list_feature_views()  # the platform starts here, as Feast builds its store before timing
        index_cache.clear()  # the indexes on disk, none in memory
        t = time.perf_counter()
        plinth.features.materialize(start, end)
        out["redis_materialize_s"] = time.perf_counter() - t
        redis.Redis(db=cfg["redis_db"]).flushdb()
        index_cache.clear()
        drop_indexes(root)  # no index anywhere
        t = time.perf_counter()
        plinth.features.materialize(start, end)
        out["redis_materialize_unindexed_s"] = time.perf_counter() - t
        _online(cfg, out, "redis")
    print(json.dumps(out))


def _run_self(cfg: dict, mode: str) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, json.dumps(cfg), mode], capture_output=True, text=True, check=False, timeout=600
    )
    if done.returncode != 0:
        raise RuntimeError(f"plinth_side.py {mode} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def fresh(cfg: dict) -> None:
    """The first retrieval of a process that did not apply: the indexes come from disk."""
    os.environ["PLINTH_HOME"] = cfg["home"]
    import pyarrow.parquet as pq

    import plinth

    entities = pq.read_table(cfg["entities"])
    plinth.features.list_feature_views()  # the platform starts here, as in the main process
    t = time.perf_counter()
    plinth.features.get_historical_features(entities, cfg["features"])
    print(json.dumps({"historical_fresh_s": time.perf_counter() - t}))


def big(cfg: dict, no_index: bool = False) -> None:
    """One call over the big entity frame, in its own process: time and peak memory. With
    ``no_index`` every index is dropped first (the call builds them); otherwise they are on disk."""
    import resource

    os.environ["PLINTH_HOME"] = cfg["home"]
    import pyarrow.parquet as pq

    import plinth
    from plinth.client.backend import current_backend
    from plinth.features.index_files import drop_indexes, index_root

    entities = pq.read_table(cfg["big_entities"])
    plinth.features.list_feature_views()  # the platform starts here, as in the main process
    if no_index:
        drop_indexes(index_root(current_backend().platform.settings))  # type: ignore[attr-defined]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    plinth.features.get_historical_features(entities, cfg["features"])
    cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    plinth.features.get_historical_features(entities, cfg["features"])
    warm = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    p = "big_no_index" if no_index else "big"
    figures = {"rows": entities.num_rows, "cold_s": cold, "warm_s": warm, "peak_mb": peak / 1024}
    print(json.dumps({f"{p}_{k}": v for k, v in {**figures, "before_mb": before / 1024}.items()}))


if __name__ == "__main__":
    config = json.loads(sys.argv[1])
    mode = sys.argv[2] if len(sys.argv) > 2 else "main"
    modes = {"big": big, "big-no-index": lambda c: big(c, no_index=True), "fresh": fresh}
    modes.get(mode, lambda _cfg: main())(config)
