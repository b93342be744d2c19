"""Materialize, online lookups, push — on SQLite and on Redis; offline == online."""

from __future__ import annotations

import math
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from features_support import T, setup_repo

from plinth.core.errors import InvalidInput
from plinth.core.platform import Platform
from plinth.features.online import get_online_features, materialize, materialize_incremental, push
from plinth.features.retrieval import get_historical_features

FEATURES = ["driver_stats:conv_rate", "driver_stats:trips", "driver_daily:rating"]


def _at(platform: Platform, moment) -> None:  # type: ignore[no-untyped-def]
    platform.clock_state["now"] = moment  # type: ignore[attr-defined]


def test_materialize_then_lookup_with_event_times_and_expiry(online_platform: Platform, tmp_path: Path) -> None:
    setup_repo(online_platform, tmp_path)
    caller = online_platform.caller()
    result = caller.call(materialize, start=T(0), end=T(23))
    by_view = {w.view: w for w in result.writes}
    assert by_view["driver_stats"].rows_read == 5 and by_view["driver_stats"].entities_written == 2
    assert by_view["driver_stats"].max_event_ts == T(15)
    _at(online_platform, T(16))
    got = caller.call(
        get_online_features, entity_rows=[{"driver_id": 1}, {"driver_id": 2}, {"driver_id": 3}], features=FEATURES
    )
    assert got.to_dict() == {
        "driver_id": [1, 2, 3],
        "conv_rate": [0.30, None, None],  # driver 2's 11:00 value is 5 h old: beyond the 2 h ttl
        "trips": [4, None, None],
        "rating": [4.0, 3.0, None],  # driver_daily has no ttl
    }
    assert got.statuses["conv_rate"] == ["present", "expired", "not_found"]
    assert got.event_timestamps["driver_stats"] == [T(15), T(11), None]
    assert got.event_timestamps["driver_daily"] == [T(13), T(0), None]
    _at(online_platform, T(17))  # exactly ttl after 15:00: still served
    assert caller.call(get_online_features, entity_rows={"driver_id": [1]}, features=FEATURES[:1]).features == {
        "conv_rate": [0.30]
    }
    _at(online_platform, T(17) + timedelta(microseconds=1))
    assert caller.call(get_online_features, entity_rows={"driver_id": [1]}, features=FEATURES[:1]).features == {
        "conv_rate": [None]
    }


def test_offline_equals_online_at_the_same_timestamps(online_platform: Platform, tmp_path: Path) -> None:
    setup_repo(online_platform, tmp_path)
    caller = online_platform.caller()
    caller.call(materialize, start=None, end=T(23))
    for moment in (T(15, 30), T(16, 59)):
        _at(online_platform, moment)
        entity_df = pd.DataFrame({"driver_id": [1, 2, 3], "event_timestamp": [moment] * 3})
        offline = caller.call(get_historical_features, entity_df=entity_df, features=FEATURES)
        online = caller.call(get_online_features, entity_rows={"driver_id": [1, 2, 3]}, features=FEATURES)
        for col in ("conv_rate", "trips", "rating"):
            expected = [None if isinstance(v, float) and math.isnan(v) else v for v in offline.column(col).to_pylist()]
            assert online.features[col] == expected, (moment, col)


def test_materialize_window_and_incremental(online_platform: Platform, tmp_path: Path) -> None:
    setup_repo(online_platform, tmp_path)
    caller = online_platform.caller()
    _at(online_platform, T(13))
    first = caller.call(materialize, start=T(0), end=T(12), views=["driver_stats"])
    assert [w.view for w in first.writes] == ["driver_stats"] and first.writes[0].rows_read == 4
    got = caller.call(get_online_features, entity_rows={"driver_id": [1]}, features=["driver_stats:trips"])
    assert got.features["trips"] == [3]  # the 12:00 tie, newest created; 15:00 not yet materialized
    second = caller.call(materialize_incremental, end=T(23), views=["driver_stats"])
    assert second.writes[0].start_ts == T(12) and second.writes[0].rows_read == 2
    _at(online_platform, T(16))
    got = caller.call(get_online_features, entity_rows={"driver_id": [1]}, features=["driver_stats:trips"])
    assert got.features["trips"] == [4]
    # An old range materialized again never puts an older value back.
    caller.call(materialize, start=T(0), end=T(12), views=["driver_stats"])
    got = caller.call(get_online_features, entity_rows={"driver_id": [1]}, features=["driver_stats:trips"])
    assert got.features["trips"] == [4]


