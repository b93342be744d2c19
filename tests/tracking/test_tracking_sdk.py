"""The tracking SDK as a user writes it: embedded (PLINTH_URI unset) on SQLite."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import plinth
from plinth.core.errors import Conflict, InvalidInput, NotFound
from plinth.tracking import sdk


def test_a_training_loop_logs_and_everything_is_stored_at_the_end() -> None:
    plinth.set_experiment("churn")
    with plinth.start_run(name="rf", tags={"team": "risk"}) as run:
        plinth.log_params({"model": "rf", "n_estimators": 200})
        plinth.log_param("model", "rf")  # the same value again is fine
        for step in range(300):
            plinth.log_metrics({"loss": 1 / (step + 1), "acc": step / 300}, step=step)
        plinth.log_metric("nan", math.nan)
        plinth.log_metric("inf", -math.inf)
        plinth.set_tag("stage", "dev")
        assert plinth.active_run() is run
    assert plinth.active_run() is None
    detail = plinth.get_run(run.id)
    assert detail.status == "finished" and detail.experiment == "churn" and detail.end_time is not None
    assert detail.params == {"model": "rf", "n_estimators": "200"}
    assert detail.tags == {"team": "risk", "stage": "dev"}
    assert detail.metrics["loss"].step == 299 and detail.metrics["loss"].value == 1 / 300
    assert math.isnan(detail.metrics["nan"].value) and detail.metrics["inf"].value == -math.inf
    history = plinth.get_metric_history(run.id, "loss")
    assert history.steps == list(range(300))
    df = plinth.search_runs("churn", "params.model = 'rf' and metrics.acc > 0.5", order_by="metrics.acc desc")
    assert list(df["run_id"]) == [run.id]
    assert df.loc[0, "metrics.loss"] == 1 / 300 and df.loc[0, "params.model"] == "rf"
    assert df.loc[0, "tags.team"] == "risk" and str(df["start_time"].dtype).startswith("datetime64")


def test_steps_default_to_one_more_than_the_last_and_calls_return_at_once() -> None:
    with plinth.start_run() as run:
        t = time.perf_counter()
        for i in range(2000):
            plinth.log_metric("x", float(i))
        per_call = (time.perf_counter() - t) / 2000
        plinth.log_metric("y", 1.0, step=10)
        plinth.log_metric("y", 2.0)
        plinth.flush()
        assert plinth.get_metric_history(run.id, "x").steps == list(range(2000))
        assert plinth.get_metric_history(run.id, "y").steps == [10, 11]
    assert per_call < 0.001  # buffered: no database work in the loop (the benchmark has the real figure)


def test_an_exception_marks_the_run_failed_with_the_error_and_nested_runs_nest() -> None:
    with pytest.raises(ZeroDivisionError), plinth.start_run(name="outer") as outer:
        with plinth.start_run(name="inner") as inner:
            plinth.log_metric("m", 1.0)
        assert plinth.active_run() is outer
        1 / 0  # noqa: B018
    failed = plinth.get_run(outer.id)
    assert failed.status == "failed" and "ZeroDivisionError: division by zero" in (failed.error or "")
    child = plinth.get_run(inner.id)
    assert child.status == "finished" and child.parent_id == outer.id
    with pytest.raises(KeyboardInterrupt), plinth.start_run() as killed:
        raise KeyboardInterrupt
    assert plinth.get_run(killed.id).status == "killed"


def test_logging_to_an_ended_run_or_without_one_is_an_error() -> None:
    with pytest.raises(InvalidInput, match="no active run: start one with"):
        plinth.log_metric("m", 1.0)
    with plinth.start_run() as run:
        pass
    for call in (
        lambda: run.log_metric("m", 1.0),
        lambda: run.log_param("p", 1),
        lambda: run.set_tag("t", "x"),
        lambda: run.log_text("x", "a.txt"),
    ):
        with pytest.raises(Conflict, match=f"run '{run.id}' has ended"):
            call()
    with pytest.raises(Conflict, match=f"run '{run.id}' is finished; only a running run takes"):
        plinth.log_batch(metrics=[("m", 1.0, 0)], run_id=run.id)


def test_bad_input_is_refused_by_the_call_and_nothing_is_written() -> None:
    with plinth.start_run() as run:
        with pytest.raises(InvalidInput, match=r"metric 'acc' must be a number, got 'high' \(str\)"):
            plinth.log_metric("acc", "high")  # type: ignore[arg-type]
        with pytest.raises(InvalidInput, match="metric key 'a\\?' is not valid"):
            plinth.log_metric("a?", 1.0)
        plinth.log_param("lr", 0.1)
        with pytest.raises(Conflict, match="param 'lr' of run .* is already '0.1'"):
            plinth.log_param("lr", 0.2)
        with pytest.raises(InvalidInput, match="param 'big' is 7000 characters long; the limit is 6000"):
            plinth.log_param("big", "x" * 7000)
        with pytest.raises(InvalidInput, match="is refused"):
            plinth.log_text("x", "../../other/x.txt")
        plinth.log_metric("ok", 1.0)  # numpy and other real numbers are fine
        import numpy as np

        plinth.log_metric("np", np.float32(0.5))
        plinth.log_metric("np0d", np.array(2.0))
    detail = plinth.get_run(run.id)
    assert detail.params == {"lr": "0.1"} and set(detail.metrics) == {"ok", "np", "np0d"}
    assert plinth.list_artifacts(f"runs:/{run.id}") == []
    with pytest.raises(NotFound, match="run 'missing' does not exist"):
        plinth.get_run("missing")
    with pytest.raises(InvalidInput, match=r"invalid filter at position 14 \(near 'banana'\)"):
        plinth.search_runs(filter="metrics.auc > banana")


def test_artifacts_text_dict_files_folders_and_tables(tmp_path: Path) -> None:
    (tmp_path / "out" / "sub").mkdir(parents=True)
    (tmp_path / "out" / "a.txt").write_text("A")
    (tmp_path / "out" / "sub" / "b.json").write_text("{}")
    (tmp_path / "model.bin").write_bytes(b"\x00\x01")
    import pandas as pd

    with plinth.start_run() as run:
        plinth.log_text("hello", "notes/readme.txt")
        plinth.log_dict({"a": 1}, "config.json")
        plinth.log_dict({"a": 1}, "config.yaml")
        plinth.log_artifact(tmp_path / "model.bin")
        plinth.log_artifact(tmp_path / "model.bin", name="model/weights.bin")
        plinth.log_artifacts(tmp_path / "out", prefix="outputs")
        plinth.log_table(pd.DataFrame({"x": [1, 2], "y": ["a", "b"]}), "tables/preview")
        with pytest.raises(InvalidInput, match="is not a file"):
            plinth.log_artifact(tmp_path / "nope.bin")
    owner = f"runs:/{run.id}"
    names = [a.name for a in plinth.list_artifacts(owner)]
    assert names == [
        "config.json",
        "config.yaml",
        "model.bin",
        "model/weights.bin",
        "notes/readme.txt",
        "outputs/a.txt",
        "outputs/sub/b.json",
        "tables/preview.parquet",
    ]
    assert json.loads(plinth.read_artifact(owner, "config.json")) == {"a": 1}
    assert plinth.read_artifact(owner, "notes/readme.txt") == b"hello"
    import io

    assert list(pd.read_parquet(io.BytesIO(plinth.read_artifact(owner, "tables/preview.parquet")))["y"]) == ["a", "b"]


def test_environment_capture_and_system_metrics(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("PLINTH_SYSTEM_METRICS_INTERVAL", "0.05")
    with plinth.start_run(capture_environment=True, system_metrics=True) as run:
        time.sleep(0.3)
    assert "system metrics sample failed" not in caplog.text
    monkeypatch.setenv("PLINTH_SYSTEM_METRICS_INTERVAL", "60")
    with plinth.start_run(system_metrics=True) as short:  # a short run still has a first and a last sample
        pass
    assert len(plinth.get_metric_history(short.id, "system/cpu_percent")) == 2
    detail = plinth.get_run(run.id)
    assert detail.tags["plinth.python.version"] == ".".join(map(str, sys.version_info[:3]))
    assert detail.tags["plinth.host"] and detail.tags["plinth.source.entry_point"]
    assert "plinth.source.command" in detail.tags
    assert len(detail.tags.get("plinth.git.commit", "")) == 40  # the tests run inside the repository
    assert detail.tags["plinth.git.branch"]
    lock = plinth.read_artifact(f"runs:/{run.id}", "environment/requirements.txt").decode()
    assert "sqlalchemy==" in lock.lower() and "pydantic==" in lock.lower()
    assert {"system/cpu_percent", "system/memory_percent", "system/memory_used_mb"} <= set(detail.metrics)
    assert len(plinth.get_metric_history(run.id, "system/cpu_percent")) >= 3


def test_a_normal_exit_stores_every_buffered_point(tmp_path: Path) -> None:
    script = """
