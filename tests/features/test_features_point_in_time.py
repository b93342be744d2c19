"""Point-in-time correctness with hand-built frames whose every expected value is known:
Feast's documented semantics, boundaries included, over Parquet, Delta and datasets."""

from __future__ import annotations

import math
from datetime import UTC, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pytest
from features_support import CASES, T, entity_frame, setup_repo

from plinth.core.platform import Platform
from plinth.features.retrieval import create_training_set, get_historical_features


def _values(table: pa.Table, column: str) -> list[object]:
    return [None if isinstance(v, float) and math.isnan(v) else v for v in table.column(column).to_pylist()]


@pytest.fixture(params=["index", "duckdb"])
def engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both engines: the indexes' binary search, and DuckDB's ASOF JOIN over the same indexes."""
    from plinth.features import offline

    monkeypatch.setattr(offline, "FORCE_DUCKDB", request.param == "duckdb")
    return request.param  # type: ignore[no-any-return]


@pytest.mark.parametrize("kind", ["parquet", "delta", "dataset"])
def test_every_boundary_case_on_every_source_kind(platform: Platform, tmp_path: Path, kind: str, engine: str) -> None:
    setup_repo(platform, tmp_path, kind)
    out = platform.caller().call(
        get_historical_features,
        entity_df=entity_frame(),
        features=["driver_stats:conv_rate", "driver_stats:trips", "driver_daily:rating"],
    )
    assert out.num_rows == len(CASES)  # every entity row comes back, in the order given
    assert out.column_names == ["driver_id", "event_timestamp", "label", "conv_rate", "trips", "rating"]
    assert out.column("label").to_pylist() == list(range(len(CASES)))
    assert _values(out, "conv_rate") == [c[2] for c in CASES]
    assert _values(out, "trips") == [c[3] for c in CASES]
    assert _values(out, "rating") == [c[4] for c in CASES]
    assert out.schema.field("trips").type == pa.int64()
    assert out.schema.field("event_timestamp").type == pa.timestamp("us", tz="UTC")


def test_naive_timestamps_are_utc_and_other_zones_are_converted(
    platform: Platform, tmp_path: Path, engine: str
) -> None:
    setup_repo(platform, tmp_path)
    features = ["driver_stats:conv_rate", "driver_daily:rating"]
    utc = platform.caller().call(get_historical_features, entity_df=entity_frame(UTC), features=features)
    naive = platform.caller().call(get_historical_features, entity_df=entity_frame(None), features=features)
    paris = platform.caller().call(
        get_historical_features, entity_df=entity_frame(timezone(timedelta(hours=1))), features=features
    )
    assert _values(naive, "conv_rate") == _values(utc, "conv_rate") == _values(paris, "conv_rate")
    assert naive.column("event_timestamp").to_pylist() == utc.column("event_timestamp").to_pylist()
    assert paris.column("event_timestamp").to_pylist() == utc.column("event_timestamp").to_pylist()


def test_a_naive_source_is_utc(platform: Platform, tmp_path: Path) -> None:
    """A Parquet source with naive timestamps gives the same answers as the aware one."""
    import pyarrow.parquet as pq
    from features_support import definitions, driver_daily_rows, driver_stats_rows

    from plinth.features import service as svc

    def naive(table: pa.Table) -> pa.Table:
        for i, f in enumerate(table.schema):
            if pa.types.is_timestamp(f.type):
                table = table.set_column(i, f.name, table.column(i).cast(pa.timestamp("us")))
        return table

    for name, rows in (("stats", driver_stats_rows()), ("daily", driver_daily_rows())):
        (tmp_path / name).mkdir()
        pq.write_table(naive(rows), tmp_path / name / "p.parquet")
    defs = definitions(str(tmp_path / "stats"), str(tmp_path / "daily"))
    platform.caller().call(svc.apply, objects=[defs[k].to_spec() for k in ("driver", "stats", "daily")])
    out = platform.caller().call(
        get_historical_features, entity_df=entity_frame(), features=["driver_stats:trips", "driver_daily:rating"]
    )
    assert _values(out, "trips") == [c[3] for c in CASES]
    assert _values(out, "rating") == [c[4] for c in CASES]


def test_feature_service_full_names_and_an_arrow_entity_frame(platform: Platform, tmp_path: Path, engine: str) -> None:
    setup_repo(platform, tmp_path)
    entities = pa.table(
        {
            "driver_id": pa.array([1, 2], pa.int32()),  # keys cast to the source's int64
            "ts": pa.array([T(12), T(11, 30)], pa.timestamp("ns", tz="UTC")),
        }
    )
    out = platform.caller().call(
        get_historical_features,
        entity_df=entities,
        feature_service="driver_activity",
        full_feature_names=True,
        timestamp_column="ts",
    )
    assert out.column_names == ["driver_id", "ts", "driver_stats__conv_rate", "driver_daily__rating"]
    assert out.column("driver_stats__conv_rate").to_pylist() == [0.25, 0.60]
    assert out.column("driver_daily__rating").to_pylist() == [4.5, 3.0]


def test_a_composite_key_view(platform: Platform, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    from plinth.features import Entity, FeatureView, Field, Source
    from plinth.features import service as svc

    (tmp_path / "pairs").mkdir()
    ts = pa.timestamp("us", tz="UTC")
    pq.write_table(
        pa.table(
            {
                "driver_id": [1, 1, 2],
                "customer_id": ["a", "b", "a"],
                "event_timestamp": pa.array([T(1), T(2), T(3)], ts),
                "rides": [10, 20, 30],
            }
        ),
        tmp_path / "pairs" / "p.parquet",
    )
    driver, customer = (
        Entity(name="driver", join_keys=["driver_id"]),
        Entity(name="customer", join_keys=["customer_id"]),
    )
    view = FeatureView(
        name="pairs",
        entities=[driver, customer],
        schema=[Field(name="rides", dtype="int64")],
        source=Source(str(tmp_path / "pairs")),
    )
    platform.caller().call(svc.apply, objects=[driver.to_spec(), customer.to_spec(), view.to_spec()])
    entities = {
        "driver_id": [1, 1, 2, 2],
        "customer_id": ["a", "b", "b", "a"],
        "event_timestamp": pa.array([T(5), T(1), T(5), T(2)], ts),
    }
    out = platform.caller().call(get_historical_features, entity_df=entities, features=["pairs:rides"])
    assert out.column("rides").to_pylist() == [10, None, None, None]


def test_training_set_is_a_dataset_with_lineage_to_views_sources_and_run(platform: Platform, tmp_path: Path) -> None:
    from plinth.data import service as data
    from plinth.data.lineage_graph import lineage
    from plinth.tracking import service as tracking

    setup_repo(platform, tmp_path, "dataset")
    caller = platform.caller()
    run = caller.call(tracking.start_run, experiment="churn")
    info = caller.call(
        create_training_set,
        name="driver_training",
        entity_df=entity_frame(),
        feature_service="driver_activity",
        run_id=run.id,
    )
    assert info.dataset == "datasets:/driver_training/1" and info.rows == len(CASES)
    assert info.views == ["features:/driver_stats/1", "features:/driver_daily/1"]
    assert info.sources == ["datasets:/driver_stats_src/1", "datasets:/driver_daily_src/1"]
    _info, reader = caller.call(data.open_read, ref="datasets:/driver_training")
    stored = reader.read_all()
    assert _values(stored, "conv_rate") == [c[2] for c in CASES]
    graph = caller.call(lineage, ref="datasets:/driver_training/1", direction="both")
    edges = {(e.src, e.dst, e.kind) for e in graph.edges}
    assert ("features:/driver_stats/1", "datasets:/driver_training/1", "features") in edges
    assert ("datasets:/driver_stats_src/1", "features:/driver_stats/1", "source") in edges
    assert ("features:/driver_activity", "datasets:/driver_training/1", "features") in edges
    assert ("datasets:/driver_training/1", f"runs:/{run.id}", "input") in edges
    from plinth.data.lineage_graph import edges_of

    into_run = {e.src for e in caller.call(edges_of, node=f"runs:/{run.id}")}
    assert into_run == {"datasets:/driver_training/1", "features:/driver_activity"}  # what the registry reads
    from plinth.features.catalog import feature_detail

    usage = caller.call(feature_detail, ref="driver_stats:conv_rate").usage
    assert usage.training_sets == ["datasets:/driver_training/1"] and usage.runs == [f"runs:/{run.id}"]
    assert usage.services == ["driver_activity"]


@pytest.mark.parametrize("key_type", [int, str])
def test_random_frames_agree_with_a_brute_force_reference(
    platform: Platform, tmp_path: Path, engine: str, key_type: type
) -> None:
    """Coarse random times (many exact boundary hits and ties) against the definition itself."""
    import random
    from datetime import timedelta

    import pyarrow.parquet as pq

    from plinth.features import Entity, FeatureView, Field, Source
    from plinth.features import service as svc

    rng = random.Random(5)
    ttl = timedelta(hours=3)
    made = rng.sample(range(10_000), 400)  # distinct created times: the newest created is always one row
    rows = [(key_type(rng.randrange(8)), T(rng.randrange(24)), T(0, made[i]), float(i)) for i in range(400)]
    (tmp_path / "src").mkdir()
    ts = pa.timestamp("us", tz="UTC")
    pq.write_table(
        pa.table(
            {
                "k": [r[0] for r in rows],
                "event_timestamp": pa.array([r[1] for r in rows], ts),
                "created": pa.array([r[2] for r in rows], ts),
                "v": [r[3] for r in rows],
            }
        ),
        tmp_path / "src" / "p.parquet",
    )
    entity = Entity(name="thing", join_keys=["k"])
    view = FeatureView(
        name="things",
        entities=[entity],
        schema=[Field("v", "float64")],
        source=Source(str(tmp_path / "src"), created_field="created"),
        ttl=ttl,
    )
    platform.caller().call(svc.apply, objects=[entity.to_spec(), view.to_spec()])
    queries = [(key_type(rng.randrange(10)), T(rng.randrange(26))) for _ in range(500)]
    out = platform.caller().call(
        get_historical_features,
        entity_df={"k": [q[0] for q in queries], "event_timestamp": pa.array([q[1] for q in queries], ts)},
        features=["things:v"],
    )
    expected = []
    for k, when in queries:
        window = [r for r in rows if r[0] == k and when - ttl <= r[1] <= when]
        expected.append(max(window, key=lambda r: (r[1], r[2]))[3] if window else None)
    assert out.column("v").to_pylist() == expected


def test_coarse_source_times_with_entity_times_a_microsecond_either_side(
    platform: Platform, tmp_path: Path, engine: str
) -> None:
    """Source times on whole minutes pack by the minute; entity times off that grid still meet
    both boundaries exactly (event time <= entity time, event time >= entity time - ttl)."""
    import random

    import pyarrow.parquet as pq

    from plinth.features import Entity, FeatureView, Field, Source
    from plinth.features import service as svc

    rng = random.Random(11)
    ttl = timedelta(minutes=7)
    us = timedelta(microseconds=1)
    rows = [(rng.randrange(5), T(1, rng.randrange(60)), float(i)) for i in range(200)]
    rows = list({(k, t): (k, t, v) for k, t, v in rows}.values())  # one row per (key, time): no created here
    (tmp_path / "src").mkdir()
    ts = pa.timestamp("us", tz="UTC")
    pq.write_table(
        pa.table(
            {
                "k": [r[0] for r in rows],
                "event_timestamp": pa.array([r[1] for r in rows], ts),
                "v": [r[2] for r in rows],
            }
        ),
        tmp_path / "src" / "p.parquet",
    )
    entity = Entity(name="thing", join_keys=["k"])
    view = FeatureView(
        name="things", entities=[entity], schema=[Field("v", "float64")], source=Source(str(tmp_path / "src")), ttl=ttl
    )
    platform.caller().call(svc.apply, objects=[entity.to_spec(), view.to_spec()])
    queries = []
    for k, t, _v in rows[:60]:
        for when in (t, t - us, t + us, t + ttl, t + ttl + us, t + ttl - us, t + timedelta(seconds=30)):
            queries.append((k, when))
    queries += [(k, T(0, 59, 59.999999)) for k in range(5)] + [(k, T(3)) for k in range(6)]
    out = platform.caller().call(
        get_historical_features,
        entity_df={"k": [q[0] for q in queries], "event_timestamp": pa.array([q[1] for q in queries], ts)},
        features=["things:v"],
    )
    expected = []
    for k, when in queries:
        window = [r for r in rows if r[0] == k and when - ttl <= r[1] <= when]
        expected.append(max(window, key=lambda r: r[1])[2] if window else None)
    assert _values(out, "v") == expected
    assert expected.count(None) > 10 and len(expected) - expected.count(None) > 200  # both outcomes exercised


def test_microsecond_times_over_a_century_still_join_exactly(platform: Platform, tmp_path: Path, engine: str) -> None:
    """Keys times event times too wide to carry row numbers in one int64 (the sort falls back to
    a stable argsort): ties, created and boundaries still decided as defined."""
    import random
    from datetime import datetime

    import pyarrow.parquet as pq

    from plinth.features import Entity, FeatureView, Field, Source
    from plinth.features import service as svc

    rng = random.Random(3)
    base = datetime(1950, 1, 1, tzinfo=UTC)
    times = [base + timedelta(microseconds=rng.randrange(100 * 365 * 86400 * 10**6)) for _ in range(300)]
    keys = [0, 999, *range(10)]  # a range of 1,000 keys
    rows = [(rng.choice(keys), rng.choice(times), base + timedelta(seconds=rng.randrange(5)), i) for i in range(2000)]
    (tmp_path / "src").mkdir()
    ts = pa.timestamp("us", tz="UTC")
    pq.write_table(
        pa.table(
            {
                "k": [r[0] for r in rows],
                "event_timestamp": pa.array([r[1] for r in rows], ts),
                "created": pa.array([r[2] for r in rows], ts),
                "v": [r[3] for r in rows],
            }
        ),
        tmp_path / "src" / "p.parquet",
    )
    ttl = timedelta(days=3000)
    entity = Entity(name="thing", join_keys=["k"])
    view = FeatureView(
        name="things",
        entities=[entity],
        schema=[Field("v", "int64")],
        source=Source(str(tmp_path / "src"), created_field="created"),
        ttl=ttl,
    )
    platform.caller().call(svc.apply, objects=[entity.to_spec(), view.to_spec()])
    us = timedelta(microseconds=1)
    queries = [(r[0], r[1] + rng.choice([-us, 0 * us, us, ttl, ttl + us])) for r in rows[:400]]
    out = platform.caller().call(
        get_historical_features,
        entity_df={"k": [q[0] for q in queries], "event_timestamp": pa.array([q[1] for q in queries], ts)},
        features=["things:v"],
    )
    expected = []
    for k, when in queries:
        window = [r for r in rows if r[0] == k and when - ttl <= r[1] <= when]
        best = None
        for r in window:  # newest (ts, created), the first as read among equals
            if best is None or (r[1], r[2]) > (best[1], best[2]):
                best = r
        expected.append(None if best is None else best[3])
    assert out.column("v").to_pylist() == expected
