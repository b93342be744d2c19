"""Serving over gRPC next to REST and the anchor, side by side in one run, interleaved.

Every server runs at once, each in its own process, with one worker; one client at a time
drives one target sequentially (closed loop) for ``--requests`` calls, then the next target,
for ``--rounds`` rounds, so that the machine's load falls on every target alike:

* ``mlflow models serve`` of the same scikit-learn pipeline, ``/invocations`` (``dataframe_split``),
  through httpx: the anchor;
* ``plinth serve`` v2 ``infer`` over REST (JSON), through the same httpx client;
* ``plinth serve --grpc-port`` ``ModelInfer`` through a gRPC stub: one FP64 tensor per column,
  values as raw little-endian bytes (what tritonclient sends);

each with 1 row and with 100 rows per request, batching on (the default).

    python -m benchmarks.serving.bench_grpc                  # 3 rounds of 300 requests per target
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx

from benchmarks.serving.bench_serve import (
    FEATURES,
    _free_port,
    _mlflow_command,
    _model_folder,
    _rows,
    split_body,
    v2_body,
)

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def _server(command: list[str], ready: str, extra_env: dict[str, str] | None = None) -> Iterator[None]:
    """A server process in its own session (mlflow serves from a child), up once ``ready`` answers 200."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLINTH_")} | (extra_env or {})
    env["PATH"] = os.pathsep.join([str(Path(command[0]).parent), env.get("PATH", "")])  # mlflow execs uvicorn
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while True:
            assert proc.poll() is None, f"{command[:3]} exited with {proc.returncode}"
            assert time.monotonic() < deadline, f"{ready} did not answer in 180 s"
            try:
                if httpx.get(ready, timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        yield
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)


def _grpc_call(port: int, rows: list[list[float]]) -> Callable[[], Any]:
    import grpc
    import numpy as np

    from plinth.serving.v2grpc import grpc_service_pb2_grpc as service
    from plinth.serving.v2grpc import inference_messages_pb2 as pb

    stub = service.GRPCInferenceServiceStub(grpc.insecure_channel(f"127.0.0.1:{port}"))
    request = pb.ModelInferRequest(model_name="iris")
    columns = np.asarray(rows, dtype="<f8").T
    for name, column in zip(FEATURES, columns, strict=True):
        request.inputs.add(name=name, datatype="FP64", shape=[len(rows)])
        request.raw_input_contents.append(column.tobytes())

    def call() -> Any:
        reply = stub.ModelInfer(request)
        assert len(reply.raw_output_contents[0]) == 8 * len(rows)

    return call


def _http_call(client: httpx.Client, path: str, body: dict[str, Any]) -> Callable[[], Any]:
    content = json.dumps(body).encode()
    headers = {"content-type": "application/json"}

    def call() -> Any:
        response = client.post(path, content=content, headers=headers)
        assert response.status_code == 200, response.text

    return call


def _timed(call: Callable[[], Any], n: int) -> list[float]:
    for _ in range(min(20, n)):  # warm the connection and the model
        call()
    out = []
    for _ in range(n):
        start = time.perf_counter()
        call()
        out.append((time.perf_counter() - start) * 1e3)
    return out


def run(emit: Callable[..., Any], requests: int = 300, rounds: int = 3) -> dict[str, list[float]]:
    """Latencies in ms per target label, every round pooled."""
    results: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        work = Path(tmp)
        iris = _model_folder(work)
        mlflow_port, plinth_port, grpc_port = _free_port(), _free_port(), _free_port()
        mlflow = [part.replace("{port}", str(mlflow_port)) for part in _mlflow_command(work)]
        code = "from plinth.cli.main import main; main()"
        plinth = [sys.executable, "-c", code, "serve", str(iris), "--port", str(plinth_port)]
        stack.enter_context(_server(mlflow, f"http://127.0.0.1:{mlflow_port}/ping"))
        stack.enter_context(_server([*plinth, "--grpc-port", str(grpc_port)], f"http://127.0.0.1:{plinth_port}/v2"))
        to_mlflow = stack.enter_context(httpx.Client(base_url=f"http://127.0.0.1:{mlflow_port}", timeout=30))
        to_plinth = stack.enter_context(httpx.Client(base_url=f"http://127.0.0.1:{plinth_port}", timeout=30))
        calls: dict[str, Callable[[], Any]] = {}
        for n in (1, 100):
            rows = _rows(n)
            label = f"{n} row{'s' if n > 1 else ''}"
            calls[f"mlflow models serve /invocations, {label}"] = _http_call(
                to_mlflow, "/invocations", split_body(rows)
            )
            calls[f"plinth REST v2 infer (JSON), {label}"] = _http_call(
                to_plinth, "/v2/models/iris/infer", v2_body(rows)
            )
            calls[f"plinth gRPC ModelInfer (raw), {label}"] = _grpc_call(grpc_port, rows)
        for r in range(rounds):
            for label, call in calls.items():
                latencies = _timed(call, requests)
                results.setdefault(label, []).extend(latencies)
                emit(
                    workload=label,
                    round=r,
                    p50_ms=round(statistics.median(latencies), 3),
                    loadavg=Path("/proc/loadavg").read_text().split()[:3],
                )
    return results


def table(results: dict[str, list[float]]) -> str:
    lines = ["| target | p50 ms | p90 ms | requests/s (1 client) |", "|---|---|---|---|"]
    for label, ms in results.items():
        p50, p90 = statistics.median(ms), statistics.quantiles(ms, n=10)[-1]
        lines.append(f"| {label} | {p50:.2f} | {p90:.2f} | {1e3 / statistics.fmean(ms):,.0f} |")
    return "\n".join(lines)


def cli(doc: str | None, run: Callable[..., dict[str, list[float]]]) -> None:
    """The command line of a sequential-client benchmark (this one and ``bench_enrich``):
    ``run(emit, requests, rounds)``, then the load average and the table."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=300, help="calls per target per round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    before = Path("/proc/loadavg").read_text().split()[:3]
    results = run(lambda **f: print(json.dumps(f), flush=True), args.requests, args.rounds)
    after = Path("/proc/loadavg").read_text().split()[:3]
    print(f"\n{started}; load average before {' '.join(before)}, after {' '.join(after)}\n")
    print(table(results))


def main() -> None:
    cli(__doc__, run)


if __name__ == "__main__":
    main()
