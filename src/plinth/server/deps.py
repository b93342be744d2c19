"""FastAPI dependencies: the one auth dependency and the typed Caller handlers receive."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request

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
    """Resolve the caller from a bearer token or the UI's cookie (cached on the request)."""
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


def get_caller(
    request: Request,
    actor: Annotated[Actor, Depends(authenticate_request)],
    project: Annotated[str, Query(description="the project the call acts in")] = "default",
) -> Caller:
    return get_platform(request).caller(actor, project, getattr(request.state, "request_id", None))


CallerDep = Annotated[Caller, Depends(get_caller)]
