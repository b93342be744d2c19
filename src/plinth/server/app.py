"""The server's app factory: every area's router and pages, one error model, health, metrics."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from plinth.core.context import Actor
from plinth.core.errors import InvalidInput, PlinthError, Unauthenticated
from plinth.core.platform import Platform
from plinth.server.observability import Metrics, RequestContextMiddleware

log = logging.getLogger("plinth.server")

# (module, attribute) of every area's REST router; areas add themselves here.
API_ROUTERS = [
    ("plinth.governance.api", "router"),
    ("plinth.artifacts.api", "router"),
    ("plinth.tracking.api", "router"),
    ("plinth.data.api", "router"),
    ("plinth.registry.api", "router"),
    ("plinth.features.api", "router"),
    ("plinth.serving.api", "router"),
]


def _error(status: int, code: str, message: str, details: dict[str, Any] | None = None) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message, "details": details or {}}}, status_code=status
    )


def _wants_html(request: Request) -> bool:
    return not request.url.path.startswith("/api/") and "text/html" in request.headers.get("accept", "")


def create_app(platform: Platform, *, auth: bool = True) -> FastAPI:
    import importlib

    app = FastAPI(
        title="Plinth",
        version=_version(),
        description="One platform for the whole life of a model.",
        docs_url="/docs",
        openapi_url="/openapi.json",
    )
    app.state.platform = platform
    app.state.auth = auth
    app.state.anonymous_actor = Actor(name="anonymous", is_admin=True)
    app.state.metrics = Metrics()
    app.add_middleware(RequestContextMiddleware, metrics=app.state.metrics)

    @app.exception_handler(PlinthError)
    async def plinth_error(request: Request, exc: PlinthError) -> Response:
        if isinstance(exc, Unauthenticated) and _wants_html(request):
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/login?next={quote(target, safe='/')}", status_code=303)
        if exc.http_status >= 500:
            log.error("request failed: %s", exc.message, extra={"fields": {"code": exc.code}})
        return JSONResponse(exc.to_payload(), status_code=exc.http_status)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err.get("loc", ()) if p not in {"body", "query", "path"})
            problems.append({"field": loc, "message": err.get("msg", "")})
        first = problems[0] if problems else {"field": "?", "message": "invalid"}
        return _error(
            400, InvalidInput.code, f"{first['field']}: {first['message']}", {"problems": problems}
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        message = "no such route" if exc.status_code == 404 else str(exc.detail)
        return _error(exc.status_code, code, message)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        request_id = getattr(request.state, "request_id", "?")
        log.exception("unexpected error", extra={"fields": {"request_id": request_id}})
        return _error(500, "internal", f"internal error; the server log has request id {request_id}")

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    def readyz() -> JSONResponse:
        try:
            platform.db.check()
        except PlinthError as exc:
            return _error(503, exc.code, exc.message)
        return JSONResponse({"status": "ready"})

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> PlainTextResponse:
        return PlainTextResponse(generate_latest(app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    for module, attr in API_ROUTERS:
        app.include_router(getattr(importlib.import_module(module), attr))
    from plinth.server.ui import mount_ui

    mount_ui(app)
    return app


def _version() -> str:
    from plinth import __version__

    return __version__
