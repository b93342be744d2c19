"""Serving, side by side in one run, every server driven by ``wrk`` (16 connections, one
worker each, same machine):

* ``mlflow models serve`` of the same scikit-learn pipeline (StandardScaler +
  LogisticRegression on iris), logged with MLflow in the anchor environment, on its
  ``/invocations`` endpoint (``dataframe_split``), single rows and 100 rows;
* a no-op endpoint on the HTTP stack Plinth serves with (raw ASGI under uvicorn), and the
  same no-op as a FastAPI route: the ceiling;
* a plain FastAPI endpoint calling the pipeline once per request;
* ``plinth serve`` v2 ``infer``: single rows and 100 rows, batching on and off;
* a model with a fixed cost per call (5 ms), batching on and off: once as a wait that releases
  the GIL (a GPU launch, a remote call), once as CPU work that holds it (a framework's
  per-call overhead);
* the time from starting ``plinth serve`` to its first ready answer.

    python -m benchmarks.serving.bench_serve                      # everything, ~10 s per target
    python -m benchmarks.serving.bench_serve --compare-src OLD/src  # also the code in OLD/src, interleaved

``wrk`` (the Debian package) must be on PATH. The load generator shares the CPUs with the
server under test, as it does for every target alike.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
CONNECTIONS = 16
SECONDS = 10
FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
_UVICORN = ["--workers", "1", "--no-access-log", "--log-level", "warning"]

# the anchor: the same pipeline, trained the same way, saved by MLflow in its own environment
_MLFLOW_SAVE = """
import sys
import mlflow.sklearn
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

X, y = load_iris(return_X_y=True, as_frame=True)
X.columns = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
pipeline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=300)).fit(X, y)
mlflow.sklearn.save_model(pipeline, sys.argv[1], input_example=X.head(3))
"""

_LUA = """
local f = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _model_folder(root: Path) -> Path:
    """The iris pipeline saved as a Plinth model folder."""
    from benchmarks.serving.targets import iris_pipeline
    from plinth.models.packaging import save_model

    pipeline, X = iris_pipeline()
    folder = root / "iris"
    save_model(pipeline, folder, input_example=X.head(3))
    return folder


def _fixed_cost_folder(root: Path, cpu: bool = False) -> Path:
    import pandas as pd

    from benchmarks.serving.targets import FixedCostModel, FixedCpuCostModel
    from plinth.models.packaging import save_model

    folder = root / ("fixed_cpu" if cpu else "fixed")
    model = FixedCpuCostModel() if cpu else FixedCostModel()
    save_model(model, folder, input_example=pd.DataFrame({"x": [1.0, 2.0]}))
    return folder


def v2_body(rows: list[list[float]]) -> dict[str, Any]:
    columns = list(zip(*rows, strict=True))
    return {
        "inputs": [
            {"name": n, "shape": [len(rows)], "datatype": "FP64", "data": list(c)}
            for n, c in zip(FEATURES, columns, strict=True)
        ]
    }


def split_body(rows: list[list[float]]) -> dict[str, Any]:
    return {"dataframe_split": {"columns": FEATURES, "data": rows}}


def _rows(n: int) -> list[list[float]]:
    from sklearn.datasets import load_iris

    X = load_iris().data
    return [[float(v) for v in X[i % len(X)]] for i in range(n)]


@dataclass
class Target:
    label: str
    command: list[str]
    ready: str  # a GET path that answers 200 once the server is up
    path: str  # the POST path wrk drives
    body: dict[str, Any]
    rows: int
    env: dict[str, str] = field(default_factory=dict)
    group: str = ""


