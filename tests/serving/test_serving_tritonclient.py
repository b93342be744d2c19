"""The Open Inference Protocol (v2) served to a real v2 client: NVIDIA's ``tritonclient``, over
HTTP (JSON and the binary tensor extension) and over gRPC, on a real server."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
import tritonclient.grpc as tgrpc
import tritonclient.http as thttp
from test_serving_cli import start_serving, stop
from test_serving_deployments import three_versions  # noqa: F401 (a fixture)
from test_serving_protocol import Exploding
from tritonclient.utils import InferenceServerException

from models_support import iris
from plinth.core.errors import InvalidInput
from plinth.serving import ServedModel, ServingOptions, load_served
from plinth.serving.v2grpc import grpc_service_pb2_grpc as service
from plinth.serving.v2grpc import inference_messages_pb2 as pb
from tests_support import free_port_for_subprocess

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


@pytest.fixture
def iris_server(serve: Callable[..., Any], iris_folder: Path) -> Any:
    running = serve([load_served(str(iris_folder))], ServingOptions(grpc_port=0))
    running.grpc_url = f"127.0.0.1:{running.server.grpc.port}"
    return running


def expected(rows: Any, folder: Path) -> list[int]:
    from plinth.models import load

    return load(folder).predict(rows).tolist()


def column_inputs(module: Any, rows: Any, binary: bool = True) -> list[Any]:
    """One FP64 input per column, filled from NumPy, as a tritonclient user writes it."""
    inputs = []
    for name in FEATURES:
        tensor = module.InferInput(name, [len(rows)], "FP64")
        if module is thttp:
            tensor.set_data_from_numpy(rows[name].to_numpy(), binary_data=binary)
        else:
            tensor.set_data_from_numpy(rows[name].to_numpy())
        inputs.append(tensor)
    return inputs


def test_the_grpc_field_numbers_are_the_standard_ones() -> None:
    """Every field of our messages has the number and type of tritonclient's (the protocol's) own."""
    from tritonclient.grpc import service_pb2 as theirs

    def fields(message: Any) -> dict[str, tuple[int, int]]:
        out = {f.name: (f.number, f.type) for f in message.fields}
        for nested in message.nested_types:
            if not nested.GetOptions().map_entry:
                out |= {f"{nested.name}.{k}": v for k, v in fields(nested).items()}
        return out

    for name, ours in pb.DESCRIPTOR.message_types_by_name.items():
        assert fields(ours) == fields(theirs.DESCRIPTOR.message_types_by_name[name]), name
    assert len(pb.DESCRIPTOR.message_types_by_name) == 23


def test_triton_http_client_health_metadata_and_infer(iris_server: Any, iris_folder: Path) -> None:
    X, _ = iris()
    rows = X.iloc[[0, 60, 120, 7]]
    want = expected(rows, iris_folder)
    client = thttp.InferenceServerClient(iris_server.url.removeprefix("http://"))
    try:
        assert client.is_server_live() and client.is_server_ready()
        assert client.is_model_ready("iris") and client.is_model_ready("iris", "1")
        assert not client.is_model_ready("nope")
        assert "binary_tensor_data" in client.get_server_metadata()["extensions"]
        meta = client.get_model_metadata("iris")
        assert [i["name"] for i in meta["inputs"]] == FEATURES and meta["outputs"][0]["datatype"] == "INT64"
        for binary_in in (False, True):
            for binary_out in (False, True):
                outputs = [thttp.InferRequestedOutput("output-0", binary_data=binary_out)]
                result = client.infer("iris", column_inputs(thttp, rows, binary_in), outputs=outputs, request_id="r1")
                assert result.as_numpy("output-0").tolist() == want, (binary_in, binary_out)
                out = result.get_output("output-0")
                assert ("binary_data_size" in out.get("parameters", {})) is binary_out
                assert result.get_response()["id"] == "r1"
        # no outputs named: tritonclient asks for every output in binary
        matrix = thttp.InferInput("input-0", [4, 4], "FP32")
        matrix.set_data_from_numpy(rows.to_numpy(np.float32))
        assert client.infer("iris", [matrix]).as_numpy("output-0").tolist() == want
    finally:
        client.close()


def test_triton_http_client_gets_errors_naming_the_input(iris_server: Any) -> None:
    X, _ = iris()
    client = thttp.InferenceServerClient(iris_server.url.removeprefix("http://"))
    try:
        inputs = column_inputs(thttp, X.head(2))
        inputs[0] = thttp.InferInput("sepal_length", [2], "BYTES")
        inputs[0].set_data_from_numpy(np.array([b"a", b"b"], dtype=object))
        with pytest.raises(InferenceServerException, match=r"input 'sepal_length' has datatype BYTES, expected FP64"):
            client.infer("iris", inputs)
        with pytest.raises(InferenceServerException, match="model 'nope' is not served here; served: iris"):
            client.infer("nope", column_inputs(thttp, X.head(2)))
    finally:
        client.close()
    with iris_server.client() as c:  # the binary extension's framing is checked too
        body = b'{"inputs": [{"name": "sepal_length", "shape": [2], "datatype": "FP64", '
        body += b'"parameters": {"binary_data_size": 16}}]}'
        header = {"Inference-Header-Content-Length": str(len(body))}
        r = c.post("/v2/models/iris/infer", content=body + b"\0" * 8, headers=header)
        assert r.status_code == 400
        assert r.json()["error"] == "input 'sepal_length': binary_data_size 16 does not fit the 8 bytes left"
        r = c.post("/v2/models/iris/infer", content=body, headers={"Inference-Header-Content-Length": "x"})
        assert r.status_code == 400 and r.json()["error"].startswith("Inference-Header-Content-Length must be")


def test_triton_grpc_client_health_metadata_and_infer(iris_server: Any, iris_folder: Path) -> None:
    X, _ = iris()
    rows = X.iloc[[3, 55, 140]]
    want = expected(rows, iris_folder)
    with tgrpc.InferenceServerClient(iris_server.grpc_url) as client:
        assert client.is_server_live() and client.is_server_ready()
        assert client.is_model_ready("iris") and client.is_model_ready("iris", "1")
        assert not client.is_model_ready("nope") and not client.is_model_ready("iris", "2")
        assert client.get_server_metadata(as_json=True)["name"] == "plinth"
        meta = client.get_model_metadata("iris", as_json=True)
        assert meta["versions"] == ["1"] and meta["platform"] == "plinth-sklearn"
        assert meta["inputs"] == [{"name": n, "datatype": "FP64", "shape": ["-1"]} for n in FEATURES]
        result = client.infer(
            "iris", column_inputs(tgrpc, rows), outputs=[tgrpc.InferRequestedOutput("output-0")], request_id="g1"
        )
        assert result.as_numpy("output-0").tolist() == want
        assert result.get_response().id == "g1" and result.get_response().model_version == "1"
        matrix = tgrpc.InferInput("input-0", [3, 4], "FP32")
        matrix.set_data_from_numpy(rows.to_numpy(np.float32))
        assert client.infer("iris", [matrix], model_version="1").as_numpy("output-0").tolist() == want
    with iris_server.client() as c:
        metrics = c.get("/metrics").text
    assert 'plinth_serving_requests_total{endpoint="grpc_infer",model="iris",status="200",version="1"} 2.0' in metrics


def test_grpc_typed_contents_in_and_out(iris_server: Any, iris_folder: Path) -> None:
    """A client sending typed ``contents`` gets typed ``contents`` back (raw when it asks)."""
    X, _ = iris()
    rows = X.iloc[[10, 90]]
    request = pb.ModelInferRequest(model_name="iris", id="c1")
    for name in FEATURES:
        tensor = request.inputs.add(name=name, datatype="FP64", shape=[2])
        tensor.contents.fp64_contents.extend(rows[name].tolist())
    with grpc.insecure_channel(iris_server.grpc_url) as channel:
        stub = service.GRPCInferenceServiceStub(channel)
        reply = stub.ModelInfer(request)
        assert (reply.model_name, reply.model_version, reply.id) == ("iris", "1", "c1")
        (out,) = reply.outputs
        assert (out.name, out.datatype, list(out.shape)) == ("output-0", "INT64", [2])
        assert list(out.contents.int64_contents) == expected(rows, iris_folder) and not reply.raw_output_contents
        request.parameters["binary_data_output"].bool_param = True
        reply = stub.ModelInfer(request)
        assert np.frombuffer(reply.raw_output_contents[0], "<i8").tolist() == expected(rows, iris_folder)
        request.outputs.add(name="probabilities")
        with pytest.raises(grpc.RpcError) as info:
            stub.ModelInfer(request)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert info.value.details() == "requested output 'probabilities' is not one of the model's outputs (output-0)"
        del request.outputs[:]
        request.inputs[0].ClearField("contents")
        request.inputs[0].contents.fp32_contents.extend([1.0, 2.0])
        with pytest.raises(grpc.RpcError) as info:
            stub.ModelInfer(request)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert (
            info.value.details() == "input 'sepal_length': FP64 values go in contents.fp64_contents, got fp32_contents"
        )


@pytest.mark.parametrize(
    ("change", "code", "message"),
    [
        (
            lambda i: i.__setitem__(0, _tensor("sepal_length", np.array([b"a", b"b"], dtype=object), "BYTES")),
            grpc.StatusCode.INVALID_ARGUMENT,
            "input 'sepal_length' has datatype BYTES, expected FP64 with shape [-1]",
        ),
        (
            lambda i: i.__setitem__(1, _tensor("sepal_width", np.zeros((1, 2)), "FP64")),
            grpc.StatusCode.INVALID_ARGUMENT,
            "input 'sepal_width' has shape [1, 2], expected FP64 with shape [-1]",
        ),
        (lambda i: i.pop(), grpc.StatusCode.INVALID_ARGUMENT, "missing input 'petal_width' (expected FP64"),
        (
            lambda i: i.__setitem__(2, _tensor("colour", np.zeros(2), "FP64")),
            grpc.StatusCode.INVALID_ARGUMENT,
            "input 'colour' is not one of the model's inputs",
        ),
    ],
)
def test_grpc_bad_input_is_invalid_argument_naming_it(iris_server: Any, change: Any, code: Any, message: str) -> None:
    X, _ = iris()
    inputs = column_inputs(tgrpc, X.head(2))
    change(inputs)
    with tgrpc.InferenceServerClient(iris_server.grpc_url) as client:
        with pytest.raises(InferenceServerException) as info:
            client.infer("iris", inputs)
        assert info.value.status() == str(code) and message in info.value.message()
        assert client.infer("iris", column_inputs(tgrpc, X.head(2))).as_numpy("output-0").shape == (2,)


def _tensor(name: str, values: np.ndarray, datatype: str) -> Any:
    tensor = tgrpc.InferInput(name, list(values.shape), datatype)
    tensor.set_data_from_numpy(values)
    return tensor


def test_grpc_unknown_models_raw_framing_and_a_failing_model(serve: Callable[..., Any], iris_folder: Path) -> None:
    models = [load_served(str(iris_folder)), ServedModel("boom", "3", Exploding())]
    running = serve(models, ServingOptions(grpc_port=0, max_body_bytes=64 * 1024))
    url = f"127.0.0.1:{running.server.grpc.port}"
    X, _ = iris()
    with tgrpc.InferenceServerClient(url) as client:
        with pytest.raises(InferenceServerException) as info:
            client.infer("nope", column_inputs(tgrpc, X.head(1)))
        assert info.value.status() == "StatusCode.NOT_FOUND"
        assert info.value.message() == "model 'nope' is not served here; served: boom, iris"
        with pytest.raises(InferenceServerException) as info:
            client.get_model_metadata("iris", "7")
        assert info.value.status() == "StatusCode.NOT_FOUND"
        assert info.value.message() == "model 'iris' has no version '7' here; served: 1"
        with pytest.raises(InferenceServerException) as info:
            client.infer("boom", [_tensor("input-0", np.array([[1.0, -1.0]]), "FP64")])
        assert info.value.status() == "StatusCode.INTERNAL"
        assert info.value.message() == "model 'boom' version 3 failed: ValueError: negative input"
        good = client.infer("boom", [_tensor("input-0", np.array([[1.0, 2.0], [3.0, 4.0]]), "FP64")])
        assert good.as_numpy("output-0").tolist() == [3.0, 7.0]  # the server stays up
    request = pb.ModelInferRequest(model_name="iris")
    request.inputs.add(name="input-0", datatype="FP32", shape=[1, 4])
    request.raw_input_contents.append(b"\0" * 12)  # 3 floats for 4
    with grpc.insecure_channel(url) as channel, pytest.raises(grpc.RpcError) as info:
        service.GRPCInferenceServiceStub(channel).ModelInfer(request)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details() == "input 'input-0': shape [1, 4] of FP32 needs 16 bytes, the raw contents have 12"
    request.raw_input_contents[0] = b"\0" * 70_000  # over --max-body-mb: refused by gRPC itself
    with grpc.insecure_channel(url) as channel, pytest.raises(grpc.RpcError) as info:
        service.GRPCInferenceServiceStub(channel).ModelInfer(request)
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    with running.client() as c:
        metrics = c.get("/metrics").text
    assert 'plinth_serving_errors_total{kind="model_error",model="boom",version="3"} 1.0' in metrics
    assert 'plinth_serving_requests_total{endpoint="grpc_infer",model="boom",status="500",version="3"} 1.0' in metrics


def test_plinth_serve_cli_answers_both_clients_end_to_end(iris_folder: Path, tmp_path: Path) -> None:
    """``plinth serve --grpc-port`` as a user runs it: a real process, HTTP and gRPC, then SIGTERM."""
    grpc_port = free_port_for_subprocess()
    proc, c = start_serving(tmp_path / "home", str(iris_folder), "--grpc-port", str(grpc_port))
    X, _ = iris()
    rows = X.iloc[[0, 100]]
    try:
        with tgrpc.InferenceServerClient(f"127.0.0.1:{grpc_port}") as client:
            assert client.is_server_ready()
            via_grpc = client.infer("iris", column_inputs(tgrpc, rows)).as_numpy("output-0").tolist()
        http = thttp.InferenceServerClient(f"127.0.0.1:{c.base_url.port}")
        via_http = http.infer("iris", column_inputs(thttp, rows)).as_numpy("output-0").tolist()
        http.close()
        assert via_grpc == via_http == expected(rows, iris_folder)
    finally:
        c.close()
        out = stop(proc)
    assert proc.returncode == 0, out
    assert f"serving the v2 protocol over gRPC at 127.0.0.1:{grpc_port}" in out


@pytest.mark.usefixtures("three_versions")
def test_grpc_traffic_follows_a_deployment_canary_shadow_and_inference_log(serve: Callable[..., Any]) -> None:
    """gRPC requests share HTTP's traffic policy: canary weights, the shadow, the inference log, metrics."""
    from deltalake import DeltaTable

    from plinth.serving import InferenceLogger, create_deployment, inference_log_location, load_deployment

    create_deployment("churn", {"models:/iris/1": 70, "models:/iris/2": 30}, shadow="models:/iris/3")
    location = inference_log_location("churn").location
    options = ServingOptions(grpc_port=0)
    running = serve([load_deployment("churn")], options, InferenceLogger(location, flush_interval_s=0.05))
    X, _ = iris()
    rows = X.iloc[[0, 50]]
    versions: Counter[str] = Counter()
    with tgrpc.InferenceServerClient(f"127.0.0.1:{running.server.grpc.port}") as client:
        for _ in range(100):
            result = client.infer("churn", column_inputs(tgrpc, rows))
            assert result.as_numpy("output-0").tolist() == [0, 1]
            versions[result.get_response().model_version] += 1
        pinned = client.infer("churn", column_inputs(tgrpc, rows), model_version="2")
        assert pinned.get_response().model_version == "2"
        with pytest.raises(InferenceServerException) as info:
            client.infer("churn", column_inputs(tgrpc, rows), model_version="3")  # the shadow is not routable
        assert info.value.status() == "StatusCode.NOT_FOUND"
        assert info.value.message() == "model 'churn' has no version '3' here; served: 1, 2"
    assert set(versions) == {"1", "2"} and 8 <= versions["2"] <= 60
    deadline = time.monotonic() + 10
    while len(running.server.shadow_answers) < 101 and time.monotonic() < deadline:
        time.sleep(0.05)
    shadow = list(running.server.shadow_answers)
    assert len(shadow) == 101 and {e["version"] for e in shadow} == {"3"}
    with running.client() as c:
        metrics = c.get("/metrics").text
    for version in ("1", "2"):
        count = versions[version] + (version == "2")
        line = f'plinth_serving_requests_total{{endpoint="grpc_infer",model="churn",status="200",version="{version}"}}'
        assert f"{line} {float(count)}" in metrics
    assert 'plinth_serving_requests_total{endpoint="shadow",model="churn",status="200",version="3"} 101.0' in metrics
    running.server.inference_log.stop()
    logged = DeltaTable(location).to_pandas()
    assert Counter(zip(logged["version"], logged["shadow"], strict=True)) == {
        ("1", False): versions["1"],
        ("2", False): versions["2"] + 1,
        ("3", True): 101,
    }
    first = logged[~logged["shadow"]].iloc[0]
    assert json.loads(first["inputs"]) == rows.to_dict(orient="records") and first["rows"] == 2


