"""Deployments through every door (service rules, REST, remote SDK, CLI, page, manifests), and
the traffic policy honoured by a server started from one: canary weights and a shadow."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from models_support import iris, iris_pipeline, log_with_services
from plinth.core.errors import Conflict, InvalidInput, NotFound
from plinth.core.platform import Platform
from plinth.registry import service as registry
from plinth.serving import service as svc
from tests_support import run_async


@pytest.fixture
def three_versions(platform: Platform) -> Platform:
    X, _ = iris()
    source = log_with_services(platform, iris_pipeline(), input_example=X.head(3))
    call = platform.caller().call
    for _ in range(3):
        call(registry.register_version, name="iris", source=source)
    call(registry.set_alias, name="iris", alias="champion", version=1)
    return platform


def events(platform: Platform) -> list[str]:
    from plinth.store.events import read_events

    with platform.context() as ctx:
        return [e.action for e in read_events(ctx.session, resource="deployments:/churn", limit=100)]


def test_service_creates_lists_updates_deletes_and_records_events(three_versions: Platform) -> None:
    call = three_versions.caller().call
    d = call(svc.create_deployment, name="churn", models={"models:/iris@champion": 90, "models:/iris/2": 10})
    assert [(t.uri, t.weight) for t in d.traffic] == [("models:/iris@champion", 90), ("models:/iris/2", 10)]
    assert (d.status, d.replicas, d.shadow, d.policy) == ("created", 1, None, "canary")
    d = call(svc.update_deployment, name="churn", shadow="models:/iris/3", replicas=3)
    assert (d.shadow, d.replicas, d.policy) == ("models:/iris/3", 3, "canary+shadow")
    assert [x.name for x in call(svc.list_deployments)] == ["churn"]
    d = call(svc.update_deployment, name="churn", models="models:/iris/2", clear_shadow=True)
    assert [(t.uri, t.weight) for t in d.traffic] == [("models:/iris/2", 100)] and d.policy == "single"
    call(svc.delete_deployment, name="churn")
    with pytest.raises(NotFound, match="deployment 'churn' does not exist in project 'default'"):
        call(svc.get_deployment, name="churn")
    assert events(three_versions) == [
        "deployment.create",
        "deployment.update",
        "deployment.update",
        "deployment.delete",
    ]


REFUSED: list[tuple[dict[str, Any], type[Exception], str]] = [
    (
        {"models": {"models:/iris/1": 90, "models:/iris/2": 20}},
        InvalidInput,
        "traffic weights add up to 110, not 100",
    ),
    ({"models": ["models:/iris/1", "models:/iris/2"]}, InvalidInput, "several models need a weight each"),
    (
        {"models": {"models:/iris/1": 50, "models:/iris@champion": 50}},
        InvalidInput,
        "'models:/iris@champion' and 'models:/iris/1' are the same version (iris 1)",
    ),
    (
        {"models": "models:/iris/1", "shadow": "models:/iris@champion"},
        InvalidInput,
        "the shadow 'models:/iris@champion' is also serving traffic",
    ),
    (
        {"models": "models:/iris/1", "sticky_key": "user id; drop"},
        InvalidInput,
        "sticky key 'user id; drop' must be 1-100 letters, digits",
    ),
    ({"models": "models:/iris/1", "replicas": 0}, InvalidInput, "replicas must be a whole number from 1 to 100"),
    ({"models": "models:/iris/9"}, NotFound, "9"),
    ({"models": "models:/iris"}, InvalidInput, "names a model, not a version"),
    (
        {"models": {"models:/iris/1": -5, "models:/iris/2": 105}},
        InvalidInput,
        "must be a whole number from 0 to 100",
    ),
]


def test_a_policy_the_runtime_cannot_honour_is_refused(three_versions: Platform) -> None:
    call = three_versions.caller().call
    for kwargs, error, message in REFUSED:
        with pytest.raises(error) as info:
            call(svc.create_deployment, name="churn", **kwargs)
        assert message in str(info.value), kwargs
    assert call(svc.list_deployments) == [] and events(three_versions) == []


def test_names_are_unique_per_project(three_versions: Platform) -> None:
    call = three_versions.caller().call
    call(svc.create_deployment, name="churn", models="models:/iris/1")
    with pytest.raises(Conflict, match="deployment 'churn' already exists in project 'default'"):
        call(svc.create_deployment, name="churn", models="models:/iris/2")


def test_rest_and_remote_sdk_and_page(three_versions: Platform, remote_sdk: Any) -> None:  # type: ignore[no-untyped-def]
    import httpx

    import plinth

    d = plinth.serving.create_deployment("churn", {"models:/iris/1": 90, "models:/iris/2": 10}, shadow="models:/iris/3")
    assert d.policy == "canary+shadow"
    assert [x.name for x in plinth.serving.list_deployments()] == ["churn"]
    assert plinth.serving.update_deployment("churn", replicas=2).replicas == 2
    with pytest.raises(InvalidInput, match="traffic weights add up to 50, not 100"):
        plinth.serving.update_deployment("churn", models={"models:/iris/1": 50})
    headers = {"Authorization": f"Bearer {remote_sdk.admin_token}"}
    with httpx.Client(base_url=remote_sdk.url, headers=headers, timeout=30) as c:
        r = c.post("/api/v1/deployments", json={"name": "x", "models": "models:/iris/1", "sticky_key": "1user"})
        assert r.status_code == 400 and "sticky key '1user'" in r.json()["error"]["message"]
        body = {"name": "ab", "models": {"models:/iris/1": 50, "models:/iris/2": 50}, "sticky_key": "user_id"}
        r = c.post("/api/v1/deployments", json=body)
        assert r.status_code == 201 and r.json()["sticky_key"] == "user_id"
        r = c.patch("/api/v1/deployments/ab", json={"clear_sticky_key": True})
        assert r.status_code == 200 and r.json()["sticky_key"] is None
        r = c.get("/api/v1/deployments/churn")
        assert r.status_code == 200 and r.json()["shadow"] == "models:/iris/3"
        page = c.get("/serving")
        assert page.status_code == 200
        assert 'data-deployment="churn"' in page.text and "canary+shadow" in page.text
        assert "<code>models:/iris/1</code> 90%" in page.text
    plinth.serving.delete_deployment("churn")
    with pytest.raises(NotFound):
        plinth.serving.get_deployment("churn")


@dataclass
class CliResult:
    exit_code: int
    output: str


def plinth_cli(home: Path, *args: str) -> CliResult:
    """``plinth ARGS`` through its real entry point, in-process, on the test's PLINTH_HOME."""
    from plinth.cli.main import main

    assert Path(os.environ["PLINTH_HOME"]) == home
    out, err = io.StringIO(), io.StringIO()
    argv = sys.argv
    sys.argv = ["plinth", *args]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    finally:
        sys.argv = argv
    return CliResult(code, out.getvalue() + err.getvalue())


