"""Helpers of the feature store tests: tiny hand-built sources whose every expected value is known."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from plinth.core.platform import Platform
from plinth.features import Entity, FeatureService, FeatureView, Field, Source

DAY = datetime(2026, 3, 1, tzinfo=UTC)
US = timedelta(microseconds=1)


def T(hour: float, minute: float = 0, second: float = 0) -> datetime:
    """A time on the test day (UTC)."""
    return DAY + timedelta(hours=hour, minutes=minute, seconds=second)


def driver_stats_rows() -> pa.Table:
    """Two drivers; a tie on event time at 12:00 decided by ``created`` (12:30 wins)."""
    rows = [
        (1, T(10), T(10), 0.10, 1),
        (1, T(12), T(12), 0.20, 2),
        (1, T(12), T(12, 30), 0.25, 3),
        (1, T(12), T(12, 10), 0.22, 9),
        (1, T(15), T(15), 0.30, 4),
        (2, T(9), T(9), 0.50, 5),
        (2, T(11), T(11), 0.60, 6),
    ]
    ts = pa.timestamp("us", tz="UTC")
    return pa.table(
        {
            "driver_id": pa.array([r[0] for r in rows], pa.int64()),
            "event_timestamp": pa.array([r[1] for r in rows], ts),
            "created": pa.array([r[2] for r in rows], ts),
            "conv_rate": pa.array([r[3] for r in rows], pa.float64()),
            "trips": pa.array([r[4] for r in rows], pa.int64()),
        }
    )


def driver_daily_rows() -> pa.Table:
    ts = pa.timestamp("us", tz="UTC")
    return pa.table(
        {
            "driver_id": pa.array([1, 1, 2], pa.int64()),
            "day": pa.array([T(8), T(13), T(0)], ts),
            "rating": pa.array([4.5, 4.0, 3.0]),
        }
    )


# (driver_id, entity timestamp, expected conv_rate, expected trips, expected rating)
CASES: list[tuple[int, datetime, float | None, int | None, float | None]] = [
    (1, T(10), 0.10, 1, 4.5),  # event exactly at the entity timestamp: inside
    (1, T(10) - US, None, None, 4.5),  # before all of driver 1's stats
    (1, T(12), 0.25, 3, 4.5),  # three rows at 12:00: the newest created wins
    (1, T(14), 0.25, 3, 4.0),  # exactly ttl (2 h) old: inside
    (1, T(14) + US, None, None, 4.0),  # one microsecond beyond the ttl: null
    (1, T(16), 0.30, 4, 4.0),
    (2, T(10, 59), 0.50, 5, 3.0),
    (2, T(11, 30), 0.60, 6, 3.0),
    (3, T(12), None, None, None),  # an entity with no rows at all
    (2, T(8), None, None, 3.0),  # before all of driver 2's stats
    (1, T(12), 0.25, 3, 4.5),  # the same entity row twice: both come back
    (2, T(13), 0.60, 6, 3.0),  # exactly ttl again, other driver
]


def entity_frame(tz: Any = UTC) -> Any:
    import pandas as pd

    stamps = [c[1] for c in CASES]
    if tz is None:
        stamps = [s.replace(tzinfo=None) for s in stamps]
    elif tz is not UTC:
        stamps = [s.astimezone(tz) for s in stamps]
    return pd.DataFrame(
        {"driver_id": [c[0] for c in CASES], "event_timestamp": stamps, "label": list(range(len(CASES)))}
    )


def write_source(kind: str, table: pa.Table, folder: Path, platform: Platform, name: str) -> str:
    """The table as a Parquet folder, a Delta table or a dataset; returns the source uri."""
    if kind == "parquet":
        path = folder / name
        path.mkdir(parents=True)
        pq.write_table(table, path / "part-0.parquet")
        return str(path)
    if kind == "delta":
        from deltalake import write_deltalake

        path = folder / f"{name}_delta"
        write_deltalake(str(path), table)
        return str(path)
    from plinth.data.ingestion import ingest

    platform.caller().call(ingest, name=name, source=table)
    return f"datasets:/{name}"


def definitions(stats_uri: str, daily_uri: str) -> dict[str, Any]:
    driver = Entity(name="driver", join_keys=["driver_id"], description="a driver")
    stats = FeatureView(
        name="driver_stats",
        entities=[driver],
        schema=[
            Field(name="conv_rate", dtype="float64", description="conversion rate", tags={"pii": "no"}),
            Field(name="trips", dtype="int64"),
        ],
        source=Source(stats_uri, timestamp_field="event_timestamp", created_field="created"),
        ttl=timedelta(hours=2),
        owner="risk-team",
        description="hourly driver statistics",
        tags={"team": "risk"},
    )
    daily = FeatureView(
        name="driver_daily",
        entities=[driver],
        schema=[Field(name="rating", dtype="float64")],
        source=Source(daily_uri, timestamp_field="day"),
        ttl=None,
    )
    service = FeatureService(name="driver_activity", features=[stats[["conv_rate"]], daily])
    return {"driver": driver, "stats": stats, "daily": daily, "service": service}


def setup_repo(platform: Platform, tmp_path: Path, kind: str = "parquet") -> dict[str, Any]:
    from plinth.features import service as svc

    stats_uri = write_source(kind, driver_stats_rows(), tmp_path, platform, "driver_stats_src")
    daily_uri = write_source(kind, driver_daily_rows(), tmp_path, platform, "driver_daily_src")
    defs = definitions(stats_uri, daily_uri)
    specs = [defs[k].to_spec() for k in ("driver", "stats", "daily", "service")]
    platform.caller().call(svc.apply, objects=specs)
    return {**defs, "stats_uri": stats_uri, "daily_uri": daily_uri}
