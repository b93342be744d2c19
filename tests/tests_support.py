"""Small helpers shared by tests that are not fixtures."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Iterator
from typing import Any

import pytest

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def need(condition: bool, reason: str) -> None:
    """Skip when a real part is missing locally; fail in CI, where everything must be there."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(reason)


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something listens on ``host:port`` (PostgreSQL, Redis)."""
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def free_port_for_subprocess() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def quiet_tracking(monkeypatch: Any) -> Iterator[None]:
    """For an autouse fixture: no sampler threads or environment capture during the test,
    and a clean tracking SDK state (no active run, no current experiment) after it."""
    from plinth.tracking import sdk

    monkeypatch.setenv("PLINTH_SYSTEM_METRICS", "0")
    monkeypatch.setenv("PLINTH_CAPTURE_ENVIRONMENT", "0")
    yield
    for run in list(sdk._stack):
        with contextlib.suppress(Exception):
            run.end("killed")
    sdk._stack.clear()
    sdk._experiment.update(name=None, project=None)
    if sdk._buffer is not None:
        with contextlib.suppress(Exception):
            sdk._buffer.flush(timeout=30)


def run_async(coro: Any) -> Any:
    """Run ``coro`` on a loop of its own thread: a session fixture (the browser) may hold this one's."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()