def test_cli_create_list_export(three_versions: Platform, tmp_path: Path) -> None:
    home = tmp_path / "home"
    out = plinth_cli(
        home, "deploy", "create", "churn", "-m", "models:/iris/1=90", "-m", "models:/iris/2=10",
        "--shadow", "models:/iris/3", "--replicas", "2", "--json",
    )  # fmt: skip
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["traffic"] == [
        {"uri": "models:/iris/1", "weight": 90},
        {"uri": "models:/iris/2", "weight": 10},
    ]
    out = plinth_cli(home, "deploy", "list", "--json")
    assert [d["name"] for d in json.loads(out.output)] == ["churn"]
    out = plinth_cli(home, "deploy", "create", "bad", "-m", "models:/iris/1=60", "-m", "models:/iris/2=60")
    assert out.exit_code == 2 and "traffic weights add up to 120, not 100" in out.output
    out = plinth_cli(home, "deploy", "export", "churn", "--target", "kserve")
    assert out.exit_code == 0, out.output
    (isvc,) = list(yaml.safe_load_all(out.output))
    assert isvc["kind"] == "InferenceService" and isvc["apiVersion"] == "serving.kserve.io/v1beta1"
    assert isvc["spec"]["predictor"]["minReplicas"] == 2
    assert isvc["metadata"]["annotations"]["plinth.dev/policy"] == "canary+shadow"
    assert "--deployment" in isvc["spec"]["predictor"]["containers"][0]["args"]
    out = plinth_cli(home, "deploy", "export", "churn", "--target", "kubernetes", "-o", str(tmp_path / "k8s.yaml"))
    assert out.exit_code == 0, out.output
    deployment, service = yaml.safe_load_all((tmp_path / "k8s.yaml").read_text())
    assert (deployment["kind"], deployment["spec"]["replicas"], service["kind"]) == ("Deployment", 2, "Service")
    assert service["spec"]["ports"][0]["targetPort"] == 8080
    out = plinth_cli(home, "deploy", "export", "churn", "--target", "swarm")
    assert out.exit_code == 2 and "target 'swarm' is not one of kserve, kubernetes" in out.output
    assert plinth_cli(home, "deploy", "delete", "churn").exit_code == 0
    out = plinth_cli(home, "deploy", "get", "churn")
    assert out.exit_code == 4 and "deployment 'churn' does not exist" in out.output


