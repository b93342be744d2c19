"""The declarative objects behave like scikit-learn estimators."""

from __future__ import annotations

from datetime import timedelta

import pyarrow as pa
import pytest

from plinth.core.errors import InvalidInput
from plinth.features import (
    Entity,
    FeatureService,
    FeatureView,
    Field,
    OnDemandFeatureView,
    RequestSource,
    Source,
    on_demand_feature_view,
)


def view(**overrides: object) -> FeatureView:
    params: dict[str, object] = {
        "name": "driver_stats",
        "entities": [Entity(name="driver", join_keys=["driver_id"])],
        "schema": [Field(name="conv_rate", dtype="float64"), Field(name="trips", dtype=pa.int64())],
        "source": Source("datasets:/driver_stats"),
        "ttl": timedelta(days=2),
    }
    params.update(overrides)
    return FeatureView(**params)  # type: ignore[arg-type]


def test_constructors_store_parameters_as_given_and_validate_later() -> None:
    bad = FeatureView(name="no good!", entities="driver", schema=[], source=42)  # type: ignore[arg-type]
    assert bad.get_params()["entities"] == "driver" and bad.source == 42  # nothing checked yet
    with pytest.raises(InvalidInput, match="feature view name 'no good!' is not valid"):
        bad.validate()
    fv = view()
    assert fv.validate() is fv
    assert fv.features == ["driver_stats:conv_rate", "driver_stats:trips"]


def test_repr_is_one_line_and_equality_and_hash_agree() -> None:
    a, b = view(), view()
    assert "\n" not in repr(a) and repr(a).startswith("FeatureView(name='driver_stats', entities=['driver']")
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    c = view(ttl=timedelta(days=1))
    assert a != c and {a, c} == {a, c}
    assert Entity(name="driver") == Entity(name="driver") and Entity(name="driver") != Entity(
        name="driver", join_keys=["id"]
    )
    assert Field("x", "float64") != Field("x", "int64")
    assert repr(Field("x", "float64")) == "Field(name='x', dtype='float64')"


def test_spec_round_trip_normalises_dtypes() -> None:
    fv = view()
    spec = fv.to_spec()
    assert spec["schema"][1]["dtype"] == "int64" and spec["ttl_seconds"] == 172800.0
    assert spec["source"] == {
        "uri": "datasets:/driver_stats",
        "timestamp_field": "event_timestamp",
        "created_field": None,
        "description": "",
    }
    again = FeatureView.from_spec(spec)
    assert again.to_spec() == spec
    assert view(ttl=timedelta(0)).to_spec()["ttl_seconds"] is None  # Feast: 0 means no limit


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"schema": [Field("a", "float64"), Field("a", "int64")]}, "field 'a' is declared twice"),
        ({"schema": [Field("a", "decimal")]}, "dtype of field 'a' 'decimal' is not supported"),
        ({"schema": [Field("driver_id", "int64")]}, "join key 'driver_id' cannot also be a feature"),
        ({"schema": [Field("event_timestamp", "timestamp")]}, "is the source's timestamp, not a feature"),
        ({"ttl": timedelta(seconds=-1)}, "ttl must not be negative"),
        ({"ttl": "2 days"}, "ttl must be a timedelta"),
        ({"schema": []}, "schema must list at least one Field"),
        ({"source": Source("datasets:/x", created_field="event_timestamp")}, "created_field must differ"),
        ({"schema": [Field("bad name", "float64")]}, "field name 'bad name' is not valid"),
    ],
)
def test_validation_names_the_problem(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        view(**overrides).validate()


def test_projections_and_services() -> None:
    fv = view()
    assert fv[["trips"]] == ["driver_stats:trips"]
    with pytest.raises(InvalidInput, match="has no feature 'conv_rat'; did you mean 'conv_rate'"):
        fv[["conv_rat"]]
    svc = FeatureService(name="svc", features=[fv[["trips"]], "other:x", fv])
    assert svc.to_spec()["features"] == ["driver_stats:trips", "other:x", "driver_stats:conv_rate"]
    with pytest.raises(InvalidInput, match="is not a feature reference"):
        FeatureService(name="svc", features=["no_colon"]).validate()


def test_on_demand_view_decorator_marks_and_stays_callable() -> None:
    import pandas as pd

    fv = view()

    @on_demand_feature_view(
        sources=[fv, RequestSource(name="req", schema=[Field("bonus", "float64")])],
        schema=[Field("boosted", "float64")],
    )
    def boosted_rate(df):  # type: ignore[no-untyped-def]
        """Conversion rate plus the request's bonus."""
        return pd.DataFrame({"boosted": df["conv_rate"] + df["bonus"]})

    assert isinstance(boosted_rate, OnDemandFeatureView)
    assert boosted_rate.name == "boosted_rate" and boosted_rate.description.startswith("Conversion rate")
    assert boosted_rate(pd.DataFrame({"conv_rate": [0.5], "bonus": [0.25]}))["boosted"].tolist() == [0.75]
    spec = boosted_rate.to_spec()
    assert spec["sources"][0] == {"feature_view": "driver_stats"} and len(spec["function"]["sha256"]) == 64
    assert 'df["conv_rate"] + df["bonus"]' in spec["function"]["source"]
