"""Helpers shared by the models and registry tests: tiny models, and logging one into a run
of a given platform through the services (so that both metadata backends can be used)."""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path
from typing import Any

from plinth.core.context import LOCAL_ADMIN, Actor
from plinth.core.platform import Platform


@functools.lru_cache(maxsize=1)
def iris() -> tuple[Any, Any]:
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True, as_frame=True)
    X.columns = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    return X, y


def iris_pipeline(C: float = 1.0) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = iris()
    return make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=300)).fit(X, y)


def log_with_services(
    platform: Platform,
    model: Any,
    *,
    input_example: Any = None,
    name: str = "model",
    params: dict[str, Any] | None = None,
    metrics: dict[str, float] | None = None,
    tags: dict[str, str] | None = None,
    actor: Actor = LOCAL_ADMIN,
    project: str = "default",
    **save_options: Any,
) -> str:
    """Save ``model``, upload it as artifacts of a new finished run, return ``runs:/<id>/<name>``."""
    from plinth.models.packaging import save_model
    from plinth.tracking import service as tracking

    caller = platform.caller(actor, project)
    run = caller.call(tracking.start_run, experiment="tests", name="train", tags=tags)
    rows = [(k, v, 0, 0) for k, v in (metrics or {}).items()]
    if rows or params:
        caller.call(tracking.log_batch, run_id=run.id, metrics=rows or None, params=params)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "m"
        manifest = save_model(model, folder, input_example=input_example, **save_options)
        for rel in [*manifest.files, "plinth-model.yaml"]:
            with (folder / rel).open("rb") as fh:
                caller.call(tracking.put_run_artifact, run_id=run.id, name=f"{name}/{rel}", content=fh)
    caller.call(tracking.end_run, run_id=run.id)
    return f"runs:/{run.id}/{name}"
