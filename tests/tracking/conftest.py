"""Tracking tests: no sampler threads or environment capture unless a test asks for them,
and a clean SDK state (no active run, no current experiment) around every test."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _quiet_tracking(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
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
