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
    table, packed = build(dataset, ["driver_id"], "event_timestamp", "created", dtypes)
    assert packed is not None and packed.unique is None  # integer keys: ranks are offsets
    start_us = None if start is None else to_us(start)
    probes = (packed, make_probe(table, ["driver_id"]), None)  # offsets, sorted distinct keys, DuckDB
    for index in (ViewIndex(table, "", 0.0, p) for p in probes):
        from_index, rows_index = newest(index, ["driver_id"], start_us, to_us(end))
        from_source, rows_source = newest_from_source(
            dataset, ["driver_id"], "event_timestamp", "created", dtypes, start_us, to_us(end)
        )
        assert rows_index == rows_source
        assert from_index.sort_by("driver_id").to_pylist() == from_source.sort_by("driver_id").to_pylist()
    if (start, end) == (T(0), T(12)):
        assert from_source.sort_by("driver_id").column("trips").to_pylist() == [3, 6]
