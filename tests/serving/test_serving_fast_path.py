"""The request path's shortcuts answer exactly as the general path: one socket write per
answer, v2 columns handed to a scikit-learn model as one matrix, the body read from the raw
ASGI messages."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from plinth.serving import ServedModel, ServingOptions
from plinth.serving.http_protocol import CoalescingHttpToolsProtocol, CoalescingTransport, http_protocol
from plinth.serving.protocol import decode_infer_request
from tests_support import free_port_for_subprocess, run_async

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


class _Recorder:
    """The far end of a transport: what reached it, write by write."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def writelines(self, chunks: list[bytes]) -> None:
        self.writes.append(b"".join(chunks))

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 1) if name == "peername" else default


def test_a_header_block_goes_out_with_the_next_write_or_alone_one_loop_turn_later() -> None:
    async def scenario() -> list[list[bytes]]:
        loop = asyncio.get_running_loop()
        seen = []
        for follow in ("body", "nothing", "close", "plain"):
            far = _Recorder()
            t = CoalescingTransport(far, loop)  # type: ignore[arg-type]
            if follow == "plain":
                t.write(b"just bytes")
            else:
                t.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
                assert far.writes == []  # held
                if follow == "body":
                    t.write(b"{}")
                elif follow == "close":
                    t.close()
                    assert far.closed
            await asyncio.sleep(0)  # the loop turns: anything held goes out
            await asyncio.sleep(0)
            assert t.get_extra_info("peername") == ("127.0.0.1", 1)  # everything else is the transport's
            seen.append(far.writes)
        return seen

    body, nothing, close, plain = run_async(scenario())
    assert body == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]  # one write
    assert nothing == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n"]  # alone, not lost
    assert close == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n"]  # sent before the close
    assert plain == [b"just bytes"]


def test_plinth_serve_picks_its_protocol_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PLINTH_SERVE_HTTP", raising=False)
    assert http_protocol() is CoalescingHttpToolsProtocol
    monkeypatch.setenv("PLINTH_SERVE_HTTP", "h11")
    assert http_protocol() == "h11"
    monkeypatch.setenv("PLINTH_SERVE_HTTP", "carrier-pigeon")
    with pytest.raises(ValueError, match="PLINTH_SERVE_HTTP must be coalescing, httptools, h11 or auto"):
        http_protocol()


def test_answers_that_await_between_their_start_and_body_stream_and_empty_ones_come_whole() -> None:
    """The coalescing protocol under a real uvicorn: a slow streamed answer, a chunked one, a
    204 and a HEAD all arrive intact, and keep-alive connections go on working."""
    import threading
    import time

    import uvicorn

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        if path == "/empty":
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        if path == "/slow":
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"5")]})
            await asyncio.sleep(0.05)  # the header block must not wait for this
            await send({"type": "http.response.body", "body": b"hello"})
            return
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        for part in (b"a", b"b", b"c"):
            await send({"type": "http.response.body", "body": part, "more_body": True})
            await asyncio.sleep(0.01)
        await send({"type": "http.response.body", "body": b""})

    port = free_port_for_subprocess()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", http=http_protocol()))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            for _ in range(3):  # one keep-alive connection through every kind
                with client.stream("GET", "/slow") as r:
                    assert r.status_code == 200 and r.headers["content-length"] == "5"
                    assert r.read() == b"hello"
                r = client.get("/chunked")
                assert (r.status_code, r.headers.get("transfer-encoding"), r.content) == (200, "chunked", b"abc")
                r = client.get("/empty")
                assert (r.status_code, r.content) == (204, b"")
                r = client.head("/slow")
                assert (r.status_code, r.content) == (200, b"")
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _columns(rows: np.ndarray, datatype: str = "FP64") -> Any:
    body = {
        "inputs": [
            {"name": n, "shape": [len(rows)], "datatype": datatype, "data": rows[:, i].tolist()}
            for i, n in enumerate(FEATURES)
        ]
    }
    return body


def test_a_sklearn_pipeline_takes_v2_columns_as_one_matrix_with_the_same_answers(iris_folder: Path) -> None:
    from plinth.models import load

    model = load(iris_folder)
    served = ServedModel("iris", "1", model)
    assert served._matrix == tuple(np.dtype("float64") for _ in FEATURES)
    rows = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]])
    data, n = decode_infer_request(_columns(rows), model.signature)
    expected = model.predict(data.frame())  # the general path: a DataFrame, checked by predict()
    calls: list[Any] = []
    original = model.predict_checked
    model.predict_checked = lambda x: calls.append(x) or original(x)  # type: ignore[method-assign]
    got = served.call(data)
    assert np.array_equal(got, expected) and n == 3
    assert isinstance(calls[0], np.ndarray) and calls[0].shape == (3, 4)  # the matrix was taken
    # integer columns for float inputs are allowed by the protocol: they go the general way,
    # cast by the signature, with the same answers
    ints = np.array([[5, 3, 1, 0], [7, 3, 5, 2]])
    data, _ = decode_infer_request(_columns(ints, "INT64"), model.signature)
    calls.clear()
    assert np.array_equal(served.call(data), model.predict(data.frame()))
    assert calls == []


def test_no_matrix_for_a_model_whose_signature_is_not_its_fitted_columns(tmp_path: Path) -> None:
    import pandas as pd
    from sklearn.linear_model import LinearRegression

    from plinth.models import load
    from plinth.models.packaging import save_model

    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": ["x", "y", "z"]})
    save_model(LinearRegression().fit(frame[["a"]], [1.0, 2.0, 3.0]), tmp_path / "m", input_example=frame)
    served = ServedModel("m", "1", load(tmp_path / "m"))
    assert served._matrix is None  # a string column in the signature: the DataFrame path


