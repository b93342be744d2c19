"""The SDK's two backends: embedded (services in-process) and remote (a Plinth server)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Protocol

from plinth.core.ops import Operation
from plinth.core.settings import load_settings

__all__ = [
    "Backend",
    "CallerBackend",
    "LocalBackend",
    "RemoteBackend",
    "bound_backend",
    "current_backend",
    "reset_backend",
]


class Backend(Protocol):
    remote: bool

    def call(self, op: Operation, fn: Callable[..., Any], /, *, project: str | None, **kwargs: Any) -> Any: ...

    def upload(
        self, op: Operation, fn: Callable[..., Any], /, *, project: str | None, content: Any, **params: Any
    ) -> Any: ...

    def download(
        self, op: Operation, fn: Callable[..., Any], /, *, project: str | None, **params: Any
    ) -> Iterator[bytes]: ...


class LocalBackend:
    """Runs the service function on the embedded platform, as the local admin."""

    remote = False

    def __init__(self, platform: Any = None) -> None:
        self._platform = platform

    @property
    def platform(self) -> Any:
        if self._platform is None:
            from plinth.core.platform import local_platform

            self._platform = local_platform()
        return self._platform

    def call(self, op: Operation | None, fn: Callable[..., Any], /, *, project: str | None, **kwargs: Any) -> Any:
        return self.platform.caller(project=project).call(fn, **kwargs)

    def upload(
        self, op: Operation, fn: Callable[..., Any], /, *, project: str | None, content: Any, **params: Any
    ) -> Any:
        return self.platform.caller(project=project).call(fn, content=content, **params)

    def download(
        self, op: Operation, fn: Callable[..., Any], /, *, project: str | None, **params: Any
    ) -> Iterator[bytes]:
        # The transaction only covers the lookup; the bytes stream from the blob store.
        _info, chunks = self.platform.caller(project=project).call(fn, **params)
        return chunks


class CallerBackend(LocalBackend):
    """Runs the service function on a given platform as a given caller: how a server runs SDK-level
    work (a batch inference job) for the user who asked, with that user's permissions."""

    def __init__(self, caller: Any) -> None:
        super().__init__(caller.platform)
        self.caller = caller

    def _as(self, project: str | None) -> Any:
        from plinth.core.platform import Caller

        c = self.caller
        return Caller(c.platform, c.actor, project or c.project, c.request_id)

    def call(self, op: Operation | None, fn: Callable[..., Any], /, *, project: str | None, **kwargs: Any) -> Any:
        return self._as(project).call(fn, **kwargs)

    def upload(
        self, op: Operation, fn: Callable[..., Any], /, *, project: str | None, content: Any, **params: Any
    ) -> Any:
        return self._as(project).call(fn, content=content, **params)

    def download(
        self, op: Operation, fn: Callable[..., Any], /, *, project: str | None, **params: Any
    ) -> Iterator[bytes]:
        _info, chunks = self._as(project).call(fn, **params)
        return chunks


class RemoteBackend:
    """Sends the call to a Plinth server through the typed HTTP client."""

    def __init__(self, uri: str, token: str | None) -> None:
        from plinth.client.http import HttpClient

        self.http = HttpClient(uri, token)

    remote = True

    def call(self, op: Operation, fn: Callable[..., Any], /, *, project: str | None, **kwargs: Any) -> Any:
        return op.parse(self.http.send(op, project=project, arguments=kwargs))

    def upload(
        self, op: Operation, fn: Callable[..., Any], /, *, project: str | None, content: Any, **params: Any
    ) -> Any:
        return op.parse(self.http.upload(op.path, content, _params(project, params)))

    def download(
        self, op: Operation, fn: Callable[..., Any], /, *, project: str | None, **params: Any
    ) -> Iterator[bytes]:
        return self.http.download(op.path, _params(project, params))


def _params(project: str | None, params: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in params.items() if v is not None}
    if project is not None:
        out["project"] = project
    return out


_backend: Backend | None = None
_lock = threading.Lock()
# A backend bound to this thread or task (a server running SDK-level work as its caller) wins.
_bound: ContextVar[Backend | None] = ContextVar("plinth_bound_backend", default=None)


@contextmanager
def bound_backend(backend: Backend) -> Iterator[Backend]:
    """SDK calls inside the block (this thread or task only) go through ``backend``."""
    token = _bound.set(backend)
    try:
        yield backend
    finally:
        _bound.reset(token)


def current_backend() -> Backend:
    global _backend
    bound = _bound.get()
    if bound is not None:
        return bound
    with _lock:
        if _backend is None:
            settings = load_settings()
            _backend = RemoteBackend(settings.uri, settings.token) if settings.uri else LocalBackend()
        return _backend


def reset_backend() -> None:
    """Forget the chosen backend so the next call reads the environment again."""
    global _backend
    from plinth.core.platform import reset_local_platform

    with _lock:
        _backend = None
    reset_local_platform()
