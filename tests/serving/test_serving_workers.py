"""``plinth serve --workers N``: N processes on one port, each answering with its own models."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import httpx
import psutil
import pytest
import tritonclient.grpc as tgrpc
from test_serving_cli import env, start_serving
from tritonclient.utils import InferenceServerException

from models_support import iris
from plinth.serving.v2grpc import grpc_service_pb2_grpc as service
from plinth.serving.v2grpc import inference_messages_pb2 as pb
from tests_support import free_port_for_subprocess, run_async

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def _worker_of(url: str) -> str:
    """The pid of the worker that answered, on a fresh connection (so the kernel picks a worker)."""
    r = httpx.get(f"{url}/v2/health/live", timeout=10, headers={"connection": "close"})
    assert r.status_code == 200 and r.json() == {"live": True}
    return r.headers["x-plinth-worker"]


def test_two_workers_share_the_port_and_stop_cleanly_on_sigterm(iris_folder: Path, tmp_path: Path) -> None:
    proc, client = start_serving(tmp_path / "home", str(iris_folder), "--workers", "2")
    try:
        children = psutil.Process(proc.pid).children(recursive=True)
        workers = {str(p.pid) for p in children if any("spawn_main" in part for part in p.cmdline())}
        assert len(workers) == 2, workers
        url = str(client.base_url).rstrip("/")
        seen: set[str] = set()
        deadline = time.monotonic() + 120  # the second worker may still be loading its model
        with ThreadPoolExecutor(16) as pool:
            while seen != workers and time.monotonic() < deadline:
                seen.update(pool.map(lambda _: _worker_of(url), range(64)))
        assert seen == workers  # both processes answered, and nothing else did

        X, _ = iris()
        rows = X.head(3)
        body = {
            "inputs": [
                {"name": n, "shape": [3], "datatype": "FP64", "data": rows[n].astype(float).tolist()} for n in FEATURES
            ]
        }
        answers = {
            tuple(client.post("/v2/models/iris/infer", json=body).json()["outputs"][0]["data"]) for _ in range(8)
        }
        assert answers == {(0, 0, 0)}  # every worker serves the same model: the first iris rows are setosa
        bad = client.post("/v2/models/iris/infer", json={"inputs": [{"name": "sepal_length"}]})
        assert bad.status_code == 400 and "shape must be a list" in bad.json()["error"]
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert not [p for p in map(int, workers) if psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"]
    assert "serving iris version 1" in out


def _grpc_worker_of(url: str) -> str:
    """The pid of the worker that answered ServerLive, on a connection of its own."""
    options = [("grpc.use_local_subchannel_pool", 1)]  # else channels to one address share a connection
    with grpc.insecure_channel(url, options=options) as channel:
        reply, call = service.GRPCInferenceServiceStub(channel).ServerLive.with_call(pb.ServerLiveRequest(), timeout=10)
    assert reply.live
    return dict(call.initial_metadata())["x-plinth-worker"]


def _listening_on(pid: int, port: int) -> bool:
    return any(c.status == psutil.CONN_LISTEN and c.laddr.port == port for c in psutil.Process(pid).net_connections())


def test_two_workers_share_the_grpc_port_for_a_triton_client(iris_folder: Path, tmp_path: Path) -> None:
    grpc_port = free_port_for_subprocess()
    grpc_url = f"127.0.0.1:{grpc_port}"
    proc, _ = start_serving(tmp_path / "home", str(iris_folder), "--workers", "2", "--grpc-port", str(grpc_port))
    try:
        children = psutil.Process(proc.pid).children(recursive=True)
        workers = {p.pid for p in children if any("spawn_main" in part for part in p.cmdline())}
        assert len(workers) == 2, workers
        deadline = time.monotonic() + 120  # the second worker may still be loading its model
        while not all(_listening_on(pid, grpc_port) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert all(_listening_on(pid, grpc_port) for pid in workers)  # each worker bound the one port
        seen: set[str] = set()
        with ThreadPoolExecutor(8) as pool:
            while seen != {str(p) for p in workers} and time.monotonic() < deadline:
                seen.update(pool.map(lambda _: _grpc_worker_of(grpc_url), range(32)))
        assert seen == {str(p) for p in workers}  # the kernel spread the connections over both

        X, _ = iris()
        rows = X.head(3)
        for _ in range(6):  # a client per connection: whichever worker takes it answers the same
            with tgrpc.InferenceServerClient(grpc_url, channel_args=[("grpc.use_local_subchannel_pool", 1)]) as client:
                assert client.is_server_ready() and client.is_model_ready("iris")
                inputs = []
                for name in FEATURES:
                    tensor = tgrpc.InferInput(name, [3], "FP64")
                    tensor.set_data_from_numpy(rows[name].to_numpy())
                    inputs.append(tensor)
                assert client.infer("iris", inputs).as_numpy("output-0").tolist() == [0, 0, 0]
                with pytest.raises(InferenceServerException, match="missing input 'petal_width'"):
                    client.infer("iris", inputs[:3])
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert f"serving the v2 protocol over gRPC at 127.0.0.1:{grpc_port}" in out
    with socket.socket() as again:  # both workers let go of the port
        again.bind(("127.0.0.1", grpc_port))


def test_workers_refuse_a_taken_or_any_grpc_port_and_a_count_below_one(iris_folder: Path, tmp_path: Path) -> None:
    base = [sys.executable, "-m", "plinth.cli.main", "serve", str(iris_folder), "--port", "1"]
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for extra, message in (
            (["--workers", "2", "--grpc-port", "0"], "--grpc-port 0 picks a free port per process"),
            (["--workers", "2", "--grpc-port", str(port)], f"cannot listen for gRPC on 127.0.0.1:{port}"),
            (["--workers", "0"], "--workers must be at least 1, got 0"),
        ):
            out = subprocess.run(
                [*base, *extra], env=env(tmp_path / "home"), capture_output=True, text=True, timeout=120
            )
            assert out.returncode == 2, (extra, out.stderr)
            assert message in out.stderr + out.stdout


def test_one_process_does_not_silently_share_a_taken_grpc_port(iris_folder: Path) -> None:
    """gRPC turns SO_REUSEPORT on by default; a lone server turns it off, so a taken port is an error."""
    from plinth.core.errors import InvalidInput
    from plinth.serving import ModelServer, ServingOptions, load_served
    from plinth.serving.grpc_server import start_grpc

    server = ModelServer([load_served(str(iris_folder))], ServingOptions())

    async def twice() -> tuple[int, str]:
        first = await start_grpc(server, "127.0.0.1", 0)
        try:
            await start_grpc(server, "127.0.0.1", first.port)
        except InvalidInput as exc:
            return first.port, str(exc)
        finally:
            await first.stop(0)
        return first.port, "the second server started"

    port, error = run_async(twice())
    assert f"cannot listen for gRPC on 127.0.0.1:{port}" in error
