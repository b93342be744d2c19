"""Helpers of the data tests: small data made here, and what 'nothing was written' means."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from plinth.core.platform import Platform


def customers(n: int = 200, seed: int = 0, start: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "customer_id": np.arange(start, start + n, dtype=np.int64),
            "tenure": rng.integers(1, 73, n),
            "monthly_charges": np.round(rng.uniform(20, 120, n), 2),
            "plan": rng.choice(["basic", "plus", "pro"], n),
            "churned": rng.random(n) < 0.3,
        }
    )


def write_csv(path: Path, df: pd.DataFrame) -> Path:
    df.to_csv(path, index=False)
    return path


def state_of(platform: Platform, name: str, project: str = "default") -> dict[str, Any]:
    """Version rows, the Delta table's version and the event count: what a failure must not change."""
    from sqlalchemy import func, select

    from plinth.data.delta import latest_delta_version
    from plinth.data.tables import Dataset, DatasetVersion
    from plinth.store.events import Event

    with platform.context(project=project) as ctx:
        dataset = ctx.session.execute(select(Dataset).where(Dataset.name == name)).scalar()
        events = ctx.session.execute(select(func.count()).select_from(Event)).scalar()
        if dataset is None:
            return {"dataset": None, "versions": 0, "delta": None, "events": events}
        versions = ctx.session.execute(
            select(func.count()).select_from(DatasetVersion).where(DatasetVersion.dataset_id == dataset.id)
        ).scalar()
        location = dataset.location
    return {
        "dataset": dataset.id,
        "versions": versions,
        "delta": latest_delta_version(platform.stores.tables, location),
        "events": events,
    }