@dataclass
class Measured:
    label: str
    rows: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    ready_s: float
    cpu_us: float  # CPU time of the server's processes per request: steadier than requests/s on a busy machine
    group: str = ""

    @property
    def rows_per_s(self) -> float:
        return self.rps * self.rows


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its children (mlflow serves from a child)."""
    import psutil

    procs = [psutil.Process(pid)]
    procs += procs[0].children(recursive=True)
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


@contextmanager
def _running(target: Target, port: int) -> Iterator[tuple[float, int]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLINTH_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (target.env.get("PYTHONPATH"), str(ROOT)) if p)
    env.update({k: v for k, v in target.env.items() if k != "PYTHONPATH"})
    command = [part.replace("{port}", str(port)) for part in target.command]
    start = time.perf_counter()
    proc = subprocess.Popen(
        command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    try:
        ready_s = _wait_ready(proc, f"http://127.0.0.1:{port}{target.ready}", start)
        yield ready_s, proc.pid
    finally:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)  # mlflow runs its server as a child process
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _wait_ready(proc: subprocess.Popen[bytes], url: str, start: float) -> float:
    while time.perf_counter() - start < 120:
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise RuntimeError(f"{url}: the server exited with {proc.returncode}:\n{err[-3000:]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return time.perf_counter() - start
        except httpx.TransportError:
            pass
        time.sleep(0.01)
    raise RuntimeError(f"{url} did not answer in 120 s")


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)([a-z]+)", text).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def parse_wrk(output: str) -> tuple[float, float, float, int]:
    """(requests/s, p50 ms, p99 ms, failed requests) from ``wrk --latency`` output."""
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", output, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", output, re.M).group(1))  # type: ignore[union-attr]
    errors = 0
    if m := re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output):
        errors += int(m.group(1))
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output):
        errors += sum(int(g) for g in m.groups())
    return rps, p50, p99, errors


def _drive(url: str, body_file: Path, lua: Path, seconds: int) -> str:
    command = ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency", "--timeout", "10s", "-s", str(lua), url]
    out = subprocess.run(
        command, env={**os.environ, "BENCH_BODY": str(body_file)}, capture_output=True, text=True, check=True
    )
    return out.stdout


def measure(target: Target, work: Path, seconds: int) -> Measured:
    port = _free_port()
    body_file = work / f"body-{abs(hash(target.label))}.json"
    body_file.write_text(json.dumps(target.body))
    lua = work / "post.lua"
    lua.write_text(_LUA)
    with _running(target, port) as (ready_s, pid):
        url = f"http://127.0.0.1:{port}{target.path}"
        check = httpx.post(url, json=target.body, timeout=30)
        if check.status_code != 200:
            raise RuntimeError(f"{target.label}: {check.status_code} {check.text[:500]}")
        cpu = _cpu_seconds(pid)
        rps, p50, p99, errors = parse_wrk(_drive(url, body_file, lua, seconds))
        cpu_us = (_cpu_seconds(pid) - cpu) / max(rps * seconds, 1) * 1e6
    return Measured(target.label, target.rows, rps, p50, p99, errors, ready_s, cpu_us, target.group)


def _plinth(folder: Path, name: str, body: dict[str, Any], rows: int, *extra: str, src: str = "") -> Target:
    code = "from plinth.cli.main import main; main()"
    command = [sys.executable, "-c", code, "serve", str(folder), "--port", "{port}", *extra]
    env = {"PYTHONPATH": src} if src else {}
    return Target("", command, f"/v2/models/{name}/ready", f"/v2/models/{name}/infer", body, rows, env)


def _uvicorn(factory: str, path: str, body: dict[str, Any], rows: int) -> Target:
    command = [sys.executable, "-m", "uvicorn", f"benchmarks.serving.targets:{factory}", "--factory"]
    command += ["--host", "127.0.0.1", "--port", "{port}", *_UVICORN]
    ready = "/openapi.json" if factory != "noop_asgi" else "/"
    return Target("", command, ready, path, body, rows)


_NOOP_PLINTH_STACK = (
    "import sys, uvicorn; from benchmarks.serving.targets import noop_asgi; "
    "from plinth.serving.http_protocol import http_protocol; "
    "uvicorn.run(noop_asgi(), host='127.0.0.1', port=int(sys.argv[1]), http=http_protocol(), "
    "log_level='warning', access_log=False)"
)


def _noop_on_plinth_stack(body: dict[str, Any]) -> Target:
    """The raw ASGI no-op under uvicorn with the protocol ``plinth serve`` runs (one write per answer)."""
    return Target("", [sys.executable, "-c", _NOOP_PLINTH_STACK, "{port}"], "/", "/noop", body, 1)


def _mlflow_command(work: Path) -> tuple[list[str], dict[str, str]]:
    from benchmarks.anchors import anchor_python

    mlflow_python = anchor_python("mlflow")
    subprocess.run([str(mlflow_python), "-c", _MLFLOW_SAVE, str(work / "mlflow-iris")], check=True)
    command = [str(mlflow_python.parent / "mlflow"), "models", "serve", "-m", str(work / "mlflow-iris")]
    command += ["--env-manager", "local", "--host", "127.0.0.1", "--port", "{port}", "--workers", "1"]
    # mlflow starts its scoring server as `uvicorn` from PATH: the anchor environment's
    return command, {"PATH": f"{mlflow_python.parent}{os.pathsep}{os.environ.get('PATH', '')}"}


def targets(work: Path, compare_src: str | None, rounds: int, only: list[str] | None = None) -> list[Target]:
    """What to measure, in order; ``only``: the targets whose label contains one of these."""
    iris = _model_folder(work)
    fixed = _fixed_cost_folder(work)
    fixed_cpu = _fixed_cost_folder(work, cpu=True)
    one, hundred = _rows(1), _rows(100)
    out: list[Target] = []

    def add(group: str, label: str, target: Target) -> None:
        if not only or any(o in label for o in only):
            target.label, target.group = label, group
            out.append(target)

    mlflow, mlflow_env = _mlflow_command(work) if not only or any("mlflow" in o for o in only) else ([], {})

    add(
        "anchor",
        "mlflow models serve, 1 row",
        Target("", mlflow, "/ping", "/invocations", split_body(one), 1, mlflow_env),
    )
    add(
        "anchor",
        "mlflow models serve, 100 rows",
        Target("", mlflow, "/ping", "/invocations", split_body(hundred), 100, mlflow_env),
    )
    add(
        "plain",
        "FastAPI + pipeline per request, 1 row",
        _uvicorn("fastapi_pipeline", "/invocations", split_body(one), 1),
    )
    fixed_body = {"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [1.5]}]}
    sources = [("", "")] + ([(" (before)", compare_src)] if compare_src else [])
    configs = (("batching on", ()), ("batching off", ("--no-batching",)))
    for r in range(rounds):
        # the ceilings are measured every round too: each ratio is best round against best round
        add(f"ceiling{r}", "no-op, raw ASGI (uvicorn)", _uvicorn("noop_asgi", "/noop", split_body(one), 1))
        add(f"ceiling{r}", "no-op, raw ASGI (plinth serve's protocol)", _noop_on_plinth_stack(split_body(one)))
        add(f"ceiling{r}", "no-op, FastAPI route (uvicorn)", _uvicorn("noop_fastapi", "/noop", split_body(one), 1))
        for rows, body in ((1, v2_body(one)), (100, v2_body(hundred))):
            for config, extra in configs:
                for suffix, src in sources:  # old and new code back to back, interleaved
                    label = f"plinth serve, {rows} row{'s' if rows > 1 else ''}, {config}{suffix}"
                    add(f"plinth{r}", label, _plinth(iris, "iris", body, rows, *extra, src=src))
        for config, extra in configs:
            add(f"fixed{r}", f"fixed 5 ms/call model, 1 row, {config}", _plinth(fixed, "fixed", fixed_body, 1, *extra))
        for config, extra in configs:
            label = f"fixed 5 ms CPU/call model, 1 row, {config}"
            add(f"fixedcpu{r}", label, _plinth(fixed_cpu, "fixed_cpu", fixed_body, 1, *extra))
    return out


def table(results: list[Measured]) -> str:
    lines = [
        "| target | requests/s | rows/s | p50 ms | p99 ms | failed | server CPU µs/request | ready s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for m in results:
        ready = f"{m.ready_s:.2f}" if m.label.startswith("plinth") else ""
        numbers = f"{m.rps:,.0f} | {m.rows_per_s:,.0f} | {m.p50_ms:.1f} | {m.p99_ms:.1f} | {m.errors} | {m.cpu_us:,.0f}"
        lines.append(f"| {m.label} | {numbers} | {ready} |")
    return "\n".join(lines)


def _pick(results: list[Measured], label: str) -> list[Measured]:
    return [m for m in results if m.label == label]


def summary(results: list[Measured]) -> dict[str, Any]:
    """The issue's targets as ratios measured in this run (best round of each target)."""

    def best(label: str) -> Measured | None:
        found = _pick(results, label)
        return max(found, key=lambda m: m.rps) if found else None

    out: dict[str, Any] = {}
    mlflow1, mlflow100 = best("mlflow models serve, 1 row"), best("mlflow models serve, 100 rows")
    noop = best("no-op, raw ASGI (uvicorn)")
    noop_own = best("no-op, raw ASGI (plinth serve's protocol)")
    on1, on100 = best("plinth serve, 1 row, batching on"), best("plinth serve, 100 rows, batching on")
    fixed_on, fixed_off = (
        best("fixed 5 ms/call model, 1 row, batching on"),
        best("fixed 5 ms/call model, 1 row, batching off"),
    )
    if mlflow1 and on1:
        out["single row: plinth / mlflow requests/s (target >= 20)"] = round(on1.rps / mlflow1.rps, 1)
        out["single row: plinth p99 ms (target <= 25)"] = round(on1.p99_ms, 1)
    if noop and on1:
        out["single row: plinth / no-op on uvicorn's protocol, requests/s (target >= 0.5)"] = round(
            on1.rps / noop.rps, 2
        )
    if noop_own and on1:
        out["single row: plinth / no-op on plinth serve's protocol, requests/s (target >= 0.5)"] = round(
            on1.rps / noop_own.rps, 2
        )
    on1_all = [m.rps for m in _pick(results, "plinth serve, 1 row, batching on")]
    for name, label in (
        ("uvicorn's", "no-op, raw ASGI (uvicorn)"),
        ("plinth serve's", "no-op, raw ASGI (plinth serve's protocol)"),
    ):
        ceiling = [m.rps for m in _pick(results, label)]
        if len(ceiling) > 1 and len(on1_all) > 1:  # with --rounds: the medians too, each ratio round by round
            key = f"single row: plinth / no-op on {name} protocol, median of rounds (each round's ratio)"
            per_round = [round(a / b, 2) for a, b in zip(on1_all, ceiling, strict=False)]
            out[key] = (
                f"{statistics.median(on1_all) / statistics.median(ceiling):.2f} ({', '.join(map(str, per_round))})"
            )
    if mlflow100 and on100:
        out["100 rows: plinth / mlflow rows/s (target >= 10)"] = round(on100.rows_per_s / mlflow100.rows_per_s, 1)
    if fixed_on and fixed_off:
        out["fixed-cost model (waits): batching on / off (target >= 3)"] = round(fixed_on.rps / fixed_off.rps, 1)
    cpu_on = best("fixed 5 ms CPU/call model, 1 row, batching on")
    cpu_off = best("fixed 5 ms CPU/call model, 1 row, batching off")
    if cpu_on and cpu_off:
        out["fixed-cost model (CPU): batching on / off (target >= 3)"] = round(cpu_on.rps / cpu_off.rps, 1)
    ready = [m.ready_s for m in results if m.label.startswith("plinth serve") and "(before)" not in m.label]
    if ready:
        out["plinth serve -> first ready answer, s (median; target <= 3)"] = round(statistics.median(ready), 2)
        out["plinth serve -> first ready answer, s (max)"] = round(max(ready), 2)
    return out