def test_server_from_a_deployment_honours_canary_weights_and_shadow(
    three_versions: Platform, serve: Callable[..., Any]
) -> None:
    import httpx
    from deltalake import DeltaTable

    from plinth.serving import InferenceLogger, create_deployment, inference_log_location, load_deployment

    create_deployment("churn", {"models:/iris/1": 90, "models:/iris/2": 10}, shadow="models:/iris/3")
    location = inference_log_location("churn").location
    running = serve([load_deployment("churn")], None, InferenceLogger(location, flush_interval_s=0.05))
    X, _ = iris()
    rows = X.iloc[[0, 50]].to_dict(orient="records")

    async def traffic() -> list[Any]:
        async with httpx.AsyncClient(base_url=running.url, timeout=30) as c:
            return await asyncio.gather(*(c.post("/models/churn/predict", json={"records": rows}) for _ in range(200)))

    answers = run_async(traffic())
    assert all(r.status_code == 200 for r in answers)
    counts = Counter(r.json()["model_version"] for r in answers)
    assert set(counts) == {"1", "2"}  # the shadow never answers
    assert 150 <= counts["1"] <= 196 and counts["2"] >= 4
    deadline = time.monotonic() + 10
    while len(running.server.shadow_answers) < 200 and time.monotonic() < deadline:
        time.sleep(0.05)
    shadow = list(running.server.shadow_answers)
    assert len(shadow) == 200 and {e["version"] for e in shadow} == {"3"}
    assert all(list(e["outputs"]) == [0, 1] for e in shadow)
    with running.client() as c:
        text = c.get("/metrics").text
        assert 'plinth_serving_requests_total{endpoint="shadow",model="churn",status="200",version="3"} 200.0' in text
        meta = c.get("/v2/models/churn").json()
        assert meta["versions"] == ["1", "2"]
        r = c.post("/v2/models/churn/versions/2/infer", json={"inputs": [
            {"name": n, "shape": [1], "datatype": "FP64", "data": [1.0]} for n in X.columns
        ]})  # fmt: skip
        assert r.status_code == 200 and r.json()["model_version"] == "2"
        r = c.post("/v2/models/churn/versions/3/infer", json={"inputs": []})
        assert r.status_code == 404 and r.json()["error"] == "model 'churn' has no version '3' here; served: 1, 2"
    running.server.inference_log.stop()
    logged = DeltaTable(location).to_pandas()
    assert len(logged) == 402  # 201 answers (one asked of version 2), each mirrored to the shadow
    assert Counter(zip(logged["version"], logged["shadow"], strict=True)) == {
        ("1", False): counts["1"],
        ("2", False): counts["2"] + 1,
        ("3", True): 201,
    }
    first = logged[~logged["shadow"] & (logged["rows"] == 2)].iloc[0]
    assert json.loads(first["inputs"]) == rows and first["rows"] == 2
    assert json.loads(logged[logged["shadow"] & (logged["rows"] == 2)].iloc[0]["outputs"]) == [0, 1]


