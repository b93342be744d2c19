"""The feature store: definitions in Python, point-in-time correct training sets, online
serving from SQLite or Redis — Feast's semantics, on Plinth's registry, lineage and audit.

>>> from datetime import timedelta
>>> import plinth
>>> from plinth.features import Entity, FeatureView, Field, Source
>>> driver = Entity(name="driver", join_keys=["driver_id"])
>>> stats = FeatureView(
...     name="driver_stats",
...     entities=[driver],
...     schema=[Field(name="conv_rate", dtype="float64")],
...     source=Source("datasets:/driver_stats", timestamp_field="event_timestamp"),
...     ttl=timedelta(days=2),
... )
>>> plinth.features.apply([driver, stats])  # doctest: +SKIP
>>> plinth.features.get_historical_features(entity_df, ["driver_stats:conv_rate"])  # doctest: +SKIP

Names load on first use, so ``import plinth.features`` does not import pyarrow or DuckDB.
"""

from plinth.core.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    globals(),
    {
        "plinth.features.definitions": [
            "Entity",
            "FeatureService",
            "FeatureView",
            "Field",
            "OnDemandFeatureView",
            "RequestSource",
            "Source",
            "on_demand_feature_view",
        ],
        "plinth.features.sdk": [
            "apply",
            "create_training_set",
            "freshness",
            "get_entity",
            "get_feature",
            "get_feature_service",
            "get_feature_view",
            "get_historical_features",
            "get_online_features",
            "list_entities",
            "list_feature_services",
            "list_feature_views",
            "list_features",
            "load_repo",
            "materialize",
            "materialize_incremental",
            "plan",
            "push",
            "search_features",
        ],
    },
)
