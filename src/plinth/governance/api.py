"""REST routes of the governance area: thin, each one service call."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel

from plinth.governance import schemas as s
from plinth.governance import service as svc
from plinth.server.deps import CallerDep

router = APIRouter(tags=["governance"])


@router.post(s.CREATE_PROJECT.path, status_code=201)
def create_project(body: s.ProjectCreate, caller: CallerDep) -> s.ProjectInfo:
    return caller.call(svc.create_project, name=body.name, description=body.description)


@router.get(s.LIST_PROJECTS.path)
def list_projects(caller: CallerDep) -> list[s.ProjectInfo]:
    return caller.call(svc.list_projects)


@router.get(s.GET_PROJECT.path)
def get_project(name: str, caller: CallerDep) -> s.ProjectInfo:
    return caller.call(svc.get_project, name=name)


@router.post(s.CREATE_USER.path, status_code=201)
def create_user(body: s.UserCreate, caller: CallerDep) -> s.UserInfo:
    return caller.call(svc.create_user, name=body.name, email=body.email, is_admin=body.is_admin)


@router.get(s.LIST_USERS.path)
def list_users(caller: CallerDep) -> list[s.UserInfo]:
    return caller.call(svc.list_users)


@router.get(s.GET_USER.path)
def get_user(name: str, caller: CallerDep) -> s.UserInfo:
    return caller.call(svc.get_user, name=name)


class DisabledBody(BaseModel):
    disabled: bool = True


@router.post(s.SET_USER_DISABLED.path)
def set_user_disabled(name: str, body: DisabledBody, caller: CallerDep) -> s.UserInfo:
    return caller.call(svc.set_user_disabled, name=name, disabled=body.disabled)


@router.get(s.WHOAMI.path)
def whoami(caller: CallerDep) -> s.Whoami:
    return caller.call(svc.whoami)


@router.post(s.CREATE_TOKEN.path, status_code=201)
def create_token(body: s.TokenCreate, caller: CallerDep) -> s.TokenCreated:
    return caller.call(svc.create_token, name=body.name, user=body.user, expires_in_days=body.expires_in_days)


@router.get(s.LIST_TOKENS.path)
def list_tokens(caller: CallerDep, user: str | None = None) -> list[s.TokenInfo]:
    return caller.call(svc.list_tokens, user=user)


@router.delete(s.REVOKE_TOKEN.path)
def revoke_token(token_id: str, caller: CallerDep) -> s.TokenInfo:
    return caller.call(svc.revoke_token, token_id=token_id)


@router.post(s.GRANT_ROLE.path, status_code=201)
def grant_role(body: s.RoleGrant, caller: CallerDep) -> s.Member:
    return caller.call(svc.grant_role, user=body.user, role=body.role, approver=body.approver)


@router.delete(s.REVOKE_ROLE.path, status_code=204)
def revoke_role(user: str, caller: CallerDep) -> Response:
    caller.call(svc.revoke_role, user=user)
    return Response(status_code=204)


@router.get(s.LIST_MEMBERS.path)
def list_members(caller: CallerDep) -> list[s.Member]:
    return caller.call(svc.list_members)


@router.get(s.LIST_EVENTS.path)
def list_events(
    caller: CallerDep,
    after: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    action: str | None = None,
    resource: str | None = None,
    actor: str | None = None,
    all_projects: bool = False,
    descending: bool = False,
) -> list[s.EventInfo]:
    return caller.call(
        svc.list_events,
        after=after,
        limit=limit,
        action=action,
        resource=resource,
        actor=actor,
        all_projects=all_projects,
        descending=descending,
    )


@router.get(s.VERIFY_AUDIT.path)
def verify_audit(caller: CallerDep) -> s.AuditReport:
    return caller.call(svc.verify_audit)