@pytest.mark.usefixtures("three_versions")
def test_grpc_and_http_clients_meet_the_same_version_for_one_sticky_key(serve: Callable[..., Any]) -> None:
    from plinth.serving import create_deployment, load_deployment

    create_deployment("churn", {"models:/iris/1": 50, "models:/iris/2": 50}, sticky_key="user_id")
    running = serve([load_deployment("churn")], ServingOptions(grpc_port=0))
    rows = iris()[0].iloc[[0]]
    seen: dict[str, set[str]] = {}
    with (
        tgrpc.InferenceServerClient(f"127.0.0.1:{running.server.grpc.port}") as grpc_client,
        thttp.InferenceServerClient(running.url.removeprefix("http://")) as http_client,
    ):
        for user in range(40):
            key = {"user_id": f"user-{user}"}
            by_grpc = grpc_client.infer("churn", column_inputs(tgrpc, rows), headers=key)
            by_param = grpc_client.infer("churn", column_inputs(tgrpc, rows), parameters=key)
            by_http = http_client.infer("churn", column_inputs(thttp, rows), headers=key)
            seen[key["user_id"]] = {
                by_grpc.get_response().model_version,
                by_param.get_response().model_version,
                by_http.get_response()["model_version"],
            }
    assert all(len(versions) == 1 for versions in seen.values())  # one key, one version, any door
    assert set().union(*seen.values()) == {"1", "2"}  # and the keys split across both


