"""``plinth serve`` as a user runs it: a registered model behind an alias, in a real process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from models_support import iris, iris_pipeline, log_with_services
from plinth.core.platform import Platform
from plinth.registry import service as registry
from plinth.serving import service as svc
from tests_support import free_port_for_subprocess


def env(home: Path) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith("PLINTH_")}
    out.update(PLINTH_HOME=str(home), PLINTH_SYSTEM_METRICS="0", PLINTH_CAPTURE_ENVIRONMENT="0")
    return out


def start_serving(home: Path, *args: str) -> tuple[subprocess.Popen[str], httpx.Client]:
    """``plinth serve ARGS`` in its own process; returns it with a client once it is ready."""
    port = free_port_for_subprocess()
    cmd = [sys.executable, "-m", "plinth.cli.main", "serve", *args, "--port", str(port)]
    proc = subprocess.Popen(cmd, env=env(home), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)
    deadline = time.monotonic() + 60
    while True:
        try:
            if client.get("/v2/health/ready").status_code == 200:
                return proc, client
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"plinth serve did not become ready: {proc.communicate()}")
        time.sleep(0.1)


def stop(proc: subprocess.Popen[str]) -> str:
    proc.terminate()
    out, _ = proc.communicate(timeout=20)
    return out


@pytest.fixture
def registered(platform: Platform) -> Platform:
    X, _ = iris()
    source = log_with_services(platform, iris_pipeline(), input_example=X.head(3))
    call = platform.caller().call
    call(registry.register_version, name="iris", source=source)
    call(registry.register_version, name="iris", source=source)
    call(registry.set_alias, name="iris", alias="champion", version=2)
    return platform


def test_serve_a_registered_model_by_alias(registered: Platform, tmp_path: Path) -> None:
    X, _ = iris()
    proc, c = start_serving(tmp_path / "home", "models:/iris@champion")
    try:
        meta = c.get("/v2/models/iris").json()
        assert meta["versions"] == ["2"] and len(meta["inputs"]) == 4
        rows = X.iloc[[0, 100]]
        r = c.post("/models/iris/predict", json={"records": rows.to_dict(orient="records")})
        assert r.status_code == 200 and r.json()["predictions"] == [0, 2]
        assert r.json()["model_version"] == "2"
        port = c.base_url.port
    finally:
        c.close()
        out = stop(proc)
    assert f"serving iris version 2 (models:/iris@champion) at http://127.0.0.1:{port}/v2/models/iris" in out


def test_serve_a_deployment_reports_its_status(registered: Platform, tmp_path: Path) -> None:
    call = registered.caller().call
    call(svc.create_deployment, name="churn", models={"models:/iris/1": 50, "models:/iris/2": 50})
    proc, c = start_serving(tmp_path / "home", "--deployment", "churn")
    try:
        assert c.get("/v2/models/churn").json()["versions"] == ["1", "2"]
        d = call(svc.get_deployment, name="churn")
        assert d.status == "serving" and d.status_message.startswith("127.0.0.1:")
        X, _ = iris()
        assert c.post("/models/churn/predict", json={"records": X.head(3).to_dict(orient="records")}).is_success
    finally:
        c.close()
        stop(proc)
    assert call(svc.get_deployment, name="churn").status == "stopped"
    from deltalake import DeltaTable

    logged = DeltaTable(call(svc.inference_log_location, name="churn").location).to_pandas()
    assert logged["rows"].tolist() == [3] and logged["model"].tolist() == ["churn"]  # written before exit


def test_serve_refuses_an_unknown_model_with_its_exit_code(platform: Platform, tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "plinth.cli.main", "serve", "models:/nope@champion"]
    out = subprocess.run(cmd, env=env(tmp_path / "home"), capture_output=True, text=True, timeout=120)
    assert out.returncode == 4, out.stderr
    assert "registered model 'nope' does not exist in project 'default'" in out.stderr


def test_serve_refuses_an_unknown_http_protocol_before_loading_anything(registered: Platform, tmp_path: Path) -> None:
    call = registered.caller().call
    call(svc.create_deployment, name="churn-live", models={"models:/iris/1": 100})
    before = call(svc.get_deployment, name="churn-live").status
    cmd = [sys.executable, "-m", "plinth.cli.main", "serve", "--deployment", "churn-live"]
    bad = {**env(tmp_path / "home"), "PLINTH_SERVE_HTTP": "quic"}
    out = subprocess.run(cmd, env=bad, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2, out.stderr
    assert "PLINTH_SERVE_HTTP must be coalescing, httptools, h11 or auto, got 'quic'" in out.stderr
    assert "serving" not in out.stdout  # nothing was loaded or announced
    assert call(svc.get_deployment, name="churn-live").status == before  # the deployment was not touched
