"""Batch inference jobs through every door: the job record and its events (embedded), the REST
routes (checked up front, run as the caller, permissions), the remote SDK and CLI, the page."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

import plinth
from plinth.core.errors import InvalidInput, NotFound
from plinth.core.platform import Platform
from plinth.core.settings import load_settings
from plinth.governance import service as gov
from plinth.serving import jobs
from plinth.serving.tables import BatchJob
from plinth.store.events import Event


def _count(platform: Platform, table: Any) -> int:
    with platform.db.session() as session:
        return int(session.execute(select(func.count()).select_from(table)).scalar_one())


def _job_events(platform: Platform, job_id: str) -> list[tuple[str, str]]:
    with platform.db.session() as session:
        rows = session.execute(
            select(Event.action, Event.actor).where(Event.resource == f"batch-jobs:/{job_id}").order_by(Event.seq)
        ).all()
    return [(a, b) for a, b in rows]


def _datasets() -> set[str]:
    return {d.name for d in plinth.data.list_datasets()}


def test_every_batch_inference_is_a_recorded_job(flowers, platform: Platform, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = plinth.serving.predict_batch("models:/iris/1", "flowers@spring", "scores", batch_size=100)
    (job,) = plinth.serving.list_batch_jobs()
    assert (job.state, job.model, job.input, job.output, job.output_version) == (
        "succeeded",
        "models:/iris/1",
        "datasets:/flowers/1",
        "scores",
        result.output.ref,
    )
    assert (job.rows, job.total_rows, job.batch_size, job.executor, job.error) == (450, 450, 100, "local", "")
    assert job.started_at is not None and job.finished_at is not None and job.started_at <= job.finished_at
    assert job.seconds is not None and job.seconds > 0 and not job.stale
    assert plinth.serving.get_batch_job(job.id) == job
    assert [a for a, _ in _job_events(platform, job.id)] == ["batch_job.create", "batch_job.start", "batch_job.succeed"]

    # a failure while scoring: the job says why, and no output version was written
    frame = flowers[1].copy()
    frame.loc[400, "sepal_width"] = float("nan")
    plinth.data.ingest("holes", frame)
    with pytest.raises(InvalidInput, match="failed on a batch of the input"):
        plinth.serving.predict_batch("models:/iris/1", "holes", "scores", batch_size=50)
    failed = plinth.serving.list_batch_jobs(state="failed")
    assert len(failed) == 1 and failed[0].output_version is None and failed[0].error_code == "invalid_input"
    assert "failed on a batch of the input" in failed[0].error and failed[0].rows < 450
    assert [a for a, _ in _job_events(platform, failed[0].id)][-1] == "batch_job.fail"
    assert plinth.data.get_dataset("scores").dataset.latest_version == 1
    assert [j.state for j in plinth.serving.list_batch_jobs()] == ["failed", "succeeded"]  # newest first

    # refused while planning (unknown model, missing column): no job, no dataset
    jobs_before, datasets_before = _count(platform, BatchJob), _datasets()
    with pytest.raises(NotFound, match="iris_nope"):
        plinth.serving.predict_batch("models:/iris_nope/1", "flowers", "other")
    plinth.data.ingest("no_petals", flowers[1].drop(columns=["petal_width"]))
    with pytest.raises(InvalidInput, match="has no column 'petal_width' that the model needs"):
        plinth.serving.predict_batch("models:/iris/1", "no_petals", "other")
    assert _count(platform, BatchJob) == jobs_before
    assert _datasets() == datasets_before | {"no_petals"}

    with pytest.raises(InvalidInput, match="state must be one of queued, running, succeeded, failed"):
        plinth.serving.list_batch_jobs(state="done")

    # the CLI door: list and show
    from test_serving_deployments import plinth_cli

    home = tmp_path / "home"
    out = plinth_cli(home, "batch-jobs", "--json")
    assert out.exit_code == 0 and [j["state"] for j in json.loads(out.output)] == ["failed", "succeeded"]
    out = plinth_cli(home, "batch-jobs", job.id, "--json")
    assert out.exit_code == 0 and json.loads(out.output)["output_version"] == result.output.ref
    out = plinth_cli(home, "batch-jobs", "--state", "done")
    assert out.exit_code == 2 and "state must be one of queued, running, succeeded, failed" in out.output
    with pytest.raises(NotFound, match="batch job 'nope' does not exist"):
        plinth.serving.get_batch_job("nope")


def test_a_job_whose_runner_stopped_shows_as_stale(flowers, platform: Platform, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    caller = platform.caller()

    def record(output: str) -> Any:
        options = {"executor": "local", "workers": 1, "batch_size": 10}
        return caller.call(
            jobs.record_job,
            model="models:/iris/1",
            input="datasets:/flowers/1",
            output=output,
            options=options,
            total_rows=450,
            trust=False,
        )

    job = record("never")
    caller.call(jobs.start_job, id=job.id)
    assert caller.call(jobs.get_job, id=job.id).stale is False
    later = platform.clock() + jobs.STALE_AFTER + timedelta(seconds=1)
    future = Platform(load_settings(home=tmp_path / "home"), clock=lambda: later)
    try:
        seen = future.caller().call(jobs.get_job, id=job.id)
    finally:
        future.close()
    assert (seen.state, seen.stale) == ("running", True)
    with pytest.raises(InvalidInput, match=f"batch job {job.id} is running, not queued"):
        caller.call(jobs.start_job, id=job.id)

    # closing stale jobs: admins only; a job still reporting is left alone
    from plinth.core.context import Actor, Grant
    from plinth.core.errors import PermissionDenied

    fresh = record("later")
    future = Platform(load_settings(home=tmp_path / "home"), clock=lambda: later)
    try:
        caller.call(jobs.job_progress, id=fresh.id, rows=0)  # reporting...
        future.caller().call(jobs.job_progress, id=fresh.id, rows=10)  # ...and still, at the later time
        editor = Actor(name="eve", user_id="eve", grants={"default": Grant("editor")})
        with pytest.raises(PermissionDenied):
            future.caller(editor).call(jobs.close_stale_jobs)
        assert caller.call(jobs.get_job, id=job.id).state == "running"  # the refusal changed nothing
        (closed,) = future.caller().call(jobs.close_stale_jobs)
        assert (closed.id, closed.state, closed.error_code, closed.stale) == (job.id, "failed", "stale", False)
        assert f"its runner {job.runner} stopped reporting at" in closed.error and "closed by local" in closed.error
        assert future.caller().call(jobs.get_job, id=fresh.id).state == "queued"
        assert future.caller().call(jobs.close_stale_jobs) == []  # nothing left to close
    finally:
        future.close()
    assert _job_events(platform, job.id)[-1] == ("batch_job.fail", "local")


def test_the_number_of_jobs_a_server_runs_at_once_is_configurable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(jobs.MAX_RUNNING_ENV, raising=False)
    assert jobs.max_running() == jobs.MAX_RUNNING == 2
    monkeypatch.setenv(jobs.MAX_RUNNING_ENV, "5")
    assert jobs.max_running() == 5
    for bad in ("0", "65", "two", "-1"):
        monkeypatch.setenv(jobs.MAX_RUNNING_ENV, bad)
        with pytest.raises(
            InvalidInput, match=f"PLINTH_BATCH_JOBS_MAX_RUNNING must be a whole number from 1 to 64, got '{bad}'"
        ):
            jobs.max_running()


def _wait(client: Any, job_id: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body = client.get(f"/api/v1/batch-jobs/{job_id}").json()
        if body["state"] in ("succeeded", "failed") or time.monotonic() > deadline:
            return body  # type: ignore[no-any-return]
        time.sleep(0.1)


def test_rest_jobs_are_checked_first_run_as_the_caller_and_listed(flowers, live_server) -> None:  # type: ignore[no-untyped-def]
    platform = live_server.platform
    admin = platform.caller()
    for name, role in (("vic", "viewer"), ("eddie", "editor")):
        admin.call(gov.create_user, name=name)
        admin.call(gov.grant_role, user=name, role=role)
    viewer = admin.call(gov.create_token, name="v", user="vic").token
    editor = admin.call(gov.create_token, name="e", user="eddie").token
    plinth.data.ingest("no_petals", flowers[1].drop(columns=["petal_width"]))
    request = {"model": "models:/iris/1", "input": "datasets:/flowers@spring", "output": "rest_scores"}
    jobs_before, datasets_before = _count(platform, BatchJob), _datasets()

    with live_server.client(editor) as c:
        # refused up front, each naming what is wrong; nothing is written
        r = c.post("/api/v1/batch-jobs", json={**request, "model": "models:/iris_nope/1"})
        assert r.status_code == 404 and "iris_nope" in r.json()["error"]["message"]
        r = c.post("/api/v1/batch-jobs", json={**request, "model": "models:/iris@champion"})
        assert r.status_code == 404 and "alias 'champion'" in r.json()["error"]["message"]
        r = c.post("/api/v1/batch-jobs", json={**request, "input": "datasets:/nothing@1"})
        assert r.status_code == 404 and "dataset 'nothing' does not exist" in r.json()["error"]["message"]
        r = c.post("/api/v1/batch-jobs", json={**request, "input": "no_petals"})
        assert r.status_code == 400
        assert "has no column 'petal_width' that the model needs" in r.json()["error"]["message"]
        assert r.json()["error"]["details"]["field"] == "petal_width"
        r = c.post("/api/v1/batch-jobs", json={**request, "executor": "ray"})
        assert r.status_code == 400 and "the server's batch jobs run executor 'local'" in r.json()["error"]["message"]
        r = c.post("/api/v1/batch-jobs", json={**request, "workers": 0})
        assert r.status_code == 400 and "workers must be a positive number" in r.json()["error"]["message"]
        r = c.post("/api/v1/batch-jobs", json={"model": "models:/iris/1", "input": "flowers"})
        assert r.status_code == 400 and r.json()["error"]["message"].startswith("output:")
        # a format that runs code when loaded would run it in the server: admins only
        r = c.post("/api/v1/batch-jobs", json={**request, "trust": True})
        assert r.status_code == 403, r.text
        assert "'eddie' is a editor in project 'default'; administering needs admin" in r.json()["error"]["message"]
    with live_server.client(viewer) as c:
        r = c.post("/api/v1/batch-jobs", json={**request, "model": "models:/iris/1"})
        assert r.status_code == 403 and "'vic' is a viewer" in r.json()["error"]["message"]
        r = c.post("/api/v1/batch-jobs/close-stale")
        assert r.status_code == 403 and "'vic' is a viewer" in r.json()["error"]["message"]
    with live_server.client(live_server.admin_token) as c:
        r = c.post("/api/v1/batch-jobs/close-stale")
        assert r.status_code == 200 and r.json() == []  # none stale
    assert _count(platform, BatchJob) == jobs_before and _datasets() == datasets_before

    with live_server.client(editor) as c:
        r = c.post("/api/v1/batch-jobs", json={**request, "batch_size": 100})
        assert r.status_code == 202, r.text
        submitted = r.json()
        assert submitted["state"] in ("queued", "running", "succeeded") and submitted["created_by"] == "eddie"
        assert (submitted["model"], submitted["input"], submitted["total_rows"]) == (
            "models:/iris/1",
            "datasets:/flowers/1",
            450,
        )
        done = _wait(c, submitted["id"])
        assert done["state"] == "succeeded", done
        assert (done["output_version"], done["rows"]) == ("datasets:/rest_scores/1", 450)
        listed = c.get("/api/v1/batch-jobs").json()
        assert [j["id"] for j in listed] == [submitted["id"]]
        assert c.get("/api/v1/batch-jobs", params={"state": "failed"}).json() == []
        assert c.get("/api/v1/batch-jobs", params={"state": "nope"}).status_code == 400
        assert c.get("/api/v1/batch-jobs/nope").status_code == 404
    # the output was written as eddie: the dataset version and every event of the job name him
    version = plinth.data.get_version("datasets:/rest_scores/1")
    assert version.row_count == 450
    assert _job_events(platform, submitted["id"]) == [
        ("batch_job.create", "eddie"),
        ("batch_job.start", "eddie"),
        ("batch_job.succeed", "eddie"),
    ]
    with live_server.client(viewer) as c:  # a viewer reads jobs
        assert [j["state"] for j in c.get("/api/v1/batch-jobs").json()] == ["succeeded"]

    # a job that fails while scoring is recorded as failed, with the reason
    frame = flowers[1].copy()
    frame.loc[400, "sepal_width"] = float("nan")
    plinth.data.ingest("holes", frame)
    with live_server.client(editor) as c:
        r = c.post(
            "/api/v1/batch-jobs",
            json={"model": "models:/iris/1", "input": "holes", "output": "rest_scores", "batch_size": 50},
        )
        assert r.status_code == 202
        failed = _wait(c, r.json()["id"])
    assert failed["state"] == "failed" and failed["error_code"] == "invalid_input"
    assert "failed on a batch of the input" in failed["error"] and failed["output_version"] is None
    assert plinth.data.get_dataset("rest_scores").dataset.latest_version == 1


def test_remote_sdk_and_cli_submit_jobs_and_the_page_lists_them(flowers, remote_sdk, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    seen: list[int] = []
    result = plinth.serving.predict_batch("models:/iris/1", "flowers@spring", "remote_scores", progress=seen.append)
    assert (result.output.ref, result.rows, result.model, result.input) == (
        "datasets:/remote_scores/1",
        450,
        "models:/iris/1",
        "datasets:/flowers/1",
    )
    (job,) = plinth.serving.list_batch_jobs()
    assert (job.state, job.output_version, job.created_by) == ("succeeded", "datasets:/remote_scores/1", "admin")
    assert job.runner.endswith(f":{os.getpid()}")  # run by the server (here: a thread of this process)
    # a failure while scoring comes back as the same error
    frame = flowers[1].copy()
    frame.loc[400, "sepal_width"] = float("nan")
    plinth.data.ingest("holes", frame)
    with pytest.raises(InvalidInput, match="failed on a batch of the input"):
        plinth.serving.predict_batch("models:/iris/1", "holes", "remote_scores", batch_size=50)

    env = {k: v for k, v in os.environ.items() if not k.startswith("PLINTH_")}
    env.update(
        PLINTH_HOME=str(tmp_path / "cli-home"),
        PLINTH_URI=remote_sdk.url,
        PLINTH_TOKEN=remote_sdk.admin_token,
        PLINTH_SYSTEM_METRICS="0",
        PLINTH_CAPTURE_ENVIRONMENT="0",
    )
    cmd = [sys.executable, "-m", "plinth.cli.main", "predict", "--model", "models:/iris/1", "--input", "flowers"]
    ok = subprocess.run(
        [*cmd, "--output", "cli_scores", "--json"], env=env, capture_output=True, text=True, timeout=120
    )
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["output"]["ref"] == "datasets:/cli_scores/1"
    bad = subprocess.run(
        [*cmd, "--output", "cli_scores", "--keep-columns", "colour"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and "keep column 'colour' is not a column of datasets:/flowers/1" in bad.stderr
    states = [j.state for j in plinth.serving.list_batch_jobs()]
    assert states == ["succeeded", "failed", "succeeded"]

    with remote_sdk.client(remote_sdk.admin_token) as c:
        page = c.get("/serving")
    assert page.status_code == 200
    assert 'data-testid="batch-jobs"' in page.text
    assert '<a href="/data/cli_scores?version=1" data-testid="job-output">datasets:/cli_scores/1</a>' in page.text
    assert '<a href="/data/remote_scores?version=1" data-testid="job-output">' in page.text
    assert 'data-state="failed"' in page.text and "failed on a batch of the input" in page.text


def test_job_and_worker_records_on_both_databases(any_platform: Platform) -> None:
    """The records and their queries, on SQLite and PostgreSQL (the migration's columns, the
    quoted ``group`` column, newest-first ordering, the state filter)."""
    from plinth.serving import stream_workers as sw

    caller = any_platform.caller()
    options = {"executor": "local", "workers": 1, "batch_size": 10, "keep_columns": ["id"], "tags": ["t"]}
    made = [
        caller.call(
            jobs.record_job,
            model="models:/m/1",
            input=f"datasets:/d/{i}",
            output="out",
            options=options,
            total_rows=10,
            trust=False,
        )
        for i in (1, 2)
    ]
    caller.call(jobs.start_job, id=made[0].id)
    done = caller.call(jobs.finish_job, id=made[0].id, rows=10, seconds=0.5, output_version="datasets:/out/1")
    assert (done.state, done.output_version, done.keep_columns, done.tags) == (
        "succeeded",
        "datasets:/out/1",
        ["id"],
        ["t"],
    )
    assert done.output_dataset_version == ("out", 1) and done.rows_per_second == 20.0
    assert [j.id for j in caller.call(jobs.list_jobs)] == [made[1].id, made[0].id]
    assert [j.id for j in caller.call(jobs.list_jobs, state="queued")] == [made[1].id]
    assert caller.call(jobs.list_jobs, limit=1)[0].id == made[1].id

    worker = caller.call(
        sw.register_worker,
        source="redis://:secret@127.0.0.1:6379/0/in",
        group="g",
        consumer="c",
        sink="redis://127.0.0.1:6379/0/out",
        model="models:/m/1",
    )
    assert worker.source == "redis://127.0.0.1:6379/0/in"  # no credentials stored
    counts = {"consumed": 4, "acked": 3, "predicted": 2, "dead": 1, "reclaimed": 0, "batches": 1}
    seen = caller.call(sw.report_worker, id=worker.id, counts=counts)
    assert (seen.state, seen.consumed, seen.acked, seen.in_hand) == ("running", 4, 3, 1)
    stopped = caller.call(sw.report_worker, id=worker.id, counts={**counts, "acked": 4}, state="stopped")
    assert (stopped.state, stopped.acked, stopped.stopped_at is not None) == ("stopped", 4, True)
    assert [w.id for w in caller.call(sw.list_workers)] == [worker.id]


def test_a_server_runs_jobs_one_slot_at_a_time_the_rest_wait_queued(  # type: ignore[no-untyped-def]
    flowers, live_server, monkeypatch: pytest.MonkeyPatch
) -> None:

    monkeypatch.setenv(jobs.MAX_RUNNING_ENV, "1")
    monkeypatch.setattr(jobs, "_slots", None)  # made again, from the environment, by the first job
    with live_server.client(live_server.admin_token) as c:
        ids = []
        for name in ("first", "second", "third"):
            r = c.post("/api/v1/batch-jobs", json={"model": "models:/iris/1", "input": "flowers", "output": name})
            assert r.status_code == 202, r.text
            ids.append(r.json()["id"])
        done = [_wait(c, i) for i in ids]
    assert [d["state"] for d in done] == ["succeeded"] * 3
    from datetime import datetime

    spans = sorted((datetime.fromisoformat(d["started_at"]), datetime.fromisoformat(d["finished_at"])) for d in done)
    assert all(spans[i][1] <= spans[i + 1][0] for i in range(2))  # one after the other, never together
    assert {d["output_version"] for d in done} == {"datasets:/first/1", "datasets:/second/1", "datasets:/third/1"}


@pytest.mark.browser
def test_the_serving_page_in_a_browser_links_a_job_to_its_output(flowers, remote_sdk, page) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    plinth.serving.predict_batch("models:/iris/1", "flowers@spring", "browser_scores")
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.set_default_timeout(5000)
    page.goto(f"{remote_sdk.url}/login?token={remote_sdk.admin_token}")
    page.goto(f"{remote_sdk.url}/serving")
    table = page.get_by_test_id("batch-jobs")
    expect(table.locator("tbody tr")).to_have_count(1)
    expect(table.locator("td[data-state]")).to_contain_text("succeeded")
    expect(table).to_contain_text("models:/iris/1")
    expect(table).to_contain_text("450 / 450")
    page.shot("serving-jobs")
    table.get_by_test_id("job-output").click()
    expect(page).to_have_url(f"{remote_sdk.url}/data/browser_scores?version=1")
    expect(page.get_by_test_id("current-version")).to_have_text("version 1")
    assert not errors, errors
