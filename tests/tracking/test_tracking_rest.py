"""Tracking over a live server: the REST routes, and the same SDK calls through PLINTH_URI."""

from __future__ import annotations

import json
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


def _seed_search_runs(platform) -> list[str]:  # type: ignore[no-untyped-def]
    from plinth.tracking import service as svc

    caller = platform.caller()
    ids = []
    for i, (model, auc) in enumerate([("rf", 0.95), ("gbm", 0.97), ("rf", 0.5), ("rf", math.nan)]):
        run = caller.call(svc.start_run, experiment="auth-search", name=f"r{i}")
        caller.call(svc.log_batch, run_id=run.id, params={"model": model}, metrics=[("auc", auc, 0, None)])
        ids.append(run.id)
    return ids


SEARCH_BODY = {"experiments": ["auth-search"], "filter": "metrics.auc > 0.9 and params.model = 'rf'"}


def test_search_route_still_checks_tokens_and_roles(live_server, admin_client) -> None:  # type: ignore[no-untyped-def]
    ids = _seed_search_runs(live_server.platform)
    with live_server.client() as anon:
        r = anon.post("/api/v1/runs/search", json=SEARCH_BODY)
        assert r.status_code == 401 and "token is required" in r.json()["error"]["message"]
        r = anon.post("/api/v1/runs/search", json=SEARCH_BODY, headers={"Authorization": "Basic abc"})
        assert r.status_code == 401 and "Bearer" in r.json()["error"]["message"]
    with live_server.client("plt_" + "z" * 43) as unknown:
        r = unknown.post("/api/v1/runs/search", json=SEARCH_BODY)
        assert r.status_code == 401 and r.json()["error"]["message"] == "the token is not known"
    admin_client.post("/api/v1/projects", json={"name": "risk"})
    admin_client.post("/api/v1/users", json={"name": "nora"})
    token = admin_client.post("/api/v1/tokens", json={"name": "t", "user": "nora"}).json()
    with live_server.client(token["token"]) as nora:
        r = nora.post("/api/v1/runs/search", json=SEARCH_BODY)  # no role in project 'default'
        assert r.status_code == 403 and r.json()["error"]["code"] == "permission_denied"
        admin_client.post("/api/v1/members?project=default", json={"user": "nora", "role": "viewer"})
        r = nora.post("/api/v1/runs/search", json=SEARCH_BODY)
        assert r.status_code == 200 and r.json()["run_id"] == [ids[0]]
        r = nora.post("/api/v1/runs/search?project=risk", json={})  # the project comes from the query
        assert r.status_code == 403 and r.json()["error"]["details"]["project"] == "risk"
        assert admin_client.delete(f"/api/v1/tokens/{token['id']}").json()["revoked_at"]
        r = nora.post("/api/v1/runs/search", json=SEARCH_BODY)
        assert r.status_code == 401 and "revoked" in r.json()["error"]["message"]


