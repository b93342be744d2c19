"""A real model server on a free loopback port, serving tiny real models."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import plinth
from models_support import iris, iris_pipeline, log_with_services
from plinth.core.platform import Platform
from plinth.registry import service as registry
from tests_support import quiet_tracking


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(autouse=True)
def _quiet(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    yield from quiet_tracking(monkeypatch)


@pytest.fixture(scope="session")
def iris_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An iris pipeline (scaler + logistic regression) saved as a model folder."""
    from plinth.models.packaging import save_model

    folder = tmp_path_factory.mktemp("models") / "iris"
    X, _ = iris()
    save_model(iris_pipeline(), folder, input_example=X.head(3))
    return folder


class Running:
    def __init__(self, server: Any, url: str) -> None:
        self.server = server
        self.url = url

    def client(self) -> Any:
        import httpx

        return httpx.Client(base_url=self.url, timeout=30)


@pytest.fixture
def serve() -> Iterator[Callable[..., Running]]:
    """``serve(models, options)`` starts a ModelServer under uvicorn; stopped at the end.
    ``door(server)`` picks the ASGI app to run (``server.app`` unless given)."""
    import uvicorn

    from plinth.serving import ModelServer
    from plinth.serving.http_protocol import http_protocol

    started: list[tuple[Any, threading.Thread]] = []

    def start(models: list[Any], options: Any = None, inference_log: Any = None, door: Any = None) -> Running:
        server = ModelServer(models, options, inference_log)
        port = free_port()
        app = server.app if door is None else door(server)
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", http=http_protocol())
        uv = uvicorn.Server(config)
        thread = threading.Thread(target=uv.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not uv.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the model server did not start")
            time.sleep(0.01)
        started.append((uv, thread))
        return Running(server, f"http://127.0.0.1:{port}")

    yield start
    for uv, thread in started:
        uv.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def flowers(platform: Platform) -> tuple[object, pd.DataFrame]:
    """Model ``iris`` version 1 (scaler + logistic regression) and dataset ``flowers`` version 1
    (iris three times over, with a key and the label)."""
    X, y = iris()
    model = iris_pipeline()
    source = log_with_services(platform, model, input_example=X.head(3))
    platform.caller().call(registry.register_version, name="iris", source=source)
    frame = pd.concat([X] * 3, ignore_index=True)
    frame.insert(0, "flower_id", np.arange(len(frame), dtype="int64"))
    frame["species"] = np.tile(y.to_numpy(), 3)
    plinth.data.ingest("flowers", frame, tags=["spring"])
    return model, frame
