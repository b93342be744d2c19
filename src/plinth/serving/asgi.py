"""The model server's ASGI entry: inference requests take a short path, everything else goes to
the FastAPI app.

``POST /v2/models/{name}[/versions/{version}]/infer`` and ``POST /models/{name}/predict`` are
matched by splitting the path and answered by :meth:`ModelServer.answer` directly, without
FastAPI's routing, dependency solving and middleware: on a small model those cost more than
the prediction. The FastAPI app still declares the same routes (the OpenAPI document, and a
request that reaches it another way, as a mounted sub-application does, is answered the same).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from plinth.serving.app import ModelServer

__all__ = ["ServingApp", "match_inference"]


_MATCHED: dict[str, tuple[str, str, str | None] | None] = {}  # path -> match, for the paths met


def match_inference(path: str) -> tuple[str, str, str | None] | None:
    """``(endpoint, name, version)`` of an inference path, or None for any other path."""
    try:
        return _MATCHED[path]
    except KeyError:
        pass
    found = _match(path)
    if len(_MATCHED) >= 1024:  # clients that vary the path: keep the table small
        _MATCHED.clear()
    _MATCHED[path] = found
    return found


def _match(path: str) -> tuple[str, str, str | None] | None:
    parts = path.split("/")
    # ['', 'v2', 'models', name, 'infer'] / ['', 'v2', 'models', name, 'versions', v, 'infer']
    if len(parts) == 5 and parts[1] == "v2" and parts[2] == "models" and parts[4] == "infer" and parts[3]:
        return "infer", parts[3], None
    if len(parts) == 7 and parts[1] == "v2" and parts[2] == "models" and parts[4] == "versions" and parts[6] == "infer":
        if parts[3] and parts[5]:
            return "infer", parts[3], parts[5]
        return None
    if len(parts) == 4 and parts[1] == "models" and parts[3] == "predict" and parts[2]:
        return "predict", parts[2], None
    return None


class ServingApp:
    """The ASGI application of a :class:`ModelServer` (``server.app``); attributes it does not
    have (``routes``, ``state``, ``get``...) are the FastAPI app's."""

    def __init__(self, server: ModelServer, app: Any) -> None:
        self.server = server
        self.fastapi = app

    def __getattr__(self, name: str) -> Any:
        return getattr(self.fastapi, name)

    def __repr__(self) -> str:
        return f"ServingApp({self.server!r})"

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and not scope.get("root_path"):
            found = match_inference(scope["path"])
            if found is not None:
                endpoint, name, version = found
                response = await self.server.answer(endpoint, name, version, scope, receive)
                await response(scope, receive, send)
                return
        await self.fastapi(scope, receive, send)
