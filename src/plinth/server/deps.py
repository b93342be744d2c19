"""FastAPI dependencies: the one auth dependency and the typed Caller handlers receive.

The routers' dependencies are ``async``: FastAPI runs a sync dependency on a worker thread,
a hop that costs more than the dependency itself. Only the token lookup, which reads the
database, goes to a worker thread; with authentication off, or once the request's actor is
known, nothing leaves the event loop, so a sync endpoint makes one hop per request.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from plinth.core.context import Actor
from plinth.core.errors import Unauthenticated
from plinth.core.platform import Caller, Platform

TOKEN_COOKIE = "plinth_token"


def get_platform(request: Request) -> Platform:
    return request.app.state.platform  # type: ignore[no-any-return]


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise Unauthenticated("the Authorization header must be 'Bearer <token>'")
        return value.strip()
    return request.cookies.get(TOKEN_COOKIE)


def authenticate_request(request: Request) -> Actor:
    """Resolve the caller from a bearer token or the UI's cookie (cached on the request).
    Blocks on the database when authentication is on: call it from a worker thread."""
    cached = getattr(request.state, "actor", None)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    platform = get_platform(request)
    if not request.app.state.auth:
        actor = request.app.state.anonymous_actor
    else:
        from plinth.governance.service import authenticate

        secret = bearer_token(request)
        with platform.context() as ctx:
            actor = authenticate(ctx.session, secret, ctx.now())
    request.state.actor = actor
    return actor


async def request_actor(request: Request) -> Actor:
    """:func:`authenticate_request` as a dependency: a worker thread only for the token lookup."""
    cached = getattr(request.state, "actor", None)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    if not request.app.state.auth:
        return authenticate_request(request)  # no I/O: the anonymous actor
    return await run_in_threadpool(authenticate_request, request)


def get_caller(request: Request, actor: Actor, project: str = "default") -> Caller:
    """The Caller for ``actor`` acting in ``project`` on this request's platform."""
    return get_platform(request).caller(actor, project, getattr(request.state, "request_id", None))


async def request_caller(
    request: Request,
    actor: Annotated[Actor, Depends(request_actor)],
    project: Annotated[str, Query(description="the project the call acts in")] = "default",
) -> Caller:
    return get_caller(request, actor, project)


CallerDep = Annotated[Caller, Depends(request_caller)]
