"""SDK functions of the governance area; embedded or remote by ``PLINTH_URI``."""

from __future__ import annotations

from plinth.core.ops import call
from plinth.governance import schemas as s
from plinth.governance import service as svc


def create_project(name: str, description: str = "") -> s.ProjectInfo:
    """Create a project.

    >>> import plinth
    >>> plinth.create_project("risk", description="credit risk models").name
    'risk'
    """
    return call(s.CREATE_PROJECT, svc.create_project, name=name, description=description)


def list_projects() -> list[s.ProjectInfo]:
    return call(s.LIST_PROJECTS, svc.list_projects)


def get_project(name: str) -> s.ProjectInfo:
    return call(s.GET_PROJECT, svc.get_project, name=name)


def create_user(name: str, email: str | None = None, is_admin: bool = False) -> s.UserInfo:
    return call(s.CREATE_USER, svc.create_user, name=name, email=email, is_admin=is_admin)


def list_users() -> list[s.UserInfo]:
    return call(s.LIST_USERS, svc.list_users)


def get_user(name: str) -> s.UserInfo:
    return call(s.GET_USER, svc.get_user, name=name)


def set_user_disabled(name: str, disabled: bool = True) -> s.UserInfo:
    return call(s.SET_USER_DISABLED, svc.set_user_disabled, name=name, disabled=disabled)


def whoami() -> s.Whoami:
    return call(s.WHOAMI, svc.whoami)


def create_token(name: str, user: str | None = None, expires_in_days: float | None = None) -> s.TokenCreated:
    """Issue an API token. ``.token`` holds the secret; it is not retrievable later."""
    return call(s.CREATE_TOKEN, svc.create_token, name=name, user=user, expires_in_days=expires_in_days)


def list_tokens(user: str | None = None) -> list[s.TokenInfo]:
    return call(s.LIST_TOKENS, svc.list_tokens, user=user)


def revoke_token(token_id: str) -> s.TokenInfo:
    return call(s.REVOKE_TOKEN, svc.revoke_token, token_id=token_id)


def grant_role(user: str, role: str, approver: bool = False, project: str | None = None) -> s.Member:
    """Give ``user`` a role (viewer, editor, maintainer, admin) in a project."""
    return call(s.GRANT_ROLE, svc.grant_role, project=project, user=user, role=role, approver=approver)


def revoke_role(user: str, project: str | None = None) -> None:
    call(s.REVOKE_ROLE, svc.revoke_role, project=project, user=user)


def list_members(project: str | None = None) -> list[s.Member]:
    return call(s.LIST_MEMBERS, svc.list_members, project=project)


def list_events(
    after: int = 0,
    limit: int = 100,
    action: str | None = None,
    resource: str | None = None,
    actor: str | None = None,
    project: str | None = None,
    all_projects: bool = False,
    descending: bool = False,
) -> list[s.EventInfo]:
    """Read the event log after a sequence number (the change feed)."""
    return call(
        s.LIST_EVENTS,
        svc.list_events,
        project=project,
        after=after,
        limit=limit,
        action=action,
        resource=resource,
        actor=actor,
        all_projects=all_projects,
        descending=descending,
    )


def verify_audit() -> s.AuditReport:
    """Recompute the event log's hash chain; ``.problems`` names each altered event."""
    return call(s.VERIFY_AUDIT, svc.verify_audit)
