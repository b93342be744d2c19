"""Online lookups of every dtype, on SQLite and on Redis: values equal the offline engine's at the
same moment; present, expired and unknown entities mixed in one call; a feature the stored
row predates is ``not_found``; event times convert exactly."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from features_support import T

from plinth.core.platform import Platform
from plinth.features import Entity, FeatureView, Field, Source
from plinth.features import service as svc
from plinth.features.online import EPOCH, from_us, get_online_features, materialize
from plinth.features.retrieval import get_historical_features
from tests_support import need, port_open

TS = pa.timestamp("us", tz="UTC")
FIELDS = [
    Field("score", "float64"),
    Field("count", "int64"),
    Field("label", "string"),
    Field("flag", "bool"),
    Field("seen_at", "timestamp"),
    Field("blob", "bytes"),
]
REFS = [f"every_type:{f.name}" for f in FIELDS]


def _source(tmp_path: Path) -> str:
    rows = {
        "driver_id": pa.array([1, 1, 2, 4], pa.int64()),
        "event_timestamp": pa.array([T(10), T(15), T(9), T(14)], TS),
        "score": pa.array([0.5, 1.25, 2.0, None]),
        "count": pa.array([1, 2, 3, None], pa.int64()),
        "label": pa.array(["a", 'quote " and \\ é', "c", None]),
        "flag": pa.array([True, False, True, None]),
        "seen_at": pa.array([T(1), T(2, 0, 0.000001), T(3), None], TS),
        "blob": pa.array([b"\x00a", b"\xff\x00", b"", None], pa.binary()),
        "extra": pa.array([10, 20, 30, 40], pa.int64()),
    }
    path = tmp_path / "every_type"
    path.mkdir()
    pq.write_table(pa.table(rows), path / "part-0.parquet")
    return str(path)


def _apply(platform: Platform, uri: str, fields: list[Field]) -> None:
    driver = Entity(name="driver", join_keys=["driver_id"])
    view = FeatureView(name="every_type", entities=[driver], schema=fields, source=Source(uri), ttl=timedelta(hours=3))
    platform.caller().call(svc.apply, objects=[driver.to_spec(), view.to_spec()])


def _plain(values: list[object]) -> list[object]:
    return [None if isinstance(v, float) and math.isnan(v) else v for v in values]


def test_every_dtype_online_equals_offline_with_mixed_statuses(online_platform: Platform, tmp_path: Path) -> None:
    _apply(online_platform, _source(tmp_path), FIELDS)
    caller = online_platform.caller()
    caller.call(materialize, start=None, end=T(23))
    online_platform.clock_state["now"] = T(16)  # type: ignore[attr-defined]
    keys = [1, 2, 3, 4, 1]  # fresh, expired (9:00 + 3 h < 16:00), unknown, fresh with nulls, fresh again
    got = caller.call(get_online_features, entity_rows=[{"driver_id": k} for k in keys], features=REFS)
    offline = caller.call(
        get_historical_features,
        entity_df=pd.DataFrame({"driver_id": keys, "event_timestamp": [T(16)] * len(keys)}),
        features=REFS,
    )
    for f in FIELDS:
        assert got.features[f.name] == _plain(offline.column(f.name).to_pylist()), f.name
    assert got.features["label"] == ['quote " and \\ é', None, None, None, 'quote " and \\ é']
    assert got.features["seen_at"] == [T(2, 0, 0.000001), None, None, None, T(2, 0, 0.000001)]
    assert got.features["blob"] == [b"\xff\x00", None, None, None, b"\xff\x00"]
    assert got.statuses["score"] == ["present", "expired", "not_found", "present", "present"]
    assert got.event_timestamps["every_type"] == [T(15), T(9), None, T(14), T(15)]
    every = caller.call(get_online_features, entity_rows={"driver_id": [1, 1]}, features=REFS)  # all fresh
    assert every.features["flag"] == [False, False] and every.statuses["blob"] == ["present", "present"]
    one = caller.call(get_online_features, entity_rows=[{"driver_id": 2}], features=REFS)
    assert one.features["score"] == [None] and one.statuses["score"] == ["expired"]


def test_a_feature_added_after_materialize_is_not_found_until_the_next(
    online_platform: Platform, tmp_path: Path
) -> None:
    uri = _source(tmp_path)
    _apply(online_platform, uri, FIELDS[:2])
    caller = online_platform.caller()
    caller.call(materialize, start=None, end=T(23))
    online_platform.clock_state["now"] = T(16)  # type: ignore[attr-defined]
    _apply(online_platform, uri, [*FIELDS[:2], Field("extra", "int64")])  # the stored rows predate it
    refs = ["every_type:score", "every_type:extra"]
    got = caller.call(get_online_features, entity_rows={"driver_id": [1, 1]}, features=refs)
    assert got.features == {"score": [1.25, 1.25], "extra": [None, None]}
    assert got.statuses == {"score": ["present", "present"], "extra": ["not_found", "not_found"]}
    caller.call(materialize, start=None, end=T(23))
    got = caller.call(get_online_features, entity_rows={"driver_id": [1, 4]}, features=refs)
    assert got.features == {"score": [1.25, None], "extra": [20, 40]}
    assert got.statuses == {"score": ["present", "present"], "extra": ["present", "present"]}


def test_event_times_convert_exactly() -> None:
    rng = random.Random(7)
    samples = [0, 1, 999_999, 1_000_000, 4_000_000_000_000_000 - 1, 4_000_000_000_000_000, -1, -1_000_001]
    samples += [rng.randrange(0, 4_000_000_000_000_000) for _ in range(20_000)]
    samples += [rng.randrange(-(10**15), 10**16) for _ in range(2_000)]
    for us in samples:
        assert from_us(us) == EPOCH + timedelta(microseconds=us), us
    assert from_us(1_764_000_000_000_001).tzinfo is UTC
    assert from_us(1_764_000_000_000_001) == datetime(2025, 11, 24, 16, 0, 0, 1, tzinfo=UTC)


def test_materialize_gives_the_same_lookups_on_sqlite_and_redis(tmp_path: Path) -> None:
    from plinth.core.settings import load_settings
    from plinth.features.online_store import close_online_stores

    need(port_open(6379), "Redis on 127.0.0.1:6379")
    uri = _source(tmp_path)
    answers, writes = [], []
    for store in (f"sqlite:///{tmp_path / 'online.db'}", "redis://127.0.0.1:6379/0"):
        p = Platform(load_settings(home=tmp_path / store.split(":")[0], online_store_url=store), clock=lambda: T(16))
        p.start()
        try:
            _apply(p, uri, FIELDS)
            result = p.caller().call(materialize, start=None, end=T(23))
            writes.append([(w.view, w.rows_read, w.entities_written, w.max_event_ts) for w in result.writes])
            rows = {"driver_id": [1, 2, 3, 4]}
            answers.append(p.caller().call(get_online_features, entity_rows=rows, features=REFS).model_dump())
        finally:
            close_online_stores()
            p.close()
    assert writes[0] == writes[1] == [("every_type", 4, 3, T(15))]
    assert answers[0] == answers[1]
    assert answers[0]["features"]["count"] == [2, None, None, None]