import plinth
run = plinth.start_run(name="exit")
for i in range(5000):
    plinth.log_metric("m", float(i))
print(run.id)
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLINTH_")}
    env.update(
        PLINTH_HOME=str(tmp_path / "home"),
        PLINTH_SYSTEM_METRICS="0",
        PLINTH_CAPTURE_ENVIRONMENT="0",
        PLINTH_METRICS_FLUSH_INTERVAL="60",  # nothing is flushed before the exit
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    run_id = out.stdout.strip()
    from plinth.core.platform import Platform
    from plinth.core.settings import load_settings
    from plinth.tracking import service as svc

    platform = Platform(load_settings(home=tmp_path / "home"))
    try:
        c = platform.caller()
        assert c.call(svc.get_run, run_id=run_id).status == "finished"
        assert len(c.call(svc.metric_history, run_id=run_id, key="m")) == 5000
    finally:
        platform.close()


def test_the_buffer_bounds_memory_and_reports_failures() -> None:
    from plinth.tracking.buffer import MetricBuffer

    sent: list[int] = []

    def send(run_id: str, project: str | None, rows: list) -> None:  # type: ignore[type-arg]
        if run_id == "bad":
            raise NotFound("run 'bad' does not exist")
        time.sleep(0.01)
        sent.append(len(rows))

    buf = MetricBuffer(send, batch_size=100, max_points=500, interval=10)
    for i in range(3000):
        buf.add(("good", None, "m", float(i), i, 0))
        assert buf.pending() <= 2 * 500  # waiting points plus the batch being stored
    buf.add(("bad", None, "m", 1.0, 0, 0))
    buf.flush("good")
    assert sum(sent) == 3000 and max(sent) <= 10_000
    with pytest.raises(NotFound, match="run 'bad' does not exist"):
        buf.flush("bad")
    buf.flush("bad")  # the error was reported once
    buf.close()


def test_search_runs_dataframe_and_table_outputs() -> None:
    plinth.set_experiment("s")
    for i in range(3):
        with plinth.start_run(name=f"r{i}"):
            plinth.log_params({"i": i})
            plinth.log_metric("m", float(i))
    df = plinth.search_runs("s", order_by=["metrics.m desc"])
    assert list(df["name"]) == ["r2", "r1", "r0"] and list(df["metrics.m"]) == [2.0, 1.0, 0.0]
    table = plinth.search_runs(["s"], max_results=2, output="table")
    assert len(table) == 2 and table.next_page_token == "2"
    with pytest.raises(InvalidInput, match="output must be"):
        plinth.search_runs(output="csv")
    cmp = plinth.compare_runs(list(df["run_id"][:2]))
    assert cmp.params_differ == ["i"]
    plinth.delete_run(df["run_id"][0])
    assert list(plinth.search_runs("s")["name"]) == ["r1", "r0"]
    assert [e.name for e in plinth.list_experiments()] == ["s"]
    assert sdk.active_run() is None


def test_the_demo_step_trains_searches_and_compares() -> None:
    from plinth.demo import STEPS, DemoState, step_tracking

    assert step_tracking in [fn for _, fn in STEPS]
    plinth.create_project("demo")
    lines: list[str] = []
    state = DemoState(echo=lines.append)
    step_tracking(state)
    assert lines[0].startswith("  3 runs tracked; lowest loss: logreg-lr1.0")
    assert "params that differ: learning_rate" in lines[1]
    best = plinth.get_run(state.facts["best_run"])
    assert best.project == "demo" and len(plinth.get_metric_history(best.id, "auc")) == 150
    assert best.metrics["auc"].value > 0.6
