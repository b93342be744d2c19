"""Adaptive micro-batching through a real server: merged calls, each caller its own rows.

The cases are the known failures of other batchers: rows of one request spread over
calls, a batch larger than the maximum, answers handed to the wrong caller, one bad
request failing its neighbours.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from plinth.models.signature import ColumnSpec, Signature, TensorSpec, prepare_input
from plinth.serving import ServedModel, ServingOptions
from tests_support import run_async


class Recorder:
    """Answers 10 * id + 1 per row (the row's first value is its id), recording each call.

    A call costs a fixed 20 ms, as a model with a per-call overhead does.
    """

    signature = Signature(TensorSpec("float64", (-1, 2)))
    flavor = "python"

    def __init__(self) -> None:
        self.calls: list[list[float]] = []
        self.lock = threading.Lock()

    def predict(self, data: Any) -> Any:
        array = np.asarray(data)
        with self.lock:
            self.calls.append(array[:, 0].tolist())
        time.sleep(0.02)
        if (array[:, 1] < 0).any():
            raise ValueError("negative flag")
        return array[:, 0] * 10 + 1


def body(ids: list[int], flag: float = 0.0) -> dict[str, Any]:
    data = [[float(i), flag] for i in ids]
    return {"inputs": [{"name": "input-0", "shape": [len(ids), 2], "datatype": "FP64", "data": data}]}


async def send_all(url: str, requests: list[dict[str, Any]]) -> list[Any]:
    import httpx

    limits = httpx.Limits(max_connections=len(requests))
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as c:
        return await asyncio.gather(*(c.post("/v2/models/rec/infer", json=r) for r in requests))


def test_concurrent_callers_get_exactly_their_own_rows(serve: Callable[..., Any]) -> None:
    model = Recorder()
    running = serve([ServedModel("rec", "1", model)], ServingOptions(max_batch_size=16, max_wait_ms=10))
    # 60 callers, 1 to 5 rows each, every row id distinct
    sizes = [1 + i % 5 for i in range(60)]
    starts = np.cumsum([0, *sizes[:-1]])
    requests = [list(range(int(s), int(s) + n)) for s, n in zip(starts, sizes, strict=True)]
    answers = run_async(send_all(running.url, [body(ids) for ids in requests]))
    for ids, r in zip(requests, answers, strict=True):
        assert r.status_code == 200, r.text
        out = r.json()["outputs"][0]
        assert out["shape"] == [len(ids)]
        assert out["data"] == [i * 10.0 + 1 for i in ids]
    seen = [row for call in model.calls for row in call]
    assert sorted(seen) == sorted(i for ids in requests for i in ids)  # each row once
    assert max(len(c) for c in model.calls) <= 16
    assert len(model.calls) < len(requests) / 2  # requests really were merged
    for ids in requests:  # a request's rows stay together, in order, in one call
        assert any(c[i : i + len(ids)] == [float(x) for x in ids] for c in model.calls for i in range(len(c)))
    metrics = running.client().get("/metrics").text
    assert 'plinth_serving_batch_rows_count{model="rec",version="1"}' in metrics
    assert 'plinth_serving_requests_total{endpoint="infer",model="rec",status="200",version="1"} 60.0' in metrics


def test_a_request_larger_than_the_maximum_runs_alone(serve: Callable[..., Any]) -> None:
    model = Recorder()
    running = serve([ServedModel("rec", "1", model)], ServingOptions(max_batch_size=8, max_wait_ms=20))
    big = list(range(1000, 1020))
    small = [[i] for i in range(30)]
    answers = run_async(send_all(running.url, [body(ids) for ids in [*small[:15], big, *small[15:]]]))
    assert all(r.status_code == 200 for r in answers), [r.text for r in answers]
    assert answers[15].json()["outputs"][0]["data"] == [i * 10.0 + 1 for i in big]
    assert [float(i) for i in big] in model.calls  # one call with exactly the big request
    assert all(len(c) <= 8 for c in model.calls if c != [float(i) for i in big])


def test_a_failing_row_set_fails_only_its_own_request(serve: Callable[..., Any]) -> None:
    model = Recorder()
    running = serve([ServedModel("rec", "1", model)], ServingOptions(max_batch_size=32, max_wait_ms=20))
    requests = [body([i, i + 100], flag=-1.0 if i % 7 == 0 else 0.0) for i in range(1, 29)]
    answers = run_async(send_all(running.url, requests))
    for i, r in zip(range(1, 29), answers, strict=True):
        if i % 7 == 0:
            assert r.status_code == 500
            assert r.json()["error"] == "model 'rec' version 1 failed: ValueError: negative flag"
        else:
            assert r.status_code == 200, r.text
            assert r.json()["outputs"][0]["data"] == [i * 10.0 + 1, (i + 100) * 10.0 + 1]
    metrics = running.client().get("/metrics").text
    assert 'plinth_serving_errors_total{kind="model_error",model="rec",version="1"} 4.0' in metrics


def test_batching_off_calls_the_model_once_per_request(serve: Callable[..., Any]) -> None:
    model = Recorder()
    running = serve([ServedModel("rec", "1", model)], ServingOptions(batching=False))
    answers = run_async(send_all(running.url, [body([i]) for i in range(10)]))
    assert [r.json()["outputs"][0]["data"] for r in answers] == [[i * 10.0 + 1] for i in range(10)]
    assert sorted(model.calls) == [[float(i)] for i in range(10)]


def test_batching_raises_throughput_for_a_model_with_a_per_call_cost(serve: Callable[..., Any]) -> None:
    """40 single-row callers: batched, a handful of 20 ms calls; unbatched, forty."""
    batched, single = Recorder(), Recorder()
    on = serve([ServedModel("rec", "1", batched)], ServingOptions(max_batch_size=64, max_wait_ms=5))
    off = serve([ServedModel("rec", "1", single)], ServingOptions(batching=False))
    run_async(send_all(on.url, [body([i]) for i in range(40)]))
    run_async(send_all(off.url, [body([i]) for i in range(40)]))
    assert len(single.calls) == 40
    assert len(batched.calls) <= 10


class ColumnCounter:
    """A column model that counts its input checks: ``predict()`` checks, as LoadedModel's does."""

    signature = Signature([ColumnSpec("a", "float64"), ColumnSpec("b", "int64")])
    flavor = "python"

    def __init__(self) -> None:
        self.prepared: list[int] = []
        self.calls: list[Any] = []
        self.lock = threading.Lock()

    def prepare(self, data: Any) -> Any:
        with self.lock:
            self.prepared.append(len(data))
        return prepare_input(data, self.signature)

    def predict(self, data: Any) -> Any:
        frame = self.prepare(data)
        with self.lock:
            self.calls.append(type(data))
        time.sleep(0.01)
        return (frame["a"] * 10 + frame["b"]).to_numpy()


def column_body(i: int) -> dict[str, Any]:
    return {
        "inputs": [
            {"name": "a", "shape": [1], "datatype": "FP64", "data": [float(i)]},
            {"name": "b", "shape": [1], "datatype": "INT64", "data": [1]},
        ]
    }


def test_column_requests_are_checked_once_per_merged_call(serve: Callable[..., Any]) -> None:
    """v2 column inputs travel as arrays; each merged call gets ONE DataFrame, checked once."""
    import pandas as pd

    model = ColumnCounter()
    running = serve([ServedModel("cols", "1", model)], ServingOptions(max_batch_size=64, max_wait_ms=20))
    requests = [column_body(i) for i in range(30)]

    async def go() -> list[Any]:
        import httpx

        async with httpx.AsyncClient(base_url=running.url, timeout=30) as c:
            return await asyncio.gather(*(c.post("/v2/models/cols/infer", json=r) for r in requests))

    answers = run_async(go())
    assert [r.json()["outputs"][0]["data"] for r in answers] == [[i * 10.0 + 1] for i in range(30)]
    assert all(t is pd.DataFrame for t in model.calls)
    assert len(model.calls) < 30  # merged
    assert len(model.prepared) == len(model.calls)  # one check per model call, none per request
    bad = running.client().post(
        "/v2/models/cols/infer",
        json={"inputs": [{"name": "a", "shape": [1], "datatype": "BYTES", "data": ["x"]}, column_body(0)["inputs"][1]]},
    )
    assert bad.status_code == 400
    assert bad.json()["error"] == "input 'a' has datatype BYTES, expected FP64 with shape [-1]"


def test_a_lone_request_does_not_wait_for_a_batch_to_fill(serve: Callable[..., Any]) -> None:
    """With a one-minute wait allowed, a request with no company is still answered at once."""
    import httpx

    model = Recorder()
    running = serve([ServedModel("rec", "1", model)], ServingOptions(max_batch_size=64, max_wait_ms=60_000))
    with httpx.Client(base_url=running.url, timeout=20) as client:  # far below the minute the batch may wait
        answers = [client.post("/v2/models/rec/infer", json=body([i])) for i in range(3)]
    assert [r.json()["outputs"][0]["data"] for r in answers] == [[1.0], [11.0], [21.0]]
    assert model.calls == [[0.0], [1.0], [2.0]]


def test_a_quick_model_runs_on_the_event_loop_and_a_slow_one_on_the_thread() -> None:
    import pandas as pd

    from plinth.serving import MicroBatcher

    threads: dict[str, set[int]] = {"quick": set(), "slow": set()}

    def quick(frame: Any) -> Any:
        threads["quick"].add(threading.get_ident())
        return frame.iloc[:, 0].to_numpy() * 2

    def slow(frame: Any) -> Any:
        threads["slow"].add(threading.get_ident())
        time.sleep(0.01)
        return frame.iloc[:, 0].to_numpy() * 3

    async def drive(predict: Any) -> tuple[list[Any], MicroBatcher, int]:
        batcher = MicroBatcher(predict, max_batch_size=64, max_wait_ms=1, inline_below_ms=5)
        batcher.start()
        answers = []
        for i in range(6):  # one after another: the first call measures the model's cost
            answers.append(await batcher.submit(pd.DataFrame({"x": [float(i), 1.0]}), rows=2))
        await batcher.stop()
        return answers, batcher, threading.get_ident()

    answers, batcher, loop_thread = run_async(drive(quick))
    assert [a.tolist() for a in answers] == [[2.0 * i, 2.0] for i in range(6)]
    assert batcher.inline and batcher.cost_s is not None and batcher.cost_s < 0.005
    assert loop_thread in threads["quick"] and len(threads["quick"]) == 2  # the thread once, then the loop
    answers, batcher, loop_thread = run_async(drive(slow))
    assert [a.tolist() for a in answers] == [[3.0 * i, 3.0] for i in range(6)]
    assert not batcher.inline and batcher.cost_s is not None and batcher.cost_s >= 0.01
    assert loop_thread not in threads["slow"]  # a 10 ms model never blocks the event loop