def test_a_full_inference_log_queue_drops_and_counts_never_blocks(
    three_versions: Platform, serve: Callable[..., Any]
) -> None:
    from deltalake import DeltaTable

    from plinth.serving import InferenceLogger, create_deployment, inference_log_location, load_deployment

    create_deployment("churn", "models:/iris/1")
    location = inference_log_location("churn").location
    logger = InferenceLogger(location, max_queue=2, flush_interval_s=30)
    running = serve([load_deployment("churn")], None, logger)
    X, _ = iris()
    with running.client() as c:
        for _ in range(6):
            assert c.post("/models/churn/predict", json={"records": X.head(1).to_dict(orient="records")}).is_success
        text = c.get("/metrics").text
    assert 'plinth_serving_log_dropped_total{model="churn",version="1"} 4.0' in text
    assert logger.dropped == 4
    logger.stop()
    assert len(DeltaTable(location).to_pandas()) == 2


def test_a_deployment_whose_model_fails_to_load_shows_the_failure(platform: Platform, tmp_path: Path) -> None:
    X, _ = iris()
    source = log_with_services(platform, iris_pipeline(), input_example=X.head(3), serialization="pickle")
    call = platform.caller().call
    call(registry.register_version, name="pickled", source=source)
    call(svc.create_deployment, name="churn", models="models:/pickled/1")
    out = plinth_cli(tmp_path / "home", "serve", "--deployment", "churn")  # a pickle needs --trust
    message = "model models:/pickled/1 is stored with pickle, which runs arbitrary code when loaded"
    assert out.exit_code == 3 and message in out.output
    d = call(svc.get_deployment, name="churn")
    assert d.status == "failed" and d.status_message.startswith(message)


def _client_load(running: Any, stop: threading.Event, errors: list[str], versions: Counter[str]) -> None:
    body = {"inputs": [{"name": n, "shape": [1], "datatype": "FP64", "data": [1.0]} for n in iris()[0].columns]}
    with running.client() as c:
        while not stop.is_set():
            r = c.post("/v2/models/iris/infer", json=body)
            if r.status_code == 200:
                versions[r.json()["model_version"]] += 1
            else:
                errors.append(f"{r.status_code} {r.text}")


@contextlib.contextmanager
def _under_load(running: Any, clients: int = 1) -> Any:
    """``clients`` threads sending v2 requests until the block ends: (errors, versions answered)."""
    stop, errors, versions = threading.Event(), [], Counter()  # type: ignore[var-annotated]
    threads = [threading.Thread(target=_client_load, args=(running, stop, errors, versions)) for _ in range(clients)]
    for t in threads:
        t.start()
    try:
        yield errors, versions
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)


