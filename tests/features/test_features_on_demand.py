"""On-demand feature views: the same function offline and online, in the process that loaded it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from features_support import T, setup_repo

from plinth.core.errors import InvalidInput
from plinth.core.platform import Platform
from plinth.features import Field, RequestSource, on_demand_feature_view
from plinth.features import service as svc
from plinth.features.online import get_online_features, materialize
from plinth.features.retrieval import get_historical_features


def _odfv(stats):  # type: ignore[no-untyped-def]
    @on_demand_feature_view(
        sources=[stats, RequestSource(name="ride", schema=[Field("distance_km", "float64")])],
        schema=[Field("expected_trips", "float64"), Field("long_ride", "bool")],
    )
    def ride_features(df: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"expected_trips": df["trips"] * df["conv_rate"], "long_ride": df["distance_km"] > 10})

    return ride_features


def test_offline_and_online_apply_the_same_function(online_platform: Platform, tmp_path: Path) -> None:
    from plinth.features.ondemand import register

    defs = setup_repo(online_platform, tmp_path)
    odfv = _odfv(defs["stats"])
    caller = online_platform.caller()
    caller.call(svc.apply, objects=[odfv.to_spec()])
    register(odfv)
    features = ["driver_stats:conv_rate", "ride_features:expected_trips", "ride_features:long_ride"]
    entity_df = pd.DataFrame({"driver_id": [1, 2], "event_timestamp": [T(16), T(16)], "distance_km": [12.0, 3.0]})
    offline = caller.call(get_historical_features, entity_df=entity_df, features=features)
    assert offline.column_names == [
        "driver_id",
        "event_timestamp",
        "distance_km",
        "conv_rate",
        "expected_trips",
        "long_ride",
    ]
    assert offline.column("expected_trips").to_pylist()[0] == pytest.approx(1.2)
    assert offline.column("long_ride").to_pylist() == [True, False]
    caller.call(materialize, start=None, end=T(23))
    online_platform.clock_state["now"] = T(16)  # type: ignore[attr-defined]
    online = caller.call(
        get_online_features,
        entity_rows=[{"driver_id": 1, "distance_km": 12.0}, {"driver_id": 2, "distance_km": 3.0}],
        features=features,
    )
    assert online.features["expected_trips"][0] == pytest.approx(offline.column("expected_trips").to_pylist()[0])
    assert online.features["long_ride"] == [True, False]
    assert "trips" not in online.features  # read only as the function's input


def test_a_function_not_loaded_here_is_named(platform: Platform, tmp_path: Path) -> None:
    defs = setup_repo(platform, tmp_path)
    odfv = _odfv(defs["stats"])
    spec = odfv.to_spec()
    spec["function"]["sha256"] = "0" * 64  # as if another version of the function was applied
    platform.caller().call(svc.apply, objects=[spec])
    entity_df = pd.DataFrame({"driver_id": [1], "event_timestamp": [T(16)], "distance_km": [1.0]})
    with pytest.raises(InvalidInput, match="runs in the process that loaded its function"):
        platform.caller().call(get_historical_features, entity_df=entity_df, features=["ride_features:long_ride"])
    with pytest.raises(InvalidInput, match="has no column 'distance_km', request data"):
        platform.caller().call(
            get_historical_features,
            entity_df=entity_df.drop(columns=["distance_km"]),
            features=["ride_features:long_ride"],
        )
