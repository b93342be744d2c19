"""The Open Inference Protocol (v2) over REST and the plain JSON endpoint, on a real uvicorn
server, with requests shaped as KServe/Triton v2 HTTP clients send them."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from models_support import iris
from plinth.models.signature import ColumnSpec, Signature, TensorSpec
from plinth.serving import ServedModel, ServingOptions, load_served

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


@pytest.fixture
def iris_server(serve: Callable[..., Any], iris_folder: Path) -> Any:
    return serve([load_served(str(iris_folder))], ServingOptions(max_body_bytes=64 * 1024))


def column_inputs(rows: Any, datatype: str = "FP64") -> list[dict[str, Any]]:
    """One input per column, as MLServer's pandas codec and KServe's InferInput send them."""
    return [{"name": c, "shape": [len(rows)], "datatype": datatype, "data": rows[c].tolist()} for c in FEATURES]


def expected(rows: Any, folder: Path) -> list[int]:
    from plinth.models import load

    return load(folder).predict(rows).tolist()


def test_health_and_metadata_speak_v2(iris_server: Any) -> None:
    with iris_server.client() as c:
        assert c.get("/v2/health/live").json() == {"live": True}
        assert c.get("/v2/health/ready").json() == {"ready": True}
        assert c.get("/v2").json()["name"] == "plinth"
        meta = c.get("/v2/models/iris").json()
        assert meta["name"] == "iris" and meta["versions"] == ["1"] and meta["platform"] == "plinth-sklearn"
        assert meta["inputs"] == [{"name": n, "datatype": "FP64", "shape": [-1]} for n in FEATURES]
        assert meta["outputs"] == [{"name": "output-0", "datatype": "INT64", "shape": [-1]}]
        assert c.get("/v2/models/iris/ready").json() == {"name": "iris", "ready": True}
        assert c.get("/v2/models/iris/versions/1/ready").status_code == 200


def test_infer_with_one_input_per_column(iris_server: Any, iris_folder: Path) -> None:
    X, _ = iris()
    rows = X.iloc[[0, 60, 120]]
    body = {"id": "req-1", "inputs": column_inputs(rows), "outputs": [{"name": "output-0"}]}
    with iris_server.client() as c:
        r = c.post("/v2/models/iris/infer", json=body)
        assert r.status_code == 200, r.text
        answer = r.json()
        assert answer["model_name"] == "iris" and answer["model_version"] == "1" and answer["id"] == "req-1"
        assert answer["outputs"] == [
            {"name": "output-0", "shape": [3], "datatype": "INT64", "data": expected(rows, iris_folder)}
        ]
        # the versioned route, and ints widened to the FP64 the signature asks for
        ints = [{**i, "datatype": "INT32", "data": [round(v) for v in i["data"]]} for i in column_inputs(rows)]
        r = c.post("/v2/models/iris/versions/1/infer", json={"inputs": ints})
        assert r.status_code == 200 and r.json()["outputs"][0]["shape"] == [3]


def test_infer_with_one_feature_matrix_nested_or_flat(iris_server: Any, iris_folder: Path) -> None:
    """Triton's and KServe's clients send a [N, 4] FP32 tensor, flat or nested."""
    X, _ = iris()
    rows = X.iloc[[5, 75, 145]]
    want = expected(rows, iris_folder)
    matrix = rows.to_numpy(dtype=np.float32)
    with iris_server.client() as c:
        for data in (matrix.tolist(), matrix.ravel().tolist()):
            body = {"inputs": [{"name": "input-0", "shape": [3, 4], "datatype": "FP32", "data": data}]}
            r = c.post("/v2/models/iris/infer", json=body)
            assert r.status_code == 200, r.text
            assert r.json()["outputs"][0]["data"] == want


def test_plain_predict_takes_records_columns_and_split(iris_server: Any, iris_folder: Path) -> None:
    X, _ = iris()
    rows = X.iloc[[1, 51, 101]]
    want = expected(rows, iris_folder)
    with iris_server.client() as c:
        for body in (
            {"records": rows.to_dict(orient="records")},
            {"columns": {k: v.tolist() for k, v in rows.items()}},
            {"dataframe_split": {"columns": FEATURES, "data": rows.to_numpy().tolist()}},
        ):
            r = c.post("/models/iris/predict", json=body)
            assert r.status_code == 200, r.text
            assert r.json() == {"model_name": "iris", "model_version": "1", "predictions": want}


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda b: b["inputs"].pop(), "missing input 'petal_width' (expected FP64 with shape [-1])"),
        (
            lambda b: b["inputs"][0].update(datatype="BYTES", data=["a", "b"]),
            "input 'sepal_length' has datatype BYTES, expected FP64 with shape [-1]",
        ),
        (lambda b: b["inputs"][1].update(shape=[3]), "input 'sepal_width': shape [3] needs 3 values, data has 2"),
        (
            lambda b: b["inputs"][2].update(shape=[1, 2]),
            "input 'petal_length' has shape [1, 2], expected FP64 with shape [-1]",
        ),
        (lambda b: b["inputs"][0].update(datatype="FP128"), "input 'sepal_length': datatype 'FP128' is not one of"),
        (lambda b: b["inputs"][0].update(name="colour"), "input 'colour' is not one of the model's inputs"),
        (lambda b: b["inputs"][0].update(data=["x", "y"]), "input 'sepal_length': data is not FP64"),
        (lambda b: b.update(inputs=[]), "an infer request needs a non-empty 'inputs' list"),
    ],
)
def test_bad_tensors_get_a_400_naming_the_input(iris_server: Any, mutate: Any, message: str) -> None:
    X, _ = iris()
    body = {"inputs": column_inputs(X.head(2))}
    mutate(body)
    with iris_server.client() as c:
        r = c.post("/v2/models/iris/infer", json=body)
        assert r.status_code == 400, r.text
        assert r.json()["code"] == "invalid_input"
        assert message in r.json()["error"]
        assert c.get("/v2/health/live").status_code == 200


def test_wrong_feature_matrix_width_and_plain_bad_records(iris_server: Any) -> None:
    with iris_server.client() as c:
        body = {"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}]}
        r = c.post("/v2/models/iris/infer", json=body)
        assert r.status_code == 400
        assert "input 'x' has shape [1, 3], expected [-1, 4]" in r.json()["error"]
        r = c.post("/models/iris/predict", json={"records": [{"sepal_length": 1.0}]})
        assert r.status_code == 400
        assert r.json()["error"] == "input is missing column 'sepal_width' (expected float64)"
        r = c.post("/models/iris/predict", json={"records": [dict.fromkeys(FEATURES, "tall")]})
        assert r.status_code == 400
        assert r.json()["error"] == "column 'sepal_length' has type string, expected float64"


def test_unknown_model_malformed_json_and_oversized_body(iris_server: Any) -> None:
    with iris_server.client() as c:
        r = c.get("/v2/models/churn")
        assert r.status_code == 404 and r.json() == {
            "error": "model 'churn' is not served here; served: iris",
            "code": "not_found",
        }
        r = c.post("/v2/models/churn/infer", json={"inputs": []})
        assert r.status_code == 404
        r = c.post("/v2/models/iris/versions/9/infer", json={"inputs": []})
        assert r.status_code == 404 and r.json()["error"] == "model 'iris' has no version '9' here; served: 1"
        r = c.post("/v2/models/iris/infer", content=b'{"inputs": [', headers={"content-type": "application/json"})
        assert r.status_code == 400 and r.json()["error"].startswith("the request body is not valid JSON")
        big = json.dumps({"inputs": column_inputs(iris()[0])} | {"pad": "x" * 70_000}).encode()
        r = c.post("/v2/models/iris/infer", content=big)
        assert r.status_code == 413
        assert r.json()["error"] == "the request body is larger than the limit of 65536 bytes"

        def chunks() -> Any:  # no Content-Length: the limit holds on the bytes read
            for i in range(0, len(big), 8192):
                yield big[i : i + 8192]

        r = c.post("/models/iris/predict", content=chunks())
        assert r.status_code == 413
        assert c.get("/v2/health/ready").status_code == 200


class Exploding:
    """A model that fails on a negative value: the failure is the request's, not the server's."""

    signature = Signature(TensorSpec("float64", (-1, 2)))
    flavor = "python"

    def predict(self, data: Any) -> Any:
        if (np.asarray(data) < 0).any():
            raise ValueError("negative input")
        return np.asarray(data).sum(axis=1)


def test_a_model_that_raises_fails_that_request_only(serve: Callable[..., Any]) -> None:
    running = serve([ServedModel("boom", "3", Exploding())])
    with running.client() as c:
        meta = c.get("/v2/models/boom").json()
        assert meta["inputs"] == [{"name": "input-0", "datatype": "FP64", "shape": [-1, 2]}]
        bad = {"inputs": [{"name": "input-0", "shape": [1, 2], "datatype": "FP64", "data": [1, -1]}]}
        r = c.post("/v2/models/boom/infer", json=bad)
        assert r.status_code == 500
        assert r.json() == {"error": "model 'boom' version 3 failed: ValueError: negative input", "code": "model_error"}
        good = {"inputs": [{"name": "input-0", "shape": [2, 2], "datatype": "FP64", "data": [[1, 2], [3, 4]]}]}
        r = c.post("/v2/models/boom/infer", json=good)
        assert r.status_code == 200
        assert r.json()["outputs"] == [{"name": "output-0", "shape": [2], "datatype": "FP64", "data": [3.0, 7.0]}]
        r = c.post("/v2/models/boom/infer", json={"inputs": [{**good["inputs"][0], "shape": [4]}]})
        assert r.status_code == 400
        assert "input 'input-0' has shape [4], expected FP64 with shape [-1, 2]" in r.json()["error"]


@pytest.mark.parametrize(
    "result",
    [
        np.array([0, 2, 1], dtype=np.int64),
        np.array([0.5, -1.25], dtype=np.float32),
        np.array([True, False]),
        np.array([3], dtype=np.uint8),
        np.array([], dtype=np.float64),
    ],
)
@pytest.mark.parametrize("outputs", [None, [ColumnSpec("label", "double")]])
def test_a_numeric_column_is_encoded_as_the_general_path_encodes_it(result: Any, outputs: Any) -> None:
    from plinth.serving import protocol

    signature = None if outputs is None else Signature(inputs=[], outputs=outputs)
    fast = protocol.encode_outputs(result, signature)
    # the general path: the same values as a 2-D (n, 1) array, which it names and lays out the same
    general = protocol.encode_outputs(result.reshape(-1, 1), signature)
    assert fast[0]["name"] == general[0]["name"] == ("label" if outputs else "output-0")
    assert fast[0]["datatype"] == general[0]["datatype"] and fast[0]["data"] == general[0]["data"]
    assert fast[0]["shape"] == [len(result)] and all(
        type(v) is type(w) for v, w in zip(fast[0]["data"], result.tolist(), strict=True)
    )
