"""Tracking over a live server: the REST routes, and the same SDK calls through PLINTH_URI."""

from __future__ import annotations

import math

import pytest

import plinth
from plinth.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied


def test_the_same_sdk_script_works_against_the_server(remote_sdk) -> None:  # type: ignore[no-untyped-def]
    plinth.set_experiment("remote")
    with plinth.start_run(name="r1", tags={"team": "risk"}) as run:
        plinth.log_params({"model": "rf", "depth": 4})
        for step in range(1500):
            plinth.log_metric("loss", 1 / (step + 1), step=step)
        plinth.log_metric("nan", math.nan)
        plinth.log_metric("inf", math.inf)
        import numpy as np

        plinth.log_batch(metrics=[("batch", -math.inf, 0), ("batch", 2.0, 1), ("np", np.float32(np.nan), 0)])
        plinth.log_text("hi", "notes/hi.txt")
        with plinth.start_run(name="child") as child:
            plinth.log_metric("c", 1.0)
        with pytest.raises(Conflict, match="param 'depth' of run .* is already '4'"):
            plinth.log_param("depth", 5)
        with pytest.raises(InvalidInput, match="is refused"):
            plinth.log_text("x", "../escape.txt")
    detail = plinth.get_run(run.id)
    assert detail.status == "finished" and detail.params == {"model": "rf", "depth": "4"}
    assert math.isnan(detail.metrics["nan"].value) and detail.metrics["inf"].value == math.inf
    assert detail.metrics["batch"].value == 2.0 and detail.metrics["loss"].step == 1499
    assert math.isnan(detail.metrics["np"].value)
    history = plinth.get_metric_history(run.id, "batch")
    assert history.values == [-math.inf, 2.0]
    assert len(plinth.get_metric_history(run.id, "loss")) == 1500
    assert len(plinth.get_metric_history(run.id, "loss", max_points=10)) == 10
    assert plinth.get_run(child.id).parent_id == run.id
    df = plinth.search_runs("remote", "params.model = 'rf' and metrics.loss < 0.01")
    assert list(df["run_id"]) == [run.id] and math.isnan(df.loc[0, "metrics.nan"])
    assert plinth.read_artifact(f"runs:/{run.id}", "notes/hi.txt") == b"hi"
    cmp = plinth.compare_runs([run.id, child.id])
    assert cmp.metrics["c"] == {run.id: None, child.id: 1.0}
    assert [e.name for e in plinth.list_experiments()] == ["remote"]
    with pytest.raises(NotFound, match="run 'nope' does not exist"):
        plinth.get_run("nope")
    with pytest.raises(InvalidInput, match=r"invalid filter at position 10 .*unexpected character '\?'"):
        plinth.search_runs(filter="metrics.a ? 1")
    plinth.delete_run(child.id)
    assert child.id not in set(plinth.search_runs("remote")["run_id"])


def test_batch_endpoint_and_its_errors(admin_client) -> None:  # type: ignore[no-untyped-def]
    run = admin_client.post("/api/v1/runs", json={"experiment": "api", "name": "x"}).json()
    url = f"/api/v1/runs/{run['id']}/batch"
    body = {
        "metrics": [["m", 1.5, 0, 1000], ["m", "NaN", 1, 1001], ["m", "-Infinity", 2, 1002]],
        "params": {"lr": 0.1},
        "tags": {"t": "v"},
    }
    r = admin_client.post(url, json=body)
    assert r.status_code == 200 and r.json() == {"metrics": 3, "params": 1, "tags": 1}
    history = admin_client.get(f"/api/v1/runs/{run['id']}/metrics/m").json()
    assert history["values"] == [1.5, "NaN", "-Infinity"] and history["steps"] == [0, 1, 2]
    got = admin_client.get(f"/api/v1/runs/{run['id']}").json()
    assert got["metrics"]["m"] == {"value": "-Infinity", "step": 2, "timestamp": 1002}
    before = admin_client.get("/api/v1/audit/events?limit=1000").json()
    r = admin_client.post(url, json={"metrics": [["ok", 1, 0, None], ["acc", "high", 0, None]]})
    assert r.status_code == 400
    assert r.json()["error"]["message"] == "metric 'acc' must be a number, got 'high' (str)"
    r = admin_client.post(url, json={"params": {"lr": 0.2}})
    assert r.status_code == 409 and "params are immutable" in r.json()["error"]["message"]
    r = admin_client.post(url, json={"params": {"p": "x" * 6001}})
    assert r.status_code == 400 and "the limit is 6000" in r.json()["error"]["message"]
    r = admin_client.post("/api/v1/runs/nope/batch", json=body)
    assert r.status_code == 404 and r.json()["error"]["message"] == "run 'nope' does not exist"
    r = admin_client.post("/api/v1/runs/search", json={"filter": "metrics.m >", "max_results": 10})
    assert r.status_code == 400 and r.json()["error"]["details"]["position"] == 11
    r = admin_client.post("/api/v1/runs/search", json={"max_results": 0})
    assert r.status_code == 400 and "max_results" in r.json()["error"]["message"]
    r = admin_client.put(f"/api/v1/run-artifacts?run_id={run['id']}&name=../../x", content=b"x")
    assert r.status_code == 400 and "is refused" in r.json()["error"]["message"]
    r = admin_client.post(f"/api/v1/runs/{run['id']}/end", json={"status": "done"})
    assert r.status_code == 400
    assert admin_client.get("/api/v1/audit/events?limit=1000").json() == before
    assert admin_client.post(f"/api/v1/runs/{run['id']}/end", json={"status": "killed"}).json()["status"] == "killed"
    r = admin_client.post(url, json={"metrics": [["m", 1, 3, None]]})
    assert r.status_code == 409 and "is killed; only a running run takes" in r.json()["error"]["message"]
    cmp = admin_client.get(f"/api/v1/runs/compare?run_ids={run['id']}").json()
    assert cmp["params"] == {"lr": {run["id"]: "0.1"}}
    assert admin_client.delete(f"/api/v1/runs/{run['id']}").status_code == 204


def test_viewers_cannot_log_through_the_server(live_server, admin_client) -> None:  # type: ignore[no-untyped-def]
    admin_client.post("/api/v1/projects", json={"name": "risk"})
    admin_client.post("/api/v1/users", json={"name": "vic"})
    admin_client.post("/api/v1/members?project=risk", json={"user": "vic", "role": "viewer"})
    token = admin_client.post("/api/v1/tokens", json={"name": "t", "user": "vic"}).json()["token"]
    run = admin_client.post("/api/v1/runs?project=risk", json={"experiment": "e"}).json()
    with live_server.client(token) as vic:
        assert vic.get(f"/api/v1/runs/{run['id']}").json()["project"] == "risk"
        r = vic.post(f"/api/v1/runs/{run['id']}/batch", json={"params": {"x": 1}})
        assert r.status_code == 403 and "'vic' is a viewer in project 'risk'" in r.json()["error"]["message"]
        r = vic.put(f"/api/v1/run-artifacts?run_id={run['id']}&name=a.txt", content=b"x")
        assert r.status_code == 403
        assert vic.post("/api/v1/runs?project=risk", json={}).status_code == 403
        assert vic.post("/api/v1/runs/search?project=risk", json={}).status_code == 200
        assert vic.get("/api/v1/experiments").status_code == 403  # no role in 'default'
    assert PermissionDenied.http_status == 403