@pytest.mark.parametrize(
    ("datatype", "values"),
    [
        ("BOOL", [True, False, True]),
        ("INT8", [-3, 0, 7]),
        ("INT32", [-70000, 1, 2]),
        ("INT64", [-(2**40), 0, 2**40]),
        ("UINT8", [0, 128, 255]),
        ("UINT64", [0, 1, 2**63]),
        ("FP32", [0.5, -1.25, 3.0]),
        ("FP64", [0.1, -2.5, 1e300]),
        ("BYTES", [b"a", b"", "\u00e9t\u00e9".encode()]),
    ],
)
def test_grpc_typed_and_raw_contents_decode_to_the_same_tensor(datatype: str, values: list[Any]) -> None:
    """What tritonclient sends raw and what a contents client sends decode alike, and encode back."""
    from plinth.serving.grpc_server import CONTENTS_FIELD, request_body, response_of
    from plinth.serving.raw_tensors import encode_raw

    typed = pb.ModelInferRequest(model_name="m")
    getattr(typed.inputs.add(name="x", datatype=datatype, shape=[3]).contents, CONTENTS_FIELD[datatype]).extend(values)
    raw = pb.ModelInferRequest(model_name="m")
    raw.inputs.add(name="x", datatype=datatype, shape=[3])
    raw.raw_input_contents.append(encode_raw(datatype, values))
    from_typed, from_raw = request_body(typed)["inputs"][0], request_body(raw)["inputs"][0]
    assert from_typed == from_raw == {"name": "x", "shape": [3], "datatype": datatype, "data": values}
    served = ServedModel("m", "1", None)
    outputs = [{"name": "y", "shape": [3], "datatype": datatype, "data": values}]
    assert response_of(served, raw, outputs).raw_output_contents[0] == encode_raw(datatype, values)
    reply = response_of(served, typed, outputs)
    assert list(getattr(reply.outputs[0].contents, CONTENTS_FIELD[datatype])) == values
    if datatype == "BYTES":  # a truncated element is named, not read past the end
        raw.raw_input_contents[0] = encode_raw(datatype, values)[:-1]
        with pytest.raises(InvalidInput, match=r"input 'x': BYTES element 2 needs 5 bytes, 4 are left"):
            request_body(raw)


