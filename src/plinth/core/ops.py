"""Operations: the one description of a service call that every door shares.

An :class:`Operation` names the HTTP method, the route and the response type of one
service function. The REST router declares its route from it, and the SDK's backends
either run the service function in-process (embedded) or send the same call over HTTP
(``PLINTH_URI`` set): that is what keeps the remote adapter mechanical.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import TypeAdapter

__all__ = ["Operation", "call"]

T = TypeVar("T")
_PARAM = re.compile(r"{(\w+)(?::path)?}")


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    response: Any = None
    status_code: int = 200
    _adapter: Any = field(default=None, compare=False, repr=False)

    @property
    def path_params(self) -> list[str]:
        return _PARAM.findall(self.path)

    @property
    def route(self) -> str:
        """The path as FastAPI declares it."""
        return self.path

    def adapter(self) -> TypeAdapter[Any]:
        if self._adapter is None:
            object.__setattr__(self, "_adapter", TypeAdapter(self.response))
        return self._adapter  # type: ignore[no-any-return]

    def parse(self, payload: Any) -> Any:
        if self.response is None:
            return None
        return self.adapter().validate_python(payload)


def call(op: Operation, fn: Callable[..., T], /, *, project: str | None = None, **kwargs: Any) -> T:
    """Run one SDK call: in-process on the embedded platform, or over HTTP when remote."""
    from plinth.client.backend import current_backend

    return current_backend().call(op, fn, project=project, **kwargs)  # type: ignore[no-any-return]
