"""Tracking tests: no sampler threads or environment capture unless a test asks for them,
and a clean SDK state (no active run, no current experiment) around every test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests_support import quiet_tracking


@pytest.fixture(autouse=True)
def _quiet_tracking(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    yield from quiet_tracking(monkeypatch)
