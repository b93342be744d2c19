"""Fixtures of the data tests (helpers live in ``datasets_support``)."""

from __future__ import annotations

from typing import Any

import pytest

from plinth.core.platform import Platform


@pytest.fixture
def call(platform: Platform):  # type: ignore[no-untyped-def]
    """``call(fn, **kw)``: a service call on the test's platform as the local admin."""

    def run(fn: Any, project: str | None = None, **kwargs: Any) -> Any:
        return platform.caller(project=project).call(fn, **kwargs)

    return run