def test_push_writes_online_and_appends_offline(online_platform: Platform, tmp_path: Path) -> None:
    setup_repo(online_platform, tmp_path, "delta")
    caller = online_platform.caller()
    _at(online_platform, T(20))
    rows = pd.DataFrame(
        {"driver_id": [7, 7], "event_timestamp": [T(19), T(19, 30)], "conv_rate": [0.7, 0.75], "trips": [70, 75]}
    )
    result = caller.call(push, view="driver_stats", rows=rows)
    assert result.rows == 2
    got = caller.call(get_online_features, entity_rows={"driver_id": [7]}, features=FEATURES[:2])
    assert got.features == {"conv_rate": [0.75], "trips": [75]}
    assert got.event_timestamps["driver_stats"] == [T(19, 30)]
    offline = caller.call(
        get_historical_features,
        entity_df=pd.DataFrame({"driver_id": [7], "event_timestamp": [T(20)]}),
        features=FEATURES[:2],
    )
    assert offline.column("trips").to_pylist() == [75]


def test_push_of_a_wrong_dtype_writes_nothing(online_platform: Platform, tmp_path: Path) -> None:
    setup_repo(online_platform, tmp_path, "dataset")
    caller = online_platform.caller()
    rows = pa.table(
        {
            "driver_id": [8],
            "event_timestamp": pa.array([T(19)], pa.timestamp("us", tz="UTC")),
            "conv_rate": ["high"],
            "trips": [1],
        }
    )
    with pytest.raises(InvalidInput, match="column 'conv_rate' is string, but the feature is declared float64"):
        caller.call(push, view="driver_stats", rows=rows)
    got = caller.call(get_online_features, entity_rows={"driver_id": [8]}, features=FEATURES[:1])
    assert got.statuses["conv_rate"] == ["not_found"]
    from plinth.data.service import get_version

    assert caller.call(get_version, ref="datasets:/driver_stats_src").version == 1
    with pytest.raises(InvalidInput, match="have no column 'trips'"):
        caller.call(
            push, view="driver_stats", rows=rows.drop_columns(["trips"]).set_column(3 - 1, "conv_rate", pa.array([0.1]))
        )
    assert caller.call(get_version, ref="datasets:/driver_stats_src").version == 1


@pytest.mark.parametrize(
    ("start", "end"), [(None, T(23)), (T(0), T(12)), (T(12), T(23)), (T(11), T(11)), (T(20), T(21))]
)
def test_newest_per_entity_from_the_index_equals_from_the_source(tmp_path: Path, start, end) -> None:  # type: ignore[no-untyped-def]
    import pyarrow.dataset as pads
    import pyarrow.parquet as pq
    from features_support import driver_stats_rows

    from plinth.features.index import ViewIndex, build, make_probe, newest, newest_from_source
    from plinth.features.online import to_us

    pq.write_table(driver_stats_rows(), tmp_path / "s.parquet")
    dataset = pads.dataset(str(tmp_path / "s.parquet"))
    dtypes = {"conv_rate": "float64", "trips": "int64"}
    built = build(dataset, ["driver_id"], "event_timestamp", "created", dtypes)
    table, packed = built.table, built.probe
    assert packed is not None and packed.unique is None  # integer keys: ranks are offsets
    start_us = None if start is None else to_us(start)
    probes = (packed, make_probe(table, ["driver_id"]), None)  # offsets, sorted distinct keys, DuckDB
    for index in (built, *(ViewIndex(table, "", 0.0, p) for p in probes)):
        from_index, rows_index = newest(index, ["driver_id"], start_us, to_us(end))
        from_source, rows_source = newest_from_source(
            dataset, ["driver_id"], "event_timestamp", "created", dtypes, start_us, to_us(end)
        )
        assert rows_index == rows_source
        assert from_index.sort_by("driver_id").to_pylist() == from_source.sort_by("driver_id").to_pylist()
    if (start, end) == (T(0), T(12)):
        assert from_source.sort_by("driver_id").column("trips").to_pylist() == [3, 6]


