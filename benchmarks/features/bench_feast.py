"""Features: side by side with Feast 0.67 (its own venv), on the same generated data.

The issue's workload at ``PLINTH_BENCH_FEATURES_SCALE=1``: 10,000 drivers, a 1,000,000-row
and a 500,000-row feature view (ttl 2 days, 5 % of rows repeat an event time with another
``created``), 100,000 entity rows (10 % of them drivers without data, some before all
data) and a 1,000,000-row frame for Plinth alone. The default scale 0.1 divides every
count by ten so that the run takes a few minutes on 2 cores.

Each side runs in its own fresh process (``feast_side.py`` with the anchor's interpreter,
``plinth_side.py`` with the project's): Feast's local provider (file offline store,
SQLite online store, then Redis), Plinth embedded (Parquet sources, SQLite online store,
then Redis). Correctness: both historical results are compared with an independent
reference (pandas ``merge_asof`` per view, ties on event time to the newest ``created``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
WORK = HERE.parent / ".work" / "features"
SCALE = float(os.environ.get("PLINTH_BENCH_FEATURES_SCALE", "0.1"))
TTL_SECONDS = 2 * 86400
SPAN_DAYS = 30
FEATURES = [
    "driver_hourly:conv_rate",
    "driver_hourly:acc_rate",
    "driver_hourly:avg_daily_trips",
    "driver_daily:rating",
    "driver_daily:trips_today",
]
REDIS_DB = 7


def generate(
    work: Path, drivers: int, hourly: int, daily: int, entities: int, big: int, seed: int = 0
) -> dict[str, Any]:
    """The same Parquet files for both sides; timestamps end now, so online values are fresh."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    end = (int(time.time()) // 3600) * 3600 * 1_000_000
    span = SPAN_DAYS * 86400 * 1_000_000
    start = end - span
    ts_type = pa.timestamp("us", tz="UTC")

    def view(n: int, cols: list[tuple[str, str]]) -> pa.Table:
        key = rng.integers(0, drivers, n)
        ts = start + rng.integers(0, span // 1_000_000, n) * 1_000_000
        dup = rng.random(n) < 0.05  # repeat an earlier row's (driver, event time), another created
        idx = rng.integers(0, n, n)
        key, ts = np.where(dup, key[idx], key), np.where(dup, ts[idx], ts)
        created = ts + rng.integers(0, 3600 * 1_000_000, n)
        table = {"driver_id": key, "event_timestamp": pa.array(ts, ts_type), "created": pa.array(created, ts_type)}
        for name, kind in cols:
            table[name] = np.round(rng.random(n), 6) if kind == "f" else rng.integers(0, 100, n)
        return pa.table(table)

    def frame(n: int) -> pa.Table:
        key = rng.integers(0, int(drivers * 1.1), n)
        ts = start - 86400 * 1_000_000 + rng.integers(0, (span + 86400 * 1_000_000) // 1_000_000, n) * 1_000_000
        return pa.table({"row_id": np.arange(n), "driver_id": key, "event_timestamp": pa.array(ts, ts_type)})

    work.mkdir(parents=True, exist_ok=True)
    paths = {name: str(work / f"{name}.parquet") for name in ("hourly", "daily", "entities", "big_entities")}
    pq.write_table(view(hourly, [("conv_rate", "f"), ("acc_rate", "f"), ("avg_daily_trips", "i")]), paths["hourly"])
    pq.write_table(view(daily, [("rating", "f"), ("trips_today", "i")]), paths["daily"])
    pq.write_table(frame(entities), paths["entities"])
    pq.write_table(frame(big), paths["big_entities"])
    paths["start"] = str(np.datetime64(start - 86400 * 1_000_000, "us")) + "+00:00"
    paths["end"] = str(np.datetime64(end + 3600 * 1_000_000, "us")) + "+00:00"
    return paths


def reference(paths: dict[str, Any]) -> Any:
    """Feast's documented semantics, computed independently with pandas ``merge_asof``."""
    import pandas as pd

    entities = pd.read_parquet(paths["entities"])
    entities["event_timestamp"] = entities["event_timestamp"].astype("datetime64[us, UTC]")
    out = entities.sort_values("event_timestamp")
    for name, cols in (("hourly", ["conv_rate", "acc_rate", "avg_daily_trips"]), ("daily", ["rating", "trips_today"])):
        src = pd.read_parquet(paths[name]).sort_values(["event_timestamp", "created"], kind="stable")
        src = src.rename(columns={"event_timestamp": "feature_ts"})
        src["feature_ts"] = src["feature_ts"].astype("datetime64[us, UTC]")
        out = pd.merge_asof(
            out,
            src[["driver_id", "feature_ts", *cols]],
            left_on="event_timestamp",
            right_on="feature_ts",
            by="driver_id",
            direction="backward",
            allow_exact_matches=True,
            tolerance=pd.Timedelta(seconds=TTL_SECONDS),
        ).drop(columns=["feature_ts"])
    return out.set_index("row_id").sort_index()


def compare(result: Any, ref: Any) -> dict[str, int]:
    """Rows missing from ``result`` and rows whose values differ from the reference."""
    import numpy as np

    result = result.set_index("row_id")
    missing = int(len(ref.index.difference(result.index)))
    common = ref.index.intersection(result.index)
    wrong = np.zeros(len(common), dtype=bool)
    for feature in FEATURES:
        col = feature.split(":")[1]
        a = ref.loc[common, col].to_numpy(dtype=float)
        b = result.loc[common, col].to_numpy(dtype=float)
        wrong |= ~((a == b) | (np.isnan(a) & np.isnan(b)))
    return {"missing_rows": missing, "wrong_rows": int(wrong.sum()), "compared_rows": int(len(common))}


def _redis_up() -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            return True
    except OSError:
        return False


def _run(python: str | Path, script: Path, cfg: dict[str, Any], *extra: str, timeout: float = 3600) -> dict[str, Any]:
    out = subprocess.run(
        [str(python), str(script), json.dumps(cfg), *extra],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=HERE.parent.parent,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("PLINTH_")}, "PYTHONWARNINGS": "ignore"},
    )
    if out.returncode != 0:
        raise RuntimeError(f"{script.name} failed:\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def run(emit: Any) -> None:
    import pandas as pd
    import redis

    from benchmarks.anchors import anchor_python

    drivers, hourly, daily = int(10_000 * SCALE), int(1_000_000 * SCALE), int(500_000 * SCALE)
    entities, big = int(100_000 * SCALE), int(1_000_000 * SCALE)
    shutil.rmtree(WORK, ignore_errors=True)
    paths = generate(WORK, drivers, hourly, daily, entities, big)
    use_redis = _redis_up()
    if use_redis:
        redis.Redis(db=REDIS_DB).flushdb()
    cfg = {
        **paths,
        "work": str(WORK),
        "home": str(WORK / "plinth-home"),
        "features": FEATURES,
        "drivers": drivers,
        "ttl_seconds": TTL_SECONDS,
        "online_calls": 2000,
        "online_calls_100": 300,
        "redis": use_redis,
        "redis_db": REDIS_DB,
    }
    feast = _run(anchor_python("feast"), HERE / "feast_side.py", cfg)
    if use_redis:
        redis.Redis(db=REDIS_DB).flushdb()
    plinth = _run(sys.executable, HERE / "plinth_side.py", cfg)
    plinth.update(_run(sys.executable, HERE / "plinth_side.py", cfg, "big-no-index"))  # builds, keeps on disk
    plinth.update(_run(sys.executable, HERE / "plinth_side.py", cfg, "big"))
    ref = reference(paths)
    feast_check = compare(pd.read_parquet(WORK / "feast_historical.parquet"), ref)
    plinth_check = compare(pd.read_parquet(WORK / "plinth_historical.parquet"), ref)
    scale = {"scale": SCALE, "drivers": drivers, "hourly_rows": hourly, "daily_rows": daily, "entity_rows": entities}
    emit(
        workload="apply (Plinth builds and keeps each view's index; Feast's apply is not timed)",
        plinth_apply_s=round(plinth["apply_s"], 3),
        plinth_index_build_s=round(plinth["index_build_s"], 3),
    )
    feast_h = feast["historical_s"]
    emit(
        workload="get_historical_features",
        **scale,
        feast_s=round(feast_h, 3),
        plinth_first_call_fresh_process_s=round(plinth["historical_fresh_s"], 3),
        plinth_first_call_after_apply_s=round(plinth["historical_cold_s"], 3),
        plinth_first_call_no_index_s=round(plinth["historical_unindexed_s"], 3),
        plinth_warm_s=round(plinth["historical_warm_s"], 3),
        plinth_duckdb_asof_warm_s=round(plinth["historical_duckdb_s"], 3),
        ratio_first_call_fresh_process=round(feast_h / plinth["historical_fresh_s"], 1),
        ratio_first_call_after_apply=round(feast_h / plinth["historical_cold_s"], 1),
        ratio_first_call_no_index=round(feast_h / plinth["historical_unindexed_s"], 1),
        ratio_warm=round(feast_h / plinth["historical_warm_s"], 1),
        feast_version=feast["feast"],
    )
    emit(
        workload="historical correctness vs reference",
        entity_rows=entities,
        feast_rows_returned=feast["historical_rows"],
        feast_missing_rows=feast_check["missing_rows"],
        feast_wrong_rows=feast_check["wrong_rows"],
        plinth_rows_returned=plinth["historical_rows"],
        plinth_missing_rows=plinth_check["missing_rows"],
        plinth_wrong_rows=plinth_check["wrong_rows"],
    )
    for p, what in (("big", "indexes on disk"), ("big_no_index", "no index: the call builds them")):
        emit(
            workload=f"get_historical_features, big frame (Plinth alone, fresh process, {what})",
            rows=plinth[f"{p}_rows"],
            plinth_first_call_s=round(plinth[f"{p}_cold_s"], 3),
            plinth_second_call_s=round(plinth[f"{p}_warm_s"], 3),
            peak_rss_mb=round(plinth[f"{p}_peak_mb"]),
            rss_before_mb=round(plinth[f"{p}_before_mb"]),
        )
    for store in ("sqlite", "redis") if use_redis else ("sqlite",):
        feast_m = feast[f"{store}_materialize_s"]
        emit(
            workload=f"materialize full range ({store})",
            feast_s=round(feast_m, 3),
            plinth_indexes_on_disk_s=round(plinth[f"{store}_materialize_s"], 3),
            plinth_no_index_s=round(plinth[f"{store}_materialize_unindexed_s"], 3),
            ratio_indexes_on_disk=round(feast_m / plinth[f"{store}_materialize_s"], 1),
            ratio_no_index=round(feast_m / plinth[f"{store}_materialize_unindexed_s"], 1),
        )
        for n in ("1", "100"):
            emit(
                workload=f"get_online_features in-process, {n} x 5 features ({store})",
                feast_p50_ms=round(feast[f"{store}_online{n}_p50_ms"], 3),
                feast_p99_ms=round(feast[f"{store}_online{n}_p99_ms"], 3),
                plinth_p50_ms=round(plinth[f"{store}_online{n}_p50_ms"], 3),
                plinth_p99_ms=round(plinth[f"{store}_online{n}_p99_ms"], 3),
                ratio_p99=round(feast[f"{store}_online{n}_p99_ms"] / plinth[f"{store}_online{n}_p99_ms"], 1),
                plinth_present_share=plinth[f"{store}_online_present_share"],
            )
    emit(
        workload="feature server over HTTP, 1 entity x 5 features (Plinth, SQLite, keep-alive client)",
        plinth_p50_ms=round(plinth["http_online1_p50_ms"], 3),
        plinth_p99_ms=round(plinth["http_online1_p99_ms"], 3),
    )
