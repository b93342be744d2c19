"""The short ASGI path of inference requests answers exactly as the FastAPI routes behind it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from plinth.serving import ModelServer, ServedModel, ServingOptions
from plinth.serving.asgi import ServingApp, match_inference

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/v2/models/iris/infer", ("infer", "iris", None)),
        ("/v2/models/iris/versions/3/infer", ("infer", "iris", "3")),
        ("/models/iris/predict", ("predict", "iris", None)),
        ("/v2/models//infer", None),
        ("/v2/models/iris/versions//infer", None),
        ("/v2/models/iris/ready", None),
        ("/v2/models/iris/infer/more", None),
        ("/models/iris/predict/", None),
        ("/v2", None),
    ],
)
def test_inference_paths_are_matched_and_nothing_else(path: str, expected: Any) -> None:
    assert match_inference(path) == expected
    assert match_inference(path) == expected  # the second time from the table of paths met


def test_the_table_of_paths_met_stays_small() -> None:
    from plinth.serving import asgi

    for i in range(3000):
        assert match_inference(f"/v2/models/m{i}/versions/{i}/infer") == ("infer", f"m{i}", str(i))
        assert match_inference(f"/v2/models/m{i}/other") is None
    assert len(asgi._MATCHED) <= 1024


def _requests() -> list[tuple[str, dict[str, Any] | bytes]]:
    one = {"inputs": [{"name": n, "shape": [1], "datatype": "FP64", "data": [1.5]} for n in FEATURES]}
    wrong = {"inputs": [{**one["inputs"][0], "datatype": "BYTES", "data": ["x"]}, *one["inputs"][1:]]}
    return [
        ("/v2/models/iris/infer", one),
        ("/v2/models/iris/versions/1/infer", {**one, "id": "req-1"}),
        ("/v2/models/iris/versions/9/infer", one),  # 404: version not served
        ("/v2/models/nope/infer", one),  # 404: model not served
        ("/v2/models/iris/infer", wrong),  # 400 naming the input and datatype
        ("/v2/models/iris/infer", b"{not json"),  # 400: malformed
        ("/v2/models/iris/infer", b"x" * 5000),  # 413
        ("/models/iris/predict", {"records": [dict.fromkeys(FEATURES, 1.5)]}),
        ("/models/iris/predict", {"records": "no"}),  # 400
    ]


def test_the_short_path_and_the_fastapi_routes_answer_alike(iris_folder: Path, serve: Callable[..., Any]) -> None:
    from plinth.models import load

    model = load(iris_folder)
    answers: dict[str, list[tuple[int, Any]]] = {}
    servers: dict[str, ModelServer] = {}
    for label, door in (("short", None), ("fastapi", lambda server: server.app.fastapi)):
        running = serve([ServedModel("iris", "1", model)], ServingOptions(max_body_bytes=4096), door=door)
        servers[label] = running.server
        with running.client() as client:
            out = []
            for path, body in _requests():
                r = client.post(path, content=body) if isinstance(body, bytes) else client.post(path, json=body)
                out.append((r.status_code, r.json()))
            answers[label] = out
    assert isinstance(servers["short"].app, ServingApp)
    assert answers["short"] == answers["fastapi"]
    statuses = [status for status, _ in answers["short"]]
    assert statuses == [200, 200, 404, 404, 400, 400, 413, 200, 400]
    assert answers["short"][1][1]["id"] == "req-1"
    assert answers["short"][4][1]["error"] == "input 'sepal_length' has datatype BYTES, expected FP64 with shape [-1]"
    for server in servers.values():  # both doors count their requests by status
        metrics = server.metrics.render().decode()
        assert 'plinth_serving_requests_total{endpoint="infer",model="iris",status="200",version="1"} 2.0' in metrics
        assert 'plinth_serving_requests_total{endpoint="infer",model="iris",status="413",version="1"} 1.0' in metrics