def run(
    emit: Callable[..., Any],
    seconds: int = SECONDS,
    compare_src: str | None = None,
    rounds: int = 1,
    only: list[str] | None = None,
) -> list[Measured]:
    results: list[Measured] = []
    with tempfile.TemporaryDirectory() as tmp:
        for target in targets(Path(tmp), compare_src, rounds, only):
            m = measure(target, Path(tmp), seconds)
            results.append(m)
            emit(
                workload=m.label,
                rows=m.rows,
                requests_per_s=round(m.rps),
                rows_per_s=round(m.rows_per_s),
                p50_ms=round(m.p50_ms, 2),
                p99_ms=round(m.p99_ms, 2),
                failed=m.errors,
                server_cpu_us_per_request=round(m.cpu_us),
                ready_s=round(m.ready_s, 2),
                loadavg=Path("/proc/loadavg").read_text().split()[:3],
            )
    for key, value in summary(results).items():
        emit(workload=key, value=value)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=SECONDS, help="wrk duration per target")
    parser.add_argument("--compare-src", help="a src folder with older Plinth code to measure interleaved")
    parser.add_argument("--rounds", type=int, default=1, help="rounds of the Plinth configurations and the no-ops")
    parser.add_argument("--only", action="append", help="measure only targets whose label contains this")
    args = parser.parse_args()
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    before = Path("/proc/loadavg").read_text().split()[:3]
    results = run(lambda **f: print(json.dumps(f), flush=True), args.seconds, args.compare_src, args.rounds, args.only)
    after = Path("/proc/loadavg").read_text().split()[:3]
    print(f"\n{started}; load average before {' '.join(before)}, after {' '.join(after)}\n")
    print(table(results))
    print()
    for key, value in summary(results).items():
        print(f"- {key}: {value}")


if __name__ == "__main__":
    main()