def _wait_for_failure(follower: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not follower.failures:
        assert time.monotonic() < deadline, "the failed load was never reported"
        time.sleep(0.02)


def _pickled_version_4(platform: Platform) -> Callable[..., Any]:
    """Register version 4 of iris as a pickle (refused without --trust); the platform's ``call``."""
    X, _ = iris()
    source = log_with_services(platform, iris_pipeline(), input_example=X.head(3), serialization="pickle")
    call = platform.caller().call
    call(registry.register_version, name="iris", source=source)
    return call


def _wait_for_version(running: Any, version: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    with running.client() as c:
        while c.get("/v2/models/iris").json()["versions"] != [version]:
            assert time.monotonic() < deadline, f"version {version} was never swapped in"
            time.sleep(0.02)


def test_an_alias_move_is_swapped_in_with_no_failed_request(
    three_versions: Platform, serve: Callable[..., Any]
) -> None:
    from plinth.serving import load_served

    running = serve([load_served("models:/iris@champion")])
    running.server.follow(poll_interval=0.05)
    with _under_load(running, 4) as (errors, versions):
        time.sleep(0.3)
        call = three_versions.caller().call
        call(registry.set_alias, name="iris", alias="other", version=3)  # another alias: no swap
        call(registry.set_alias, name="iris", alias="champion", version=2)
        _wait_for_version(running, "2")
        time.sleep(0.3)
    assert errors == []
    assert versions["1"] > 0 and versions["2"] > 0 and "3" not in versions
    assert running.server.follower.failures == []


def test_a_version_that_fails_to_load_leaves_the_old_one_serving(
    three_versions: Platform, serve: Callable[..., Any]
) -> None:
    from plinth.serving import load_served

    call = _pickled_version_4(three_versions)
    call(svc.create_deployment, name="churn", models="models:/iris@champion")
    running = serve([load_served("models:/iris@champion", name="iris")])
    follower = running.server.follow(poll_interval=0.05, deployment="churn")
    with _under_load(running) as (errors, versions):
        call(registry.set_alias, name="iris", alias="champion", version=4)
        _wait_for_failure(follower)
        time.sleep(0.2)
    assert errors == [] and set(versions) == {"1"}
    assert "version 1 keeps serving" in follower.failures[0] and "pickle" in follower.failures[0]
    with running.client() as c:
        assert c.get("/v2/models/iris").json()["versions"] == ["1"]
    d = call(svc.get_deployment, name="churn")
    assert d.status == "failed" and "version 1 keeps serving" in d.status_message
    call(registry.set_alias, name="iris", alias="champion", version=2)  # a good version still swaps in
    _wait_for_version(running, "2")


def test_sticky_ab_sends_one_key_to_one_version_split_by_weight(
    three_versions: Platform, serve: Callable[..., Any]
) -> None:
    from plinth.serving import create_deployment, get_deployment, load_deployment

    create_deployment("churn", {"models:/iris/1": 70, "models:/iris/2": 30}, sticky_key="user_id")
    assert get_deployment("churn").policy == "sticky A/B by user_id"
    running = serve([load_deployment("churn")])
    X, _ = iris()
    body = {"records": X.head(1).to_dict(orient="records")}
    with running.client() as c:
        first: dict[str, str] = {}
        for user in range(300):
            via_header = c.post("/models/churn/predict", json=body, headers={"user_id": f"u{user}"})
            assert via_header.status_code == 200
            first[f"u{user}"] = via_header.json()["model_version"]
        for user in range(0, 300, 7):  # the same key again, by header or query: the same version
            again = c.post("/models/churn/predict", json=body, headers={"user_id": f"u{user}"})
            by_query = c.post(f"/models/churn/predict?user_id=u{user}", json=body)
            assert again.json()["model_version"] == by_query.json()["model_version"] == first[f"u{user}"]
        counts = Counter(first.values())
        assert set(counts) == {"1", "2"} and 170 <= counts["1"] <= 250  # 70/30 over 300 distinct keys
        # no key: the weighted random split, both versions still answer
        anonymous = Counter(c.post("/models/churn/predict", json=body).json()["model_version"] for _ in range(60))
        assert set(anonymous) <= {"1", "2"} and sum(anonymous.values()) == 60


def test_a_server_follows_its_deployment_when_it_is_updated(
    three_versions: Platform, serve: Callable[..., Any]
) -> None:
    from plinth.serving import load_deployment

    call = _pickled_version_4(three_versions)
    call(svc.create_deployment, name="iris", models="models:/iris/1")
    running = serve([load_deployment("iris")])
    follower = running.server.follow(poll_interval=0.05, deployment="iris")
    with _under_load(running, 3) as (errors, versions):
        time.sleep(0.3)
        call(
            svc.update_deployment,
            name="iris",
            models={"models:/iris/2": 50, "models:/iris/3": 50},
            shadow="models:/iris/1",
        )
        deadline = time.monotonic() + 30
        with running.client() as c:
            while c.get("/v2/models/iris").json()["versions"] != ["2", "3"]:
                assert time.monotonic() < deadline, "the updated deployment was never served"
                time.sleep(0.02)
        time.sleep(0.4)
        route = running.server.models["iris"]
        assert route.weights == [50, 50] and route.shadow is not None and route.shadow.version == "1"
        call(svc.update_deployment, name="iris", models="models:/iris/4")  # fails to load: 2 and 3 stay
        _wait_for_failure(follower)
        time.sleep(0.2)
    assert errors == []  # no request failed across either change
    assert versions["1"] > 0 and versions["2"] > 0 and versions["3"] > 0 and "4" not in versions
    assert running.server.models["iris"] is route
    assert "the previous ones keep serving" in follower.failures[0] and "pickle" in follower.failures[0]
    d = call(svc.get_deployment, name="iris")
    assert d.status == "failed" and "the previous ones keep serving" in d.status_message
    # the server's own status updates change nothing it serves
    call(svc.update_deployment, name="iris", status="serving", status_message="127.0.0.1:1")
    time.sleep(0.3)
    assert running.server.models["iris"] is route and len(follower.failures) == 1