def _pairs(table: pa.Table) -> list[tuple[object, int]]:
    return sorted(zip(table.column("k").to_pylist(), table.column("v").to_pylist(), strict=True))


@pytest.mark.parametrize(("seed", "key_type"), [(1, int), (2, int), (3, str)])
def test_newest_per_entity_decides_ties_as_the_index_does(tmp_path: Path, seed: int, key_type: type) -> None:
    """Many rows share a key and event time, some a created time too, some have none: the newest
    created wins, then the first row as read; the source path, the index and a brute force agree."""
    import random

    import pyarrow.dataset as pads
    import pyarrow.parquet as pq

    from plinth.features.index import ViewIndex, build, make_probe, newest, newest_from_source
    from plinth.features.online import to_us

    rng = random.Random(seed)
    rows = []
    for i in range(3000):
        made = None if rng.random() < 0.1 else T(0, rng.randrange(4))
        rows.append((key_type(rng.randrange(-5, 40, 3)), T(rng.randrange(6)), made, i))
    ts = pa.timestamp("us", tz="UTC")
    table = pa.table(
        {
            "k": [r[0] for r in rows],
            "event_timestamp": pa.array([r[1] for r in rows], ts),
            "created": pa.array([r[2] for r in rows], ts),
            "v": [r[3] for r in rows],
        }
    )
    pq.write_table(table, tmp_path / "s.parquet", row_group_size=700)  # several chunks
    dataset = pads.dataset(str(tmp_path / "s.parquet"))
    built = build(dataset, ["k"], "event_timestamp", "created", {"v": "int64"})
    assert (built.rows is not None) == (key_type is int)  # integer keys: the packed build; strings: sorted
    sorted_table = built.table
    floor = T(-1000)
    for start, end in ((None, T(5)), (T(1), T(3)), (T(4), T(4))):
        window = [r for r in rows if (start is None or r[1] >= start) and r[1] <= end]
        best: dict[object, tuple] = {}
        for r in window:  # newest (ts, created); the first as read among equals
            rank = (r[1], r[2] or floor)
            if r[0] not in best or rank > (best[r[0]][1], best[r[0]][2] or floor):
                best[r[0]] = r
        expected = sorted((k, r[3]) for k, r in best.items())
        start_us = None if start is None else to_us(start)
        from_source, count = newest_from_source(
            dataset, ["k"], "event_timestamp", "created", {"v": "int64"}, start_us, to_us(end)
        )
        assert (
            sorted(zip(from_source.column("k").to_pylist(), from_source.column("v").to_pylist(), strict=True))
            == expected
        )
        assert count == len({(r[0], r[1]) for r in window})
        for index in (built, ViewIndex(sorted_table, "", 0.0, make_probe(sorted_table, ["k"]))):
            from_index, rows_index = newest(index, ["k"], start_us, to_us(end))
            assert rows_index == count
            assert (
                sorted(zip(from_index.column("k").to_pylist(), from_index.column("v").to_pylist(), strict=True))
                == expected
            )


@pytest.mark.parametrize("broken", ["driver_stats_src", "driver_daily_src"])
def test_materialize_checks_every_source_before_writing_any(
    online_platform: Platform, tmp_path: Path, broken: str
) -> None:
    import pyarrow.parquet as pq
    from features_support import driver_daily_rows, driver_stats_rows

    setup_repo(online_platform, tmp_path)
    rows = driver_stats_rows() if broken == "driver_stats_src" else driver_daily_rows()
    column = "conv_rate" if broken == "driver_stats_src" else "rating"
    bad = rows.set_column(rows.column_names.index(column), column, pa.array(["x"] * rows.num_rows))
    pq.write_table(bad, tmp_path / broken / "part-0.parquet")  # same file, new contents: a new source version
    caller = online_platform.caller()
    with pytest.raises(InvalidInput, match=f"column '{column}' is string, but the feature is declared float64"):
        caller.call(materialize, start=None, end=T(23))
    got = caller.call(get_online_features, entity_rows={"driver_id": [1, 2]}, features=FEATURES)
    assert got.statuses == {c: ["not_found", "not_found"] for c in ("conv_rate", "trips", "rating")}
