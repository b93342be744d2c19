"""Quiet tracking (no samplers, no environment capture) and a clean SDK state per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests_support import quiet_tracking


@pytest.fixture(autouse=True)
def _quiet(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    yield from quiet_tracking(monkeypatch)
