"""The Feast side of ``bench_feast``: run with the anchor's interpreter (``benchmarks/.envs/feast``).

    python feast_side.py CONFIG_JSON

Local provider: file offline store over the same Parquet files, SQLite online store, then
the Redis online store. Prints one JSON object with the timings; writes the historical
result to ``<work>/feast_historical.parquet`` for the correctness comparison.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import warnings
from datetime import timedelta

warnings.filterwarnings("ignore")
os.environ.setdefault("FEAST_USAGE", "False")


def _p(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def _store(cfg: dict, online: str):  # type: ignore[no-untyped-def]
    from feast import Entity, FeatureStore, FeatureView, Field, FileSource
    from feast.types import Float64, Int64

    repo = tempfile.mkdtemp(prefix=f"feast-{online}-", dir=cfg["work"])
    store_cfg = (
        f"  type: sqlite\n  path: {repo}/online.db\n"
        if online == "sqlite"
        else f'  type: redis\n  connection_string: "127.0.0.1:6379,db={cfg["redis_db"]}"\n'
    )
    with open(f"{repo}/feature_store.yaml", "w") as fh:
        fh.write(
            f"project: bench\nregistry: {repo}/registry.db\nprovider: local\nonline_store:\n{store_cfg}"
            "offline_store:\n  type: file\nentity_key_serialization_version: 3\n"
        )
    driver = Entity(name="driver", join_keys=["driver_id"])
    ttl = timedelta(seconds=cfg["ttl_seconds"])

    def view(name: str, path: str, cols: list[tuple[str, object]]):  # type: ignore[no-untyped-def]
        return FeatureView(
            name=name,
            entities=[driver],
            ttl=ttl,
            schema=[Field(name="driver_id", dtype=Int64)] + [Field(name=c, dtype=t) for c, t in cols],
            source=FileSource(path=path, timestamp_field="event_timestamp", created_timestamp_column="created"),
            online=True,
        )

    hourly = view(
        "driver_hourly", cfg["hourly"], [("conv_rate", Float64), ("acc_rate", Float64), ("avg_daily_trips", Int64)]
    )
    daily = view("driver_daily", cfg["daily"], [("rating", Float64), ("trips_today", Int64)])
    store = FeatureStore(repo_path=repo)
    store.apply([driver, hourly, daily])
    return store


def _online(store, cfg: dict, out: dict, prefix: str) -> None:  # type: ignore[no-untyped-def]
    import random

    features = cfg["features"]
    rng = random.Random(1)
    drivers = cfg["drivers"]
    for _ in range(50):
        store.get_online_features(features=features, entity_rows=[{"driver_id": rng.randrange(drivers)}])
    one = []
    for _ in range(cfg["online_calls"]):
        rows = [{"driver_id": rng.randrange(drivers)}]
        t = time.perf_counter()
        store.get_online_features(features=features, entity_rows=rows).to_dict()
        one.append(time.perf_counter() - t)
    hundred = []
    for _ in range(cfg["online_calls_100"]):
        rows = [{"driver_id": rng.randrange(drivers)} for _ in range(100)]
        t = time.perf_counter()
        store.get_online_features(features=features, entity_rows=rows).to_dict()
        hundred.append(time.perf_counter() - t)
    out[f"{prefix}_online1_p50_ms"] = _p(one, 50) * 1e3
    out[f"{prefix}_online1_p99_ms"] = _p(one, 99) * 1e3
    out[f"{prefix}_online100_p50_ms"] = _p(hundred, 50) * 1e3
    out[f"{prefix}_online100_p99_ms"] = _p(hundred, 99) * 1e3


def main() -> None:
    import feast
    import pandas as pd

    cfg = json.loads(sys.argv[1])
    out: dict = {"feast": feast.__version__}
    store = _store(cfg, "sqlite")
    entities = pd.read_parquet(cfg["entities"])
    t = time.perf_counter()
    result = store.get_historical_features(entity_df=entities, features=cfg["features"]).to_df()
    out["historical_s"] = time.perf_counter() - t
    out["historical_rows"] = len(result)
    result.to_parquet(os.path.join(cfg["work"], "feast_historical.parquet"))
    start, end = pd.Timestamp(cfg["start"]), pd.Timestamp(cfg["end"])
    t = time.perf_counter()
    store.materialize(start.to_pydatetime(), end.to_pydatetime())
    out["sqlite_materialize_s"] = time.perf_counter() - t
    _online(store, cfg, out, "sqlite")
    if cfg.get("redis"):
        store = _store(cfg, "redis")
        t = time.perf_counter()
        store.materialize(start.to_pydatetime(), end.to_pydatetime())
        out["redis_materialize_s"] = time.perf_counter() - t
        _online(store, cfg, out, "redis")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