def test_bodies_over_the_limit_are_refused_while_streaming_in(iris_folder: Path, serve: Callable[..., Any]) -> None:
    from plinth.models import load

    running = serve([ServedModel("iris", "1", load(iris_folder))], ServingOptions(max_body_bytes=4096))
    rows = np.array([[5.1, 3.5, 1.4, 0.2]] * 600)  # about 9 kB of JSON

    def chunks() -> Any:  # no content-length: the limit is enforced as the body arrives
        data = httpx.Request("POST", "/", json=_columns(rows)).read()
        for i in range(0, len(data), 1000):
            yield data[i : i + 1000]

    with running.client() as client:
        r = client.post("/v2/models/iris/infer", content=chunks(), headers={"content-type": "application/json"})
        assert r.status_code == 413 and r.json()["code"] == "too_large"
        small = client.post("/v2/models/iris/infer", json=_columns(rows[:2]))
        assert small.status_code == 200 and small.json()["outputs"][0]["shape"] == [2]
        assert small.headers["content-type"] == "application/json"
        assert int(small.headers["content-length"]) == len(small.content)


def _one(values: list[Any], **change: Any) -> dict[str, Any]:
    inputs = [{"name": n, "shape": [1], "datatype": "FP64", "data": [v]} for n, v in zip(FEATURES, values, strict=True)]
    for key, value in change.items():  # a change to the first input
        if value is None:
            inputs[0].pop(key)
        else:
            inputs[0][key] = value
    return {"inputs": inputs}


def test_a_single_row_request_is_one_matrix_with_the_general_paths_columns_and_errors(
    iris_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from plinth.core.errors import InvalidInput
    from plinth.models import load
    from plinth.serving import protocol

    signature = load(iris_folder).signature
    good = _one([5.1, 3.5, 1.4, 0.2])
    good["inputs"].reverse()  # any order of the inputs
    fast, rows = decode_infer_request(good, signature)
    assert rows == 1 and fast.matrix is not None and fast.matrix.shape == (1, 4)
    assert fast.matrix.tolist() == [[5.1, 3.5, 1.4, 0.2]] and fast.names == tuple(FEATURES)
    general_one = protocol._one_row
    monkeypatch.setattr(protocol, "_one_row", lambda *a: None)
    general, _ = decode_infer_request(good, signature)
    assert general.matrix is None
    assert {n: a.tolist() for n, a in fast.arrays.items()} == {n: a.tolist() for n, a in general.arrays.items()}
    assert fast.frame().equals(general.frame())
    monkeypatch.setattr(protocol, "_one_row", general_one)
    # everything but the plain case goes the general way: the same answer or the same error
    twice = _one([5.1, 3.5, 1.4, 0.2])
    twice["inputs"][1]["name"] = FEATURES[0]
    variants = [
        _one([5, 3.5, 1.4, 0.2]),  # an int: cast by the general path
        _one(["5.1", 3.5, 1.4, 0.2]),
        _one([True, 3.5, 1.4, 0.2]),
        _one([5.1, 3.5, 1.4, 0.2], shape=[1, 1]),
        _one([5.1, 3.5, 1.4, 0.2], datatype="FP32"),  # widened to float64
        _one([5.1, 3.5, 1.4, 0.2], datatype="INT64"),
        _one([5.1, 3.5, 1.4, 0.2], shape=[True]),
        _one([5.1, 3.5, 1.4, 0.2], shape=[1.0]),
        _one([5.1, 3.5, 1.4, 0.2], shape=[2], data=[5.1, 5.2]),
        _one([5.1, 3.5, 1.4, 0.2], name="nope"),
        _one([5.1, 3.5, 1.4, 0.2], data=None),
        _one([5.1, 3.5, 1.4, 0.2], data=[]),
        {"inputs": _one([5.1, 3.5, 1.4, 0.2])["inputs"][:3]},
        {
            "inputs": [
                *_one([5.1, 3.5, 1.4, 0.2])["inputs"],
                {"name": "extra", "shape": [1], "datatype": "FP64", "data": [1.0]},
            ]
        },
        twice,
    ]
    for body in variants:
        assert protocol._one_row(body["inputs"], signature.inputs) is None, body
        outcomes = []
        for one_row in (general_one, lambda *a: None):
            monkeypatch.setattr(protocol, "_one_row", one_row)
            try:
                data, n = decode_infer_request(body, signature)
                outcomes.append(("ok", n, {k: v.tolist() for k, v in data.arrays.items()}))
            except InvalidInput as exc:
                outcomes.append(("error", str(exc), exc.details))
        assert outcomes[0] == outcomes[1], body
        if variants.index(body) >= 6:  # the general path takes the first six
            assert outcomes[0][0] == "error", body
    monkeypatch.setattr(protocol, "_one_row", general_one)


def test_single_row_requests_merge_into_one_batch_with_the_same_answers(iris_folder: Path) -> None:
    from plinth.models import load
    from plinth.serving.batching import _concat
    from plinth.serving.protocol import Columns

    model = load(iris_folder)
    served = ServedModel("iris", "1", model)
    rows = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]
    parts = [decode_infer_request(_one(r), model.signature)[0] for r in rows]
    merged = _concat(parts, lambda c: c)
    assert isinstance(merged, Columns) and merged.matrix is not None and merged.matrix.tolist() == rows
    mixed = _concat(
        [parts[0], Columns({n: np.array([v]) for n, v in zip(FEATURES, rows[1], strict=True)}, 1), parts[2]],
        lambda c: c,
    )
    assert mixed.matrix is None and np.array_equal(mixed.frame().to_numpy(), np.array(rows))
    expected = model.predict(merged.frame())
    assert np.array_equal(served.call(merged), expected)
    assert np.array_equal(served.call(mixed), expected)