def test_token_lookup_runs_once_per_request_on_a_worker_thread(live_server, admin_client, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import asyncio

    from plinth.governance import service as governance

    _seed_search_runs(live_server.platform)
    lookups: list[bool] = []
    real = governance.authenticate

    def watched(*args, **kwargs):  # type: ignore[no-untyped-def]
        try:
            asyncio.get_running_loop()
            lookups.append(True)  # on the event loop: would block every other request
        except RuntimeError:
            lookups.append(False)
        return real(*args, **kwargs)

    monkeypatch.setattr(governance, "authenticate", watched)
    r = admin_client.post("/api/v1/runs/search", json=SEARCH_BODY)
    assert r.status_code == 200 and len(r.json()["run_id"]) == 1
    assert lookups == [False]
    page = admin_client.get("/experiments/auth-search", headers={"accept": "text/html"})
    assert page.status_code == 200 and "auth-search" in page.text
    assert lookups == [False, False]


def test_search_route_without_auth_answers_as_the_embedded_call(platform, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import threading
    import time

    import httpx
    import pandas as pd
    import uvicorn

    from plinth.governance import service as governance
    from plinth.server import deps
    from plinth.server.app import create_app
    from plinth.tracking import schemas as s
    from plinth.tracking import service as svc
    from tests_support import free_port_for_subprocess

    ids = _seed_search_runs(platform)
    hops: list[object] = []
    real_hop = deps.run_in_threadpool

    async def counted(fn, *args, **kwargs):  # type: ignore[no-untyped-def]
        hops.append(fn)
        return await real_hop(fn, *args, **kwargs)

    monkeypatch.setattr(deps, "run_in_threadpool", counted)
    monkeypatch.setattr(governance, "authenticate", lambda *a, **k: pytest.fail("no token lookup without auth"))
    port = free_port_for_subprocess()
    server = uvicorn.Server(uvicorn.Config(create_app(platform, auth=False), host="127.0.0.1", port=port))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the test server did not start"
        time.sleep(0.02)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as anon:
            for body in (SEARCH_BODY, {"experiments": ["auth-search"], "order_by": ["metrics.auc desc"]}):
                r = anon.post("/api/v1/runs/search", json=body)
                assert r.status_code == 200
                remote = s.RunTable.model_validate_json(r.content)
                embedded = platform.caller().call(svc.search_runs, **body)
                pd.testing.assert_frame_equal(remote.to_pandas(), embedded.to_pandas(), check_exact=True)
            assert remote.run_id == [ids[1], ids[0], ids[2], ids[3]]
            r = anon.post("/api/v1/runs/search?project=nope", json={})
            assert r.status_code == 404 and "nope" in r.json()["error"]["message"]
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    assert hops == []  # the anonymous actor needs no worker thread


def test_the_client_reads_json_as_the_json_module_does() -> None:
    import json

    from plinth.client.http import _json

    bodies = [
        b'{"run_id": ["a", "b"], "metrics": {"auc": [0.9, null, "NaN"]}, "next_page_token": null}',
        '{"name": "caf\u00e9 \u2603", "n": 1e308, "x": -0.0}'.encode(),
        b"[NaN, Infinity, -Infinity]",  # literals json accepts and orjson refuses
        b'{"big": 123456789012345678901234567890}',  # past 64 bits
        '{"utf16": "\u00e9"}'.encode("utf-16"),  # not UTF-8
        b"[0.30000000000000004, 2.2250738585072014e-308, 123456.789e-3, 5e-324, 9007199254740993]",
    ]
    for body in bodies:
        assert repr(_json(body)) == repr(json.loads(body)), body
    with pytest.raises(ValueError):
        _json(b'{"truncated": ')


def test_batch_endpoint_takes_points_by_column(admin_client) -> None:  # type: ignore[no-untyped-def]
    run = admin_client.post("/api/v1/runs", json={"experiment": "api", "name": "cols"}).json()
    url = f"/api/v1/runs/{run['id']}/batch"
    body = (
        b'{"series": {"loss": {"steps": [2, 0, 1], "values": [0.25, NaN, "Infinity"], "timestamps": [30, 10, 20]},'
        b' "acc": {"steps": [0, 1], "values": [1, 0.5], "timestamps": null}},'
        b' "metrics": [["loss", -Infinity, 3, 40]], "params": {"lr": 0.1}}'
    )
    r = admin_client.post(url, content=body, headers={"content-type": "application/json"})
    assert r.status_code == 200 and r.json() == {"metrics": 6, "params": 1, "tags": 0}
    loss = admin_client.get(f"/api/v1/runs/{run['id']}/metrics/loss").json()
    assert loss["steps"] == [0, 1, 2, 3] and loss["timestamps"] == [10, 20, 30, 40]
    assert loss["values"] == ["NaN", "Infinity", 0.25, "-Infinity"]
    acc = admin_client.get(f"/api/v1/runs/{run['id']}/metrics/acc").json()
    assert acc["values"] == [1.0, 0.5] and len(set(acc["timestamps"])) == 1 and acc["timestamps"][0] > 1.7e12
    schema = admin_client.get("/openapi.json").json()["paths"]["/api/v1/runs/{run_id}/batch"]["post"]
    assert "series" in schema["requestBody"]["content"]["application/json"]["schema"]["properties"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"series": {"m": {"steps": [0, 1], "values": [1.0]}}}, "series 'm' has 1 values, 2 steps and 1 timestamps"),
        ({"series": {"m": {"steps": [0.5], "values": [1.0]}}}, "step of metric 'm' must be an integer, got 0.5"),
        ({"series": {"m": {"steps": [0], "values": ["high"]}}}, "metric 'm' must be a number, got 'high' (str)"),
        ({"series": {"m": {"steps": [2**63], "values": [1.0]}}}, "step of metric 'm' is out of range"),
        ({"series": {"m": {"step": [0], "values": [1.0]}}}, "series 'm' has unknown field(s) 'step'"),
        ({"series": {"m": [1.0]}}, "series 'm' must be an object with steps, values and timestamps"),
        ({"series": {"m": {"values": 1.0}}}, "values of metric 'm' must be a list"),
        ({"series": {"m": {"values": [1.0]}}, "metric": []}, "unknown field(s) 'metric' in the request body"),
        ({"series": [1]}, "series must be an object or null, got list"),
        ({"metrics": {"m": 1}}, "metrics must be a list or null, got dict"),
        ([["m", 1, 0, None]], "the request body must be a JSON object, got list"),
        (b'{"series": {"m": {"values": [1.0,]}}}', "the request body is not valid JSON"),
        (b"\xff\xfe", "the request body is not valid JSON"),
    ],
)
def test_a_bad_batch_is_refused_whole(admin_client, body, message) -> None:  # type: ignore[no-untyped-def]
    run = admin_client.post("/api/v1/runs", json={"experiment": "api", "name": "bad"}).json()
    url = f"/api/v1/runs/{run['id']}/batch"
    before = admin_client.get("/api/v1/audit/events?limit=1000").json()
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    # a good series beside the bad part: nothing of the batch may be stored
    if isinstance(body, dict) and "series" in body and isinstance(body["series"], dict):
        body["series"]["ok"] = {"steps": [0], "values": [1.0]}
        content = json.dumps(body).encode()
    r = admin_client.post(url, content=content, headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text
    assert message in r.json()["error"]["message"]
    assert admin_client.get("/api/v1/audit/events?limit=1000").json() == before
    assert admin_client.get(f"/api/v1/runs/{run['id']}").json()["metrics"] == {}


def test_metric_values_cross_the_server_bit_for_bit(remote_sdk) -> None:  # type: ignore[no-untyped-def]
    import random
    import struct

    rng = random.Random(7)
    values = [struct.unpack("<d", rng.randbytes(8))[0] for _ in range(3000)]
    values = [v for v in values if v == v][:2000] + [5e-324, -0.0, 1.7976931348623157e308, 0.1, 1 / 3]
    plinth.set_experiment("bits")
    with plinth.start_run(name="bits") as run:
        plinth.log_batch(metrics=[("v", v, i) for i, v in enumerate(values)])
    got = plinth.get_metric_history(run.id, "v").values
    assert [struct.pack("<d", v) for v in got] == [struct.pack("<d", v) for v in values]