def test_triton_statistics_and_repository_index(serve: Callable[..., Any], iris_folder: Path) -> None:
    """``ModelStatistics`` from the server's own counters and ``RepositoryIndex`` of what it serves,
    asked by tritonclient's own calls."""
    from plinth.models import load
    from plinth.serving.app import Route

    shadow = ServedModel("iris", "2", load(iris_folder))
    models = [Route("iris", [load_served(str(iris_folder))], shadow=shadow), ServedModel("boom", "3", Exploding())]
    running = serve(models, ServingOptions(grpc_port=0))
    url = f"127.0.0.1:{running.server.grpc.port}"
    X, _ = iris()
    with tgrpc.InferenceServerClient(url) as client:
        assert client.infer("iris", column_inputs(tgrpc, X.head(3))).as_numpy("output-0").shape == (3,)
        assert client.infer("iris", column_inputs(tgrpc, X.head(2))).as_numpy("output-0").shape == (2,)
        with pytest.raises(InferenceServerException, match="missing input 'petal_width'"):
            client.infer("iris", column_inputs(tgrpc, X.head(2))[:3])
        deadline = time.monotonic() + 10  # the shadow's calls run in the background
        while time.monotonic() < deadline:
            stats = client.get_inference_statistics("iris", as_json=True)["model_stats"]
            if len(stats) == 2 and int(stats[1].get("execution_count", 0)) == 2:
                break
            time.sleep(0.05)
        served, mirrored = stats
        assert (served["name"], served["version"], mirrored["version"]) == ("iris", "1", "2")
        # uint64 fields come as strings in tritonclient's JSON; absent when 0
        assert (int(served["inference_count"]), int(served["execution_count"])) == (5, 2)
        assert int(served["inference_stats"]["success"]["count"]) == 2
        assert int(served["inference_stats"]["success"]["ns"]) > 0
        assert int(served["inference_stats"]["fail"]["count"]) == 1
        # the refused request's time is counted as failed, not as success
        registry = running.server.metrics.registry
        labels = {"model": "iris", "version": "1"}
        failed_s = registry.get_sample_value("plinth_serving_failed_request_seconds_total", labels)
        total_s = registry.get_sample_value("plinth_serving_request_seconds_sum", labels)
        assert failed_s is not None and total_s is not None and 0 < failed_s < total_s
        assert int(served["inference_stats"]["fail"]["ns"]) == int(failed_s * 1e9)
        assert abs(int(served["inference_stats"]["success"]["ns"]) - (total_s - failed_s) * 1e9) <= 1
        assert (int(mirrored["inference_count"]), int(mirrored["execution_count"])) == (5, 2)
        assert [s["version"] for s in client.get_inference_statistics("iris", "2", as_json=True)["model_stats"]] == [
            "2"
        ]
        everything = client.get_inference_statistics(as_json=True)["model_stats"]
        assert [(s["name"], s["version"]) for s in everything] == [("iris", "1"), ("iris", "2"), ("boom", "3")]
        assert "inference_count" not in everything[2]  # never called: zero
        with pytest.raises(InferenceServerException) as info:
            client.get_inference_statistics("iris", "7")
        assert info.value.status() == "StatusCode.NOT_FOUND"
        assert info.value.message() == "model 'iris' has no version '7' here; served: 1, 2"
        with pytest.raises(InferenceServerException, match="model 'nope' is not served here"):
            client.get_inference_statistics("nope")

        index = client.get_model_repository_index(as_json=True)["models"]
        assert index == [
            {"name": "iris", "version": "1", "state": "READY"},
            {
                "name": "iris",
                "version": "2",
                "state": "READY",
                "reason": "shadow: mirrored requests only, its answers are logged and never returned",
            },
            {"name": "boom", "version": "3", "state": "READY"},
        ]
    with grpc.insecure_channel(url) as channel, pytest.raises(grpc.RpcError) as rpc:
        service.GRPCInferenceServiceStub(channel).RepositoryIndex(pb.RepositoryIndexRequest(repository_name="other"))
    assert rpc.value.code() == grpc.StatusCode.NOT_FOUND and "this server has one repository" in rpc.value.details()
