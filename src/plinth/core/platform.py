"""The Platform: settings plus the stores, and the one way to run a service call.

``platform.caller(actor, project).call(fn, **kwargs)`` opens a transaction, builds the
Context, runs ``fn(ctx, **kwargs)`` and commits; any error rolls everything back, the
event included. The SDK's embedded mode, the REST routes, the CLI and the UI pages all
reach the services through it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from plinth.core.context import LOCAL_ADMIN, Actor, Context, utcnow
from plinth.core.settings import Settings, load_settings
from plinth.store.blobs import BlobStore
from plinth.store.db import Database, is_reads_only
from plinth.store.table_store import TableStore

__all__ = ["Caller", "Platform", "Stores", "local_platform"]

T = TypeVar("T")


@dataclass
class Stores:
    db: Database
    blobs: BlobStore
    tables: TableStore


class Platform:
    def __init__(self, settings: Settings, clock: Callable[[], datetime] = utcnow) -> None:
        self.settings = settings
        self.clock = clock
        self.stores = Stores(
            db=Database(settings.database_url),
            blobs=BlobStore(settings.artifact_root),
            tables=TableStore(settings.table_root),
        )

    def __repr__(self) -> str:
        return f"Platform(db={self.stores.db!r}, blobs={self.stores.blobs!r})"

    @property
    def db(self) -> Database:
        return self.stores.db

    def start(self) -> Platform:
        """Connect and bring the schema up to date (done lazily by the first call too)."""
        self.db.ensure_ready()
        return self

    @contextmanager
    def context(
        self,
        actor: Actor = LOCAL_ADMIN,
        project: str = "default",
        request_id: str | None = None,
        reads_only: bool = False,
    ) -> Iterator[Context]:
        self.db.ensure_ready()
        with self.db.session(reads_only=reads_only) as session:
            yield Context(
                actor=actor,
                project=project,
                session=session,
                stores=self.stores,
                settings=self.settings,
                clock=self.clock,
                request_id=request_id,
            )

    def caller(
        self, actor: Actor = LOCAL_ADMIN, project: str | None = None, request_id: str | None = None
    ) -> Caller:
        """Who calls, from where: ``platform.caller(actor, "risk").call(svc.fn, **kwargs)``."""
        return Caller(self, actor, project or "default", request_id)

    def close(self) -> None:
        self.db.dispose()


@dataclass(frozen=True)
class Caller:
    platform: Platform
    actor: Actor
    project: str
    request_id: str | None = None

    def call(self, fn: Callable[..., T], /, **kwargs: Any) -> T:
        """Run ``fn(ctx, **kwargs)`` in one transaction: committed on return, rolled back on error
        (a read-only one for a function marked :func:`~plinth.store.db.reads_only`)."""
        with self.platform.context(self.actor, self.project, self.request_id, is_reads_only(fn)) as ctx:
            return fn(ctx, **kwargs)


_local: Platform | None = None
_local_lock = threading.Lock()


def local_platform() -> Platform:
    """The embedded platform for this process, built from the environment once."""
    global _local
    with _local_lock:
        if _local is None:
            _local = Platform(load_settings())
        return _local


def reset_local_platform() -> None:
    """Forget the embedded platform (tests and ``plinth login`` change the environment)."""
    global _local
    with _local_lock:
        if _local is not None:
            _local.close()
        _local = None
