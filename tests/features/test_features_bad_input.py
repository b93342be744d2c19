"""Bad input gets a clear error that names the problem, and nothing is written."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from features_support import T, definitions, driver_stats_rows, entity_frame, setup_repo, write_source

from plinth.core.errors import InvalidInput, NotFound
from plinth.core.platform import Platform
from plinth.features import service as svc
from plinth.features.online import get_online_features, push
from plinth.features.retrieval import create_training_set, get_historical_features
from plinth.store.events import read_events


def _historical(platform: Platform, entity_df: object, **kw: object) -> object:
    kw.setdefault("features", ["driver_stats:conv_rate"])
    return platform.caller().call(get_historical_features, entity_df=entity_df, **kw)


def test_entity_frame_without_timestamp_or_join_key(platform: Platform, tmp_path: Path) -> None:
    setup_repo(platform, tmp_path)
    frame = entity_frame()
    with pytest.raises(InvalidInput, match="entity frame has no timestamp column 'event_timestamp'") as err:
        _historical(platform, frame.rename(columns={"event_timestamp": "event_ts"}))
    assert "did you mean 'event_ts'" in err.value.message and err.value.details["column"] == "event_timestamp"
    with pytest.raises(InvalidInput, match="has no column 'driver_id', the join key of feature view 'driver_stats'"):
        _historical(platform, frame.drop(columns=["driver_id"]))
    with pytest.raises(InvalidInput, match="column 'event_timestamp' is string, not timestamps"):
        _historical(platform, frame.assign(event_timestamp=frame.event_timestamp.astype(str)))
    with pytest.raises(
        InvalidInput, match="join key 'driver_id' is string but feature view 'driver_stats' keys it as int64"
    ):
        _historical(platform, frame.assign(driver_id=["x"] * len(frame)))


def test_naive_and_aware_timestamps_mixed_in_one_column_are_refused(platform: Platform, tmp_path: Path) -> None:
    setup_repo(platform, tmp_path)
    mixed = pd.DataFrame(
        {
            "driver_id": [1, 2],
            "event_timestamp": [dt.datetime(2026, 3, 1, 12), dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)],
        }
    )
    with pytest.raises(InvalidInput, match="mixes timezone-naive and timezone-aware timestamps"):
        _historical(platform, mixed)


def test_unknown_features_suggest_the_closest_names(platform: Platform, tmp_path: Path) -> None:
    setup_repo(platform, tmp_path)
    with pytest.raises(
        InvalidInput,
        match=r"unknown feature 'driver_stats:conv_rat' \(no feature of that name\); "
        r"did you mean 'driver_stats:conv_rate'\?",
    ):
        _historical(platform, entity_frame(), features=["driver_stats:conv_rat"])
    with pytest.raises(
        InvalidInput,
        match=r"unknown feature 'drivr_stats:trips' \(no feature view of that name\); "
        r"did you mean 'driver_stats:trips'\?",
    ):
        _historical(platform, entity_frame(), features=["drivr_stats:trips"])
    with pytest.raises(InvalidInput, match="expected 'view:feature'"):
        _historical(platform, entity_frame(), features=["conv_rate"])
    with pytest.raises(InvalidInput, match="give either features"):
        _historical(platform, entity_frame(), feature_service="driver_activity")
    with pytest.raises(NotFound, match="no feature service named 'driver_activty'.*did you mean 'driver_activity'"):
        platform.caller().call(get_historical_features, entity_df=entity_frame(), feature_service="driver_activty")


def test_a_source_lacking_a_declared_field_is_refused_at_apply(platform: Platform, tmp_path: Path) -> None:
    uri = write_source("parquet", driver_stats_rows().drop_columns(["trips"]), tmp_path, platform, "src")
    defs = definitions(uri, uri)
    caller = platform.caller()
    with pytest.raises(
        InvalidInput, match="source .* of feature view 'driver_stats' has no column 'trips' \\(feature\\)"
    ):
        caller.call(svc.apply, objects=[defs["driver"].to_spec(), defs["stats"].to_spec()])
    wrong = driver_stats_rows().set_column(4, "trips", pa.array(["a"] * 7))
    uri2 = write_source("parquet", wrong, tmp_path, platform, "src2")
    defs2 = definitions(uri2, uri2)
    with pytest.raises(InvalidInput, match="column 'trips' is string, but the feature is declared int64"):
        caller.call(svc.apply, objects=[defs2["driver"].to_spec(), defs2["stats"].to_spec()])
    assert caller.call(svc.list_definitions) == []
    with platform.context() as ctx:
        assert read_events(ctx.session, action="features.*") == []


def test_a_source_that_changed_after_apply_is_named_at_retrieval(platform: Platform, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    defs = setup_repo(platform, tmp_path)
    pq.write_table(driver_stats_rows().drop_columns(["conv_rate"]), Path(defs["stats_uri"]) / "part-0.parquet")
    with pytest.raises(InvalidInput, match="has no column 'conv_rate' \\(feature\\)"):
        _historical(platform, entity_frame())


def test_a_bad_entity_frame_writes_no_training_set(platform: Platform, tmp_path: Path) -> None:
    from plinth.data.service import list_datasets

    setup_repo(platform, tmp_path)
    with pytest.raises(InvalidInput, match="no timestamp column"):
        platform.caller().call(
            create_training_set,
            name="ts",
            entity_df=entity_frame().drop(columns=["event_timestamp"]),
            features=["driver_stats:trips"],
        )
    assert platform.caller().call(list_datasets) == []


def test_online_lookup_and_push_errors(platform: Platform, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    defs = setup_repo(platform, tmp_path)
    caller = platform.caller()
    with pytest.raises(
        InvalidInput, match="entity_rows have no 'driver_id', the join key of feature view 'driver_stats'"
    ):
        caller.call(get_online_features, entity_rows=[{"driver": 1}], features=["driver_stats:trips"])
    with pytest.raises(InvalidInput, match="join key 'driver_id' of feature view 'driver_stats' is int64; got 'abc'"):
        caller.call(get_online_features, entity_rows=[{"driver_id": "abc"}], features=["driver_stats:trips"])
    before = sorted(p.name for p in Path(defs["stats_uri"]).iterdir())
    rows = pd.DataFrame({"driver_id": [1], "event_timestamp": [T(20)], "conv_rate": [0.5], "trips": [1.5]})
    with pytest.raises(
        InvalidInput, match="column 'trips' is float64, but the feature is declared int64 \\(nothing was written\\)"
    ):
        caller.call(push, view="driver_stats", rows=rows)
    with pytest.raises(InvalidInput, match="have no column 'event_timestamp'"):
        caller.call(push, view="driver_stats", rows=rows.drop(columns=["event_timestamp"]))
    with pytest.raises(InvalidInput, match="has no column 'speed'"):
        caller.call(push, view="driver_stats", rows=rows.assign(trips=1, speed=3.0))
    assert sorted(p.name for p in Path(defs["stats_uri"]).iterdir()) == before
    assert pq.read_table(defs["stats_uri"]).num_rows == 7
    got = caller.call(get_online_features, entity_rows=[{"driver_id": 1}], features=["driver_stats:trips"])
    assert got.statuses["trips"] == ["not_found"]
