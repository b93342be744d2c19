"""Pages of the governance area: projects and members, users and tokens, the audit log.

Thin like every door: each page calls the governance services through the caller and
renders what they return; the services decide who may do what.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Annotated, Any, Literal

from fastapi import Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from plinth.core.context import ROLES
from plinth.core.errors import InvalidInput, PermissionDenied, PlinthError
from plinth.core.platform import Caller
from plinth.governance import schemas as s
from plinth.governance import service as svc
from plinth.server.deps import CallerDep
from plinth.server.ui import Flash, is_htmx, link, render, ui_router

router = ui_router("/governance")

AUDIT_PAGE_SIZE = 50
AUDIT_CHART_SPAN = 1000  # the chart counts actions over this many newest matching events


def _back(request: Request, path: str) -> RedirectResponse:
    return RedirectResponse(link(request, path), status_code=303)


def _optional(value: str) -> str | None:
    value = value.strip()
    return value or None


@router.get("")
def governance_index(request: Request) -> Response:
    return _back(request, "/governance/projects")


# --- projects -------------------------------------------------------------------------------
def _projects_page(
    request: Request,
    caller: Caller,
    form: dict[str, str] | None = None,
    error: PlinthError | None = None,
) -> Response:
    projects = caller.call(svc.list_projects)
    context = {
        "projects": projects,
        "form": form or {},
        "flash": [Flash.error(error)] if error else [],
    }
    return render(
        request,
        "governance/projects.html",
        context,
        status_code=error.http_status if error else 200,
    )


@router.get("/projects")
def projects_page(request: Request, caller: CallerDep) -> Response:
    return _projects_page(request, caller)


@router.post("/projects")
def create_project(
    request: Request,
    caller: CallerDep,
    name: Annotated[str, Form()] = "",
    description: Annotated[str, Form()] = "",
) -> Response:
    try:
        created = caller.call(
            svc.create_project, name=name.strip(), description=description.strip()
        )
    except PlinthError as exc:
        return _projects_page(request, caller, {"name": name, "description": description}, exc)
    return RedirectResponse(
        link(request, f"/governance/projects/{created.name}", project=created.name), status_code=303
    )


def _project_page(
    request: Request,
    caller: Caller,
    form: dict[str, Any] | None = None,
    error: PlinthError | None = None,
) -> Response:
    info = caller.call(svc.get_project, name=caller.project)
    members = caller.call(svc.list_members)
    context = {
        "info": info,
        "members": members,
        "roles": ROLES,
        "form": form or {},
        "flash": [Flash.error(error)] if error else [],
    }
    return render(
        request, "governance/project.html", context, status_code=error.http_status if error else 200
    )


@router.get("/projects/{name}")
def project_page(request: Request, name: str, caller: CallerDep) -> Response:
    return _project_page(request, dataclasses.replace(caller, project=name))


@router.post("/projects/{name}/members")
def grant_role(
    request: Request,
    name: str,
    caller: CallerDep,
    user: Annotated[str, Form()] = "",
    role: Annotated[str, Form()] = "viewer",
    approver: Annotated[str | None, Form()] = None,
) -> Response:
    caller = dataclasses.replace(caller, project=name)
    try:
        caller.call(svc.grant_role, user=user.strip(), role=role, approver=approver is not None)
    except PlinthError as exc:
        form = {"user": user, "role": role, "approver": approver is not None}
        return _project_page(request, caller, form, exc)
    return _back(request, f"/governance/projects/{name}")


@router.post("/projects/{name}/members/{user}/revoke")
def revoke_role(request: Request, name: str, user: str, caller: CallerDep) -> Response:
    dataclasses.replace(caller, project=name).call(svc.revoke_role, user=user)
    if is_htmx(request):
        return Response(status_code=200)  # the row's swap (outerHTML with nothing) removes it
    return _back(request, f"/governance/projects/{name}")


# --- users and tokens -----------------------------------------------------------------------
def _users_page(
    request: Request,
    caller: Caller,
    *,
    user_form: dict[str, Any] | None = None,
    token_form: dict[str, Any] | None = None,
    new_token: s.TokenCreated | None = None,
    error: PlinthError | None = None,
    token_error: PlinthError | None = None,
    status_code: int = 200,
    fragment: bool = False,
) -> Response:
    try:
        users: list[s.UserInfo] | None = caller.call(svc.list_users)
        users_denied = None
    except PermissionDenied as exc:  # not a platform admin: the page still manages one's own tokens
        users, users_denied = None, exc.message
    context = {
        "users": users,
        "users_denied": users_denied,
        "tokens": caller.call(svc.list_tokens),
        "user_form": user_form or {},
        "token_form": token_form or {},
        "new_token": new_token,
        "token_error": token_error.message if token_error else None,
        "flash": [Flash.error(error)] if error else [],
    }
    template = "governance/_tokens.html" if fragment else "governance/users.html"
    return render(request, template, context, status_code=status_code)


@router.get("/users")
def users_page(request: Request, caller: CallerDep) -> Response:
    return _users_page(request, caller)


@router.post("/users")
def create_user(
    request: Request,
    caller: CallerDep,
    name: Annotated[str, Form()] = "",
    email: Annotated[str, Form()] = "",
    is_admin: Annotated[str | None, Form()] = None,
) -> Response:
    try:
        caller.call(
            svc.create_user,
            name=name.strip(),
            email=_optional(email),
            is_admin=is_admin is not None,
        )
    except PlinthError as exc:
        form = {"name": name, "email": email, "is_admin": is_admin is not None}
        return _users_page(request, caller, user_form=form, error=exc, status_code=exc.http_status)
    return _back(request, "/governance/users")


@router.post("/users/{name}/disabled")
def set_user_disabled(
    request: Request, name: str, caller: CallerDep, disabled: Annotated[str, Form()] = "true"
) -> Response:
    user = caller.call(svc.set_user_disabled, name=name, disabled=disabled == "true")
    if is_htmx(request):
        return render(request, "governance/_user_row.html", {"u": user})
    return _back(request, "/governance/users")


def _days(value: str) -> float | None:
    value = value.strip()
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        raise InvalidInput(
            f"expires_in_days {value!r} is not a number", field="expires_in_days"
        ) from None


@router.post("/tokens")
def create_token(
    request: Request,
    caller: CallerDep,
    name: Annotated[str, Form()] = "",
    user: Annotated[str, Form()] = "",
    expires_in_days: Annotated[str, Form()] = "",
) -> Response:
    fragment = is_htmx(request)
    try:
        created = caller.call(
            svc.create_token,
            name=name.strip(),
            user=_optional(user),
            expires_in_days=_days(expires_in_days),
        )
    except PlinthError as exc:
        form = {"name": name, "user": user, "expires_in_days": expires_in_days}
        return _users_page(
            request,
            caller,
            token_form=form,
            token_error=exc,
            status_code=exc.http_status,
            fragment=fragment,
        )
    return _users_page(request, caller, new_token=created, status_code=201, fragment=fragment)


@router.post("/tokens/{token_id}/revoke")
def revoke_token(request: Request, token_id: str, caller: CallerDep) -> Response:
    token = caller.call(svc.revoke_token, token_id=token_id)
    if is_htmx(request):
        return render(request, "governance/_token_row.html", {"t": token})
    return _back(request, "/governance/users")


# --- audit log ------------------------------------------------------------------------------
@router.get("/audit")
def audit_page(
    request: Request,
    caller: CallerDep,
    before: Annotated[int | None, Query(ge=1)] = None,
    after: Annotated[int | None, Query(ge=0)] = None,
    action: str = "",
    actor: str = "",
    scope: Literal["all", "project"] | None = None,
) -> Response:
    scope = scope or ("all" if caller.actor.is_admin else "project")
    filters: dict[str, Any] = {
        "action": _optional(action),
        "actor": _optional(actor),
        "all_projects": scope == "all",
    }
    if after is not None:  # paging towards newer events: read forwards, show newest first
        events = caller.call(svc.list_events, after=after, limit=AUDIT_PAGE_SIZE, **filters)[::-1]
    else:
        events = caller.call(
            svc.list_events, before=before, limit=AUDIT_PAGE_SIZE, descending=True, **filters
        )
    newer = older = False
    if events:
        newer = bool(caller.call(svc.list_events, after=events[0].seq, limit=1, **filters))
        older = bool(
            caller.call(svc.list_events, before=events[-1].seq, limit=1, descending=True, **filters)
        )
    span = caller.call(svc.list_events, limit=AUDIT_CHART_SPAN, descending=True, **filters)
    per_action = Counter(e.action for e in span).most_common()
    context = {
        "events": events,
        "newer": newer,
        "older": older,
        "filters": {"action": action, "actor": actor, "scope": scope},
        "chart": {
            "labels": [a for a, _ in per_action],
            "values": [n for _, n in per_action],
            "span": len(span),
        },
    }
    return render(request, "governance/audit.html", context)


@router.get("/audit/verify")
def audit_verify(request: Request, caller: CallerDep) -> Response:
    """The chain verification banner; the audit page loads it once shown (it reads every event)."""
    try:
        report: s.AuditReport | None = caller.call(svc.verify_audit)
        report_denied = None
    except PermissionDenied as exc:
        report, report_denied = None, exc.message
    context = {"report": report, "report_denied": report_denied}
    template = (
        "governance/_audit_banner.html" if is_htmx(request) else "governance/audit_verify.html"
    )
    return render(request, template, context)
