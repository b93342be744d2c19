"""The features step of ``plinth demo``: a feature repository over a dataset of driver
statistics, a point-in-time correct training set used by a tracked run, materialization
into the online store, and an online lookup that serves what the offline join gives."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

HOURS = 72
DRIVERS = 50


def driver_stats(now: datetime, seed: int = 7) -> Any:
    """Hourly statistics of 50 drivers over the last three days (as in Feast's tutorial)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    start = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=HOURS)
    rows = []
    for driver in range(1001, 1001 + DRIVERS):
        skill = rng.uniform(0.2, 0.9)
        for h in range(HOURS):
            if rng.random() < 0.15:  # drivers are offline some hours: gaps in the data
                continue
            ts = start + timedelta(hours=h)
            rows.append(
                {
                    "driver_id": driver,
                    "event_timestamp": ts,
                    "created": ts + timedelta(minutes=5),
                    "conv_rate": float(np.clip(skill + rng.normal(0, 0.05), 0, 1)),
                    "acc_rate": float(np.clip(skill + rng.normal(0.05, 0.05), 0, 1)),
                    "avg_daily_trips": int(rng.poisson(10 + 20 * skill)),
                }
            )
    return pd.DataFrame(rows)


def repository() -> list[Any]:
    from plinth.features import Entity, FeatureService, FeatureView, Field, Source

    driver = Entity(name="driver", join_keys=["driver_id"], description="A driver of the ride service")
    stats = FeatureView(
        name="driver_hourly_stats",
        entities=[driver],
        schema=[
            Field("conv_rate", "float64", description="Share of ride offers the driver converted"),
            Field("acc_rate", "float64", description="Share of ride offers the driver accepted"),
            Field("avg_daily_trips", "int64", description="Trips per day, averaged"),
        ],
        source=Source("datasets:/driver_stats", timestamp_field="event_timestamp", created_field="created"),
        ttl=timedelta(days=1),
        owner="marketplace-team",
        description="Hourly driver statistics",
        tags={"team": "marketplace"},
    )
    activity = FeatureService(name="driver_activity", features=[stats], description="What the ranking model reads")
    return [driver, stats, activity]


def run_step(state: Any) -> None:
    import numpy as np
    import pandas as pd

    import plinth.data
    import plinth.features
    from plinth.tracking import log_metric, log_params, start_run

    project = state.project
    now = datetime.now(UTC)
    if "driver_stats" not in {d.name for d in plinth.data.list_datasets(project=project)}:
        plinth.data.ingest("driver_stats", driver_stats(now), project=project, description="hourly driver statistics")
    version = plinth.data.get_version("driver_stats", project=project)
    result = plinth.features.apply(repository(), project=project)
    state.echo(f"  feature repository applied: {result.plan.summary()} (source {version.ref})")

    # Labelled events (did the driver complete the ride?) at times between the hourly stats.
    rng = np.random.default_rng(11)
    stats = plinth.data.read(version.ref, project=project).to_pandas()
    stamps = pd.to_datetime(stats["event_timestamp"], utc=True)
    lo, hi = stamps.min(), stamps.max()
    n = 2000
    events = pd.DataFrame(
        {
            "driver_id": rng.integers(1001, 1001 + DRIVERS + 5, n),  # a few drivers without statistics
            "event_timestamp": lo + (hi - lo) * rng.random(n),
        }
    )
    with start_run(experiment="driver-ranking", name="ranker", system_metrics=False, project=project) as run:
        training = plinth.features.create_training_set(
            "driver_ranking_train", events, features="features:/driver_activity", project=project
        )
        frame = plinth.data.read(training.dataset, project=project).to_pandas()
        known = frame.dropna(subset=["conv_rate"])
        label = (known["conv_rate"] + rng.normal(0, 0.1, len(known)) > 0.55).astype(float).to_numpy()
        X = np.column_stack([known["conv_rate"], known["acc_rate"], np.ones(len(known))])
        w = np.zeros(3)
        for _ in range(300):
            p = 1 / (1 + np.exp(-X @ w))
            w -= 0.5 * X.T @ (p - label) / len(label)
        accuracy = float(np.mean(((1 / (1 + np.exp(-X @ w))) > 0.5) == label))
        log_params({"features": "features:/driver_activity", "training_set": training.dataset})
        log_metric("accuracy", accuracy)
    nulls = int(frame["conv_rate"].isna().sum())
    state.echo(
        f"  training set {training.dataset}: {training.rows} rows ({nulls} with nothing in the 1-day window), "
        f"used by run {run.id} (accuracy {accuracy:.3f}); lineage {training.sources[0]} -> {training.views[0]}"
    )
    written = plinth.features.materialize(None, datetime.now(UTC), project=project)
    store = written.writes[0].store.split(":", 1)[0]
    state.echo(f"  materialized {written.writes[0].entities_written} drivers into the online store ({store})")
    drivers = [1001, 1002, 1003]
    online = plinth.features.get_online_features(
        "features:/driver_activity", [{"driver_id": d} for d in drivers], project=project
    )
    at = datetime.now(UTC)
    offline = plinth.features.get_historical_features(
        pd.DataFrame({"driver_id": drivers, "event_timestamp": [at] * len(drivers)}),
        feature_service="driver_activity",
        output="pandas",
        project=project,
    )
    same = all(math.isclose(a, b) for a, b in zip(online.features["conv_rate"], offline["conv_rate"], strict=True))
    shown = ", ".join(f"{d}: {v:.3f}" for d, v in zip(drivers, online.features["conv_rate"], strict=True))
    state.echo(f"  online conv_rate {shown}; the offline join at the same time gives the same: {same}")
    state.facts["feature_service"] = "features:/driver_activity"
    state.facts["training_set"] = training.dataset
