"""Fixtures of the feature store tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from plinth.core.platform import Platform
from plinth.core.settings import load_settings
from tests_support import need, port_open

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture(autouse=True)
def _fresh_caches() -> Iterator[None]:
    from plinth.features.index import index_cache

    index_cache.clear()
    yield
    index_cache.clear()


@pytest.fixture
def call(platform: Platform):  # type: ignore[no-untyped-def]
    def run(fn: Any, project: str | None = None, **kwargs: Any) -> Any:
        return platform.caller(project=project).call(fn, **kwargs)

    return run


@pytest.fixture(params=["sqlite", "redis"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The online store's URL: the same tests on SQLite and on Redis."""
    if request.param == "redis":
        need(port_open(6379), "Redis on 127.0.0.1:6379")
        return REDIS_URL
    return f"sqlite:///{tmp_path / 'online' / 'online.db'}"


@pytest.fixture
def online_platform(tmp_path: Path, store_url: str) -> Iterator[Platform]:
    """A platform whose online store is SQLite or Redis, with a settable clock."""
    from plinth.features.online_store import close_online_stores

    clock = {"now": None}

    def now():  # type: ignore[no-untyped-def]
        from plinth.core.context import utcnow

        return clock["now"] or utcnow()

    p = Platform(load_settings(home=tmp_path / "home", online_store_url=store_url), clock=now)
    p.start()
    p.clock_state = clock  # type: ignore[attr-defined]
    yield p
    close_online_stores()
    p.close()
