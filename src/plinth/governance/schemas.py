"""Pydantic I/O models and the operations (routes) of the governance area."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from plinth.core.ops import Operation

Role = Literal["viewer", "editor", "maintainer", "admin"]


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class ProjectCreate(BaseModel):
    name: str
    description: str = ""


class ProjectInfo(_Out):
    id: str
    name: str
    description: str
    created_at: datetime
    created_by: str


class UserCreate(BaseModel):
    name: str
    email: str | None = None
    is_admin: bool = False


class UserInfo(_Out):
    id: str
    name: str
    email: str | None
    is_admin: bool
    disabled: bool
    created_at: datetime


class TokenCreate(BaseModel):
    name: str
    user: str | None = Field(default=None, description="whose token; yourself when omitted")
    expires_in_days: float | None = Field(default=None, gt=0)


class TokenInfo(_Out):
    id: str
    user: str
    name: str
    prefix: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None

    @property
    def status(self) -> str:
        from plinth.core.context import utcnow

        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= utcnow():
            return "expired"
        return "active"


class TokenCreated(TokenInfo):
    token: str = Field(description="the secret itself: shown this once, stored only as a hash")


class RoleGrant(BaseModel):
    user: str
    role: Role
    approver: bool = False


class Member(BaseModel):
    user: str
    project: str
    role: Role
    approver: bool


class Whoami(BaseModel):
    name: str
    is_admin: bool
    roles: dict[str, str]
    approver_in: list[str]


class EventInfo(_Out):
    seq: int
    at: str
    actor: str
    project: str | None
    action: str
    resource: str
    summary: dict[str, Any]
    request_id: str | None
    hash: str


class ChainProblemInfo(BaseModel):
    seq: int
    kind: str
    message: str


class AuditReport(BaseModel):
    ok: bool
    checked: int
    head_seq: int
    head_hash: str
    problems: list[ChainProblemInfo]


API = "/api/v1"
CREATE_PROJECT = Operation("POST", f"{API}/projects", ProjectInfo, 201)
LIST_PROJECTS = Operation("GET", f"{API}/projects", list[ProjectInfo])
GET_PROJECT = Operation("GET", f"{API}/projects/{{name}}", ProjectInfo)
CREATE_USER = Operation("POST", f"{API}/users", UserInfo, 201)
LIST_USERS = Operation("GET", f"{API}/users", list[UserInfo])
GET_USER = Operation("GET", f"{API}/users/{{name}}", UserInfo)
SET_USER_DISABLED = Operation("POST", f"{API}/users/{{name}}/disabled", UserInfo)
WHOAMI = Operation("GET", f"{API}/whoami", Whoami)
CREATE_TOKEN = Operation("POST", f"{API}/tokens", TokenCreated, 201)
LIST_TOKENS = Operation("GET", f"{API}/tokens", list[TokenInfo])
REVOKE_TOKEN = Operation("DELETE", f"{API}/tokens/{{token_id}}", TokenInfo)
GRANT_ROLE = Operation("POST", f"{API}/members", Member, 201)
REVOKE_ROLE = Operation("DELETE", f"{API}/members/{{user}}", None, 204)
LIST_MEMBERS = Operation("GET", f"{API}/members", list[Member])
LIST_EVENTS = Operation("GET", f"{API}/audit/events", list[EventInfo])
VERIFY_AUDIT = Operation("GET", f"{API}/audit/verify", AuditReport)
