"""The data step of ``plinth demo``: ingest a real dataset, version it, profile, validate,
split, and see a version refused by its expectation suite."""

from __future__ import annotations

from typing import Any

SUITE = """
name: wine-basic
expectations:
  - not_null: alcohol
  - unique: sample_id
  - between: {column: alcohol, min: 10, max: 16}
  - in_set: {column: target, values: [0, 1, 2]}
  - expression: "malic_acid > 0 AND ash > 0"
"""


def _wine() -> Any:
    """scikit-learn's wine data when scikit-learn is installed, else a look-alike."""
    import numpy as np
    import pandas as pd

    try:
        from sklearn.datasets import load_wine

        return load_wine(as_frame=True).frame.reset_index(names="sample_id")
    except ImportError:
        rng = np.random.default_rng(7)
        n = 178
        return pd.DataFrame(
            {
                "sample_id": np.arange(n),
                "alcohol": np.round(rng.normal(13.0, 0.8, n), 2),
                "malic_acid": np.round(rng.uniform(0.7, 5.8, n), 2),
                "ash": np.round(rng.uniform(1.4, 3.2, n), 2),
                "target": rng.integers(0, 3, n),
            }
        )


def run_step(state: Any) -> None:
    import plinth
    from plinth.core.errors import InvalidInput

    wine, project = _wine(), state.project
    if "wine" in {d.name for d in plinth.data.list_datasets(project=project)}:
        latest = plinth.data.get_version("wine", project=project)
        state.echo(f"  {latest.ref} is there from an earlier demo run ({latest.row_count} rows)")
    else:
        first = plinth.data.ingest("wine", wine.iloc[:120], tags=["train-v1"], expectations=SUITE, project=project)
        latest = plinth.data.ingest("wine", wine.iloc[120:], expectations=SUITE, project=project).version
        state.echo(f"  {first.version.ref}: {first.version.row_count} rows, tagged train-v1; suite passed")
        state.echo(f"  {latest.ref}: {latest.row_count} rows after an append")
    profile = plinth.data.profile(latest.ref, project=project)
    alcohol = next(c for c in profile.columns if c.name == "alcohol")
    state.echo(f"  profile: alcohol mean {alcohol.mean:.2f}, std {alcohol.std:.2f}, {len(profile.columns)} columns")
    broken = wine.iloc[:20].assign(sample_id=lambda d: d.sample_id + 1000, alcohol=lambda d: d.alcohol * 10)
    try:
        plinth.data.ingest("wine", broken, expectations=SUITE, project=project)
    except InvalidInput as exc:
        state.echo(f"  a broken batch is refused, nothing written: {exc.message[:110]}…")
    parts = plinth.data.split("wine@train-v1", key="sample_id", train=0.75, project=project)
    train, test = parts["train"].num_rows, parts["test"].num_rows
    state.echo(f"  split by sample_id: {train} train / {test} test (the same rows every time)")
    state.facts["dataset"] = "datasets:/wine@train-v1"
