"""``plinth features serve``: a standalone feature server (online lookups only).

The same route and service as the Plinth server's ``POST /features/online``, on its own
port, so that models can read features without the whole platform's server. With
``--repo PATH`` the repository's on-demand feature views are loaded and served too.
Authentication uses the platform's API tokens; ``--no-auth`` is refused off loopback.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from plinth.core.platform import Platform
from plinth.core.settings import Settings

__all__ = ["create_feature_server", "serve_features"]


def create_feature_server(platform: Platform, *, auth: bool = True) -> Any:
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse

    from plinth.core.context import Actor
    from plinth.core.errors import PlinthError
    from plinth.features import api

    app = FastAPI(title="Plinth feature server", docs_url="/docs", openapi_url="/openapi.json")
    app.state.platform = platform
    app.state.auth = auth
    app.state.anonymous_actor = Actor(name="anonymous", is_admin=True)

    @app.exception_handler(PlinthError)
    async def plinth_error(request: Request, exc: PlinthError) -> JSONResponse:
        return JSONResponse(exc.to_payload(), status_code=exc.http_status)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        field = ".".join(str(p) for p in first.get("loc", ()) if p not in {"body", "query", "path"})
        message = f"{field or 'input'}: {first.get('msg', 'invalid')}"
        return JSONResponse({"error": {"code": "invalid_input", "message": message, "details": {}}}, status_code=400)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    for path in ("/features/online", api.s.ONLINE.path):
        app.add_api_route(path, api.online_features, methods=["POST"], response_model=api.s.OnlineFeatures)
    return app


def serve_features(
    settings: Settings,
    host: str = "127.0.0.1",
    port: int = 6566,
    auth: bool = True,
    repo: Path | None = None,
    echo: Callable[[str], None] = print,
) -> None:
    import uvicorn

    from plinth.server.run import check_bind, public_url

    check_bind(host, auth)
    if repo is not None:
        from plinth.features.repo import load_repo

        loaded = load_repo(repo)
        echo(f"loaded {len(loaded.objects)} definitions from {loaded.path}")
    platform = Platform(settings).start()
    app = create_feature_server(platform, auth=auth)
    echo(f"Plinth feature server on {public_url(host, port)}: POST /features/online")
    if not auth:
        echo("authentication is OFF (loopback only)")
    import gc

    gc.collect()
    gc.freeze()  # what start-up loaded stays out of every later collection: shorter pauses in lookups
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
