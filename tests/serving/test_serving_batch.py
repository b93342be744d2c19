"""Batch inference: ``plinth.serving.predict_batch`` and ``plinth predict`` score a dataset version
with a registered model and write a new dataset version with lineage; bad input writes nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import plinth
from plinth.core.errors import Conflict, InvalidInput, NotFound


def _datasets() -> set[str]:
    return {d.name for d in plinth.data.list_datasets()}


def test_predict_batch_writes_a_version_with_lineage(flowers) -> None:  # type: ignore[no-untyped-def]
    model, frame = flowers
    result = plinth.serving.predict_batch("models:/iris/1", "datasets:/flowers@spring", "iris_scores", batch_size=100)
    assert (result.output.ref, result.model, result.input, result.rows) == (
        "datasets:/iris_scores/1",
        "models:/iris/1",
        "datasets:/flowers/1",
        450,
    )
    # a Delta table does not promise the order of its files: rows are matched by their key
    out = plinth.data.read("datasets:/iris_scores/1").to_pandas().sort_values("flower_id", ignore_index=True)
    # the columns the model does not read are kept (key, label), then the prediction
    assert list(out.columns) == ["flower_id", "species", "prediction"]
    expected = model.predict(frame[["sepal_length", "sepal_width", "petal_length", "petal_width"]])
    assert out["flower_id"].tolist() == list(range(450))
    np.testing.assert_array_equal(out["prediction"].to_numpy(), expected)
    edges = {(e.src, e.kind, e.dst) for e in plinth.data.lineage("datasets:/iris_scores/1", "upstream", depth=1).edges}
    assert edges == {
        ("models:/iris/1", "predicted", "datasets:/iris_scores/1"),
        ("datasets:/flowers/1", "scored", "datasets:/iris_scores/1"),
    }
    down = plinth.data.lineage("models:/iris/1", direction="downstream")
    assert "datasets:/iris_scores/1" in down.nodes

    # scored again: the next version of the same output holds this run's rows only
    again = plinth.serving.predict_batch("models:/iris/1", "flowers@1", "datasets:/iris_scores", tags=["nightly"])
    assert again.output.ref == "datasets:/iris_scores/2" and again.output.row_count == 450
    assert again.output.tags == ["nightly"]
    # keep every input column, or only some
    every = plinth.serving.predict_batch("models:/iris/1", "flowers", "iris_all", keep_columns="all")
    assert [c.name for c in every.output.columns] == [*frame.columns, "prediction"]
    some = plinth.serving.predict_batch("models:/iris/1", "flowers", "iris_keys", keep_columns=["flower_id"])
    assert [c.name for c in some.output.columns] == ["flower_id", "prediction"]


def test_worker_processes_score_the_same_rows(flowers) -> None:  # type: ignore[no-untyped-def]
    one = plinth.serving.predict_batch("models:/iris/1", "flowers", "one_worker", batch_size=40)
    two = plinth.serving.predict_batch("models:/iris/1", "flowers", "two_workers", batch_size=40, workers=2)
    assert (two.rows, two.workers, two.executor) == (450, 2, "local")
    a = plinth.data.read(one.output.ref).to_pandas().sort_values("flower_id", ignore_index=True)
    b = plinth.data.read(two.output.ref).to_pandas().sort_values("flower_id", ignore_index=True)
    pd.testing.assert_frame_equal(a, b)


def test_bad_input_is_refused_and_writes_nothing(flowers) -> None:  # type: ignore[no-untyped-def]
    _, frame = flowers
    before = _datasets()
    with pytest.raises(NotFound, match="iris_nope"):
        plinth.serving.predict_batch("models:/iris_nope/1", "flowers", "out")
    with pytest.raises(NotFound, match="dataset 'nothing' does not exist"):
        plinth.serving.predict_batch("models:/iris/1", "datasets:/nothing@1", "out")
    with pytest.raises(NotFound, match="dataset 'flowers' has no version 7"):
        plinth.serving.predict_batch("models:/iris/1", "datasets:/flowers/7", "out")
    with pytest.raises(InvalidInput, match="executor must be one of local, ray"):
        plinth.serving.predict_batch("models:/iris/1", "flowers", "out", executor="spark")
    with pytest.raises(InvalidInput, match="keep column 'colour' is not a column of datasets:/flowers/1"):
        plinth.serving.predict_batch("models:/iris/1", "flowers", "out", keep_columns=["colour"])
    with pytest.raises(InvalidInput, match="names a version"):
        plinth.serving.predict_batch("models:/iris/1", "flowers", "datasets:/out/2")

    # a column the model needs is missing: the error names it
    plinth.data.ingest("no_petals", frame.drop(columns=["petal_width"]))
    with pytest.raises(InvalidInput, match="has no column 'petal_width' that the model needs") as err:
        plinth.serving.predict_batch("models:/iris/1", "no_petals", "out")
    assert err.value.details["field"] == "petal_width"
    # a column of the wrong type: the error names it
    plinth.data.ingest("text_petals", frame.assign(petal_length="long"))
    with pytest.raises(InvalidInput, match="column 'petal_length' has type string, expected float64"):
        plinth.serving.predict_batch("models:/iris/1", "text_petals", "out")
    assert _datasets() == before | {"no_petals", "text_petals"}

    # an output dataset with other columns is not overwritten
    plinth.data.ingest("taken", pd.DataFrame({"flower_id": [1], "score": [0.5]}))
    with pytest.raises(Conflict, match="output dataset 'taken' exists with other columns"):
        plinth.serving.predict_batch("models:/iris/1", "flowers", "taken")
    assert plinth.data.get_dataset("taken").dataset.latest_version == 1
    assert plinth.data.read("taken").num_rows == 1


def test_a_failure_late_in_the_stream_leaves_no_version(flowers) -> None:  # type: ignore[no-untyped-def]
    _, frame = flowers
    broken = frame.copy()
    broken.loc[400, "sepal_width"] = np.nan  # the first batch is fine; the model refuses a later one
    plinth.data.ingest("holes", broken)
    plinth.serving.predict_batch("models:/iris/1", "flowers", "late")
    with pytest.raises(InvalidInput, match="model models:/iris/1 failed on a batch of the input"):
        plinth.serving.predict_batch("models:/iris/1", "holes", "late", batch_size=50)
    assert plinth.data.get_dataset("late").dataset.latest_version == 1
    with pytest.raises(InvalidInput, match="failed on a batch"):
        plinth.serving.predict_batch("models:/iris/1", "holes", "fresh", batch_size=50, workers=2)
    assert "fresh" not in _datasets()


def _env(home: Path) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith("PLINTH_")}
    out.update(PLINTH_HOME=str(home), PLINTH_SYSTEM_METRICS="0", PLINTH_CAPTURE_ENVIRONMENT="0")
    return out


def test_plinth_predict_command(flowers, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cmd = [sys.executable, "-m", "plinth.cli.main", "predict", "--model", "models:/iris/1"]
    ok = subprocess.run(
        [*cmd, "--input", "datasets:/flowers@spring", "--output", "cli_scores", "--executor", "local", "--json"],
        env=_env(tmp_path / "home"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ok.returncode == 0, ok.stderr
    body = json.loads(ok.stdout)
    assert body["output"]["ref"] == "datasets:/cli_scores/1" and body["rows"] == 450
    bad = subprocess.run(
        [*cmd, "--input", "datasets:/flowers@autumn", "--output", "cli_scores"],
        env=_env(tmp_path / "home"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 4
    assert "dataset 'flowers' has no tag 'autumn'" in bad.stderr
    assert plinth.data.get_dataset("cli_scores").dataset.latest_version == 1


@pytest.fixture(scope="session")
def ray_session() -> Iterator[None]:
    """One local Ray for the test run, on loopback (see DEPENDENCY-NOTES)."""
    import ray

    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    os.environ["RAY_AUTH_MODE"] = "disabled"
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.mark.timeout(300)
def test_ray_executor_scores_the_same_rows(flowers, ray_session) -> None:  # type: ignore[no-untyped-def]
    local = plinth.serving.predict_batch("models:/iris/1", "flowers", "by_local")
    by_ray = plinth.serving.predict_batch("models:/iris/1", "flowers", "by_ray", executor="ray", batch_size=200)
    assert (by_ray.rows, by_ray.executor) == (450, "ray")
    a = plinth.data.read(local.output.ref).to_pandas().sort_values("flower_id", ignore_index=True)
    b = plinth.data.read(by_ray.output.ref).to_pandas().sort_values("flower_id", ignore_index=True)
    pd.testing.assert_frame_equal(a, b)
    edges = {(e.src, e.kind) for e in plinth.data.lineage(by_ray.output.ref, "upstream", depth=1).edges}
    assert edges == {("models:/iris/1", "predicted"), ("datasets:/flowers/1", "scored")}


def test_predict_batch_through_a_server(flowers, remote_sdk) -> None:  # type: ignore[no-untyped-def]
    """With PLINTH_URI set, the same call reads, loads and writes through the server's API."""
    result = plinth.serving.predict_batch("models:/iris/1", "flowers@spring", "remote_scores", batch_size=200)
    assert (result.output.ref, result.rows) == ("datasets:/remote_scores/1", 450)
    assert plinth.data.read("datasets:/remote_scores/1").num_rows == 450
    edges = {(e.src, e.kind) for e in plinth.data.lineage("datasets:/remote_scores/1", "upstream", depth=1).edges}
    assert edges == {("models:/iris/1", "predicted"), ("datasets:/flowers/1", "scored")}
    with pytest.raises(InvalidInput, match="executor 'ray' reads the table files itself"):
        plinth.serving.predict_batch("models:/iris/1", "flowers", "remote_ray", executor="ray")
    assert "remote_ray" not in _datasets()
