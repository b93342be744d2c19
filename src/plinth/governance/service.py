"""Projects, users, tokens, roles and the audit log: the rules, in one place.

Every mutating function checks permission with ``ctx.require`` and appends its event
with ``ctx.emit`` in the same transaction as the change.
"""

from __future__ import annotations

import json
import secrets
from datetime import datetime, timedelta
from types import MappingProxyType

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from plinth.core.context import ROLES, Actor, Context, Grant
from plinth.core.errors import AlreadyExists, InvalidInput, NotFound, Unauthenticated
from plinth.core.hashing import sha256_hex
from plinth.core.ids import new_id
from plinth.core.names import validate_name
from plinth.governance import schemas as s
from plinth.governance.tables import Project, RoleBinding, Token, User
from plinth.store.events import read_events, verify_chain

TOKEN_PREFIX = "plt_"
MIN_TOKEN_LENGTH = 32
LAST_USED_RESOLUTION = timedelta(minutes=1)


# --- projects ---------------------------------------------------------------------------
def create_project(ctx: Context, name: str, description: str = "") -> s.ProjectInfo:
    """Create a project; its creator becomes its admin."""
    validate_name(name, "project")
    if ctx.session.execute(select(Project.id).where(Project.name == name)).scalar():
        raise AlreadyExists(f"project {name!r} already exists", project=name)
    project = Project(id=new_id(), name=name, description=description, created_at=ctx.now(), created_by=ctx.actor.name)
    ctx.session.add(project)
    if ctx.actor.user_id is not None and not ctx.actor.is_admin:
        ctx.session.add(
            RoleBinding(id=new_id(), user_id=ctx.actor.user_id, project_id=project.id, role="admin", approver=False)
        )
    _flush_unique(ctx.session, f"project {name!r} already exists")
    ctx.emit("project.create", f"projects:/{name}", {"description": description}, project=name)
    return s.ProjectInfo.model_validate(project)


def list_projects(ctx: Context) -> list[s.ProjectInfo]:
    rows = ctx.session.execute(select(Project).order_by(Project.name)).scalars()
    return [s.ProjectInfo.model_validate(p) for p in rows if ctx.actor.can("read", p.name)]


def get_project(ctx: Context, name: str) -> s.ProjectInfo:
    ctx.require("read", name)
    project = ctx.session.execute(select(Project).where(Project.name == name)).scalar()
    if project is None:
        raise NotFound(f"project {name!r} does not exist", project=name)
    return s.ProjectInfo.model_validate(project)


# --- users ------------------------------------------------------------------------------
def _user(session: Session, name: str) -> User:
    user = session.execute(select(User).where(User.name == name)).scalar()
    if user is None:
        raise NotFound(f"user {name!r} does not exist", user=name)
    return user


def create_user(ctx: Context, name: str, email: str | None = None, is_admin: bool = False) -> s.UserInfo:
    ctx.require("global_admin")
    validate_name(name, "user")
    if email is not None and ("@" not in email or len(email) > 320):
        raise InvalidInput(f"email {email!r} is not an email address", field="email")
    if ctx.session.execute(select(User.id).where(User.name == name)).scalar():
        raise AlreadyExists(f"user {name!r} already exists", user=name)
    user = User(id=new_id(), name=name, email=email, is_admin=is_admin, disabled=False, created_at=ctx.now())
    ctx.session.add(user)
    _flush_unique(ctx.session, f"user {name!r} already exists")
    ctx.emit("user.create", f"users:/{name}", {"email": email, "is_admin": is_admin}, project=None)
    return s.UserInfo.model_validate(user)


def list_users(ctx: Context) -> list[s.UserInfo]:
    ctx.require("global_admin")
    return [s.UserInfo.model_validate(u) for u in ctx.session.execute(select(User).order_by(User.name)).scalars()]


def get_user(ctx: Context, name: str) -> s.UserInfo:
    if name != ctx.actor.name:
        ctx.require("global_admin")
    return s.UserInfo.model_validate(_user(ctx.session, name))


def set_user_disabled(ctx: Context, name: str, disabled: bool) -> s.UserInfo:
    ctx.require("global_admin")
    user = _user(ctx.session, name)
    if user.disabled != disabled:
        user.disabled = disabled
        ctx.emit("user.disable" if disabled else "user.enable", f"users:/{name}", {"disabled": disabled}, project=None)
    return s.UserInfo.model_validate(user)


def whoami(ctx: Context) -> s.Whoami:
    return s.Whoami(
        name=ctx.actor.name,
        is_admin=ctx.actor.is_admin,
        roles={p: g.role for p, g in ctx.actor.grants.items()},
        approver_in=sorted(p for p, g in ctx.actor.grants.items() if g.approver),
    )


# --- tokens -----------------------------------------------------------------------------
def _token_info(token: Token, user_name: str) -> s.TokenInfo:
    return s.TokenInfo(
        id=token.id,
        user=user_name,
        name=token.name,
        prefix=token.prefix,
        created_at=token.created_at,
        expires_at=token.expires_at,
        revoked_at=token.revoked_at,
        last_used_at=token.last_used_at,
    )


def _issue_token(
    ctx: Context, user: User, name: str, secret: str | None, expires_at: datetime | None
) -> s.TokenCreated:
    validate_name(name, "token name")
    if secret is None:
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    elif len(secret) < MIN_TOKEN_LENGTH or not secret.isascii() or any(c.isspace() for c in secret):
        raise InvalidInput(
            f"a chosen token must be at least {MIN_TOKEN_LENGTH} printable ASCII characters without spaces",
            field="token",
        )
    token = Token(
        id=new_id(),
        user_id=user.id,
        name=name,
        prefix=secret[:12],
        hash=sha256_hex(secret.encode()),
        created_at=ctx.now(),
        expires_at=expires_at,
    )
    ctx.session.add(token)
    _flush_unique(ctx.session, "that token is already in use")
    ctx.emit(
        "token.create",
        f"tokens:/{token.id}",
        {"user": user.name, "name": name, "prefix": token.prefix, "expires_at": expires_at},
        project=None,
    )
    return s.TokenCreated(**_token_info(token, user.name).model_dump(), token=secret)


def create_token(
    ctx: Context, name: str, user: str | None = None, expires_in_days: float | None = None
) -> s.TokenCreated:
    """Issue an API token; the secret is returned once and stored only as its sha256."""
    owner_name = user or ctx.actor.name
    if owner_name != ctx.actor.name or ctx.actor.user_id is None:
        ctx.require("global_admin")
    if expires_in_days is not None and expires_in_days <= 0:
        raise InvalidInput("expires_in_days must be positive", field="expires_in_days")
    owner = _user(ctx.session, owner_name)
    expires_at = ctx.now() + timedelta(days=expires_in_days) if expires_in_days else None
    return _issue_token(ctx, owner, name, None, expires_at)


def list_tokens(ctx: Context, user: str | None = None) -> list[s.TokenInfo]:
    q = select(Token, User.name).join(User, User.id == Token.user_id).order_by(Token.created_at)
    if user is not None:
        q = q.where(User.name == user)
    if not ctx.actor.is_admin:
        if user is not None and user != ctx.actor.name:
            ctx.require("global_admin")
        q = q.where(Token.user_id == ctx.actor.user_id)
    return [_token_info(t, n) for t, n in ctx.session.execute(q).all()]


def revoke_token(ctx: Context, token_id: str) -> s.TokenInfo:
    row = ctx.session.execute(
        select(Token, User.name).join(User, User.id == Token.user_id).where(Token.id == token_id)
    ).first()
    if row is None:
        raise NotFound(f"token {token_id!r} does not exist", token=token_id)
    token, owner = row
    if token.user_id != ctx.actor.user_id:
        ctx.require("global_admin")
    if token.revoked_at is None:
        token.revoked_at = ctx.now()
        ctx.emit("token.revoke", f"tokens:/{token.id}", {"user": owner, "prefix": token.prefix}, project=None)
    return _token_info(token, owner)


def authenticate(session: Session, secret: str | None, now: datetime) -> Actor:
    """The actor a bearer token stands for; Unauthenticated says why it does not."""
    if not secret:
        raise Unauthenticated("a token is required: send 'Authorization: Bearer <token>' or log in")
    if len(secret) < MIN_TOKEN_LENGTH or len(secret) > 512 or not secret.isascii() or any(c.isspace() for c in secret):
        raise Unauthenticated("the token is malformed")
    row = session.execute(
        select(Token, User).join(User, User.id == Token.user_id).where(Token.hash == sha256_hex(secret.encode()))
    ).first()
    if row is None:
        raise Unauthenticated("the token is not known")
    token, user = row
    if token.revoked_at is not None:
        raise Unauthenticated(f"the token {token.prefix}… was revoked")
    if token.expires_at is not None and token.expires_at <= now:
        raise Unauthenticated(f"the token {token.prefix}… expired at {token.expires_at.isoformat()}")
    if user.disabled:
        raise Unauthenticated(f"user {user.name!r} is disabled")
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        token.last_used_at = now
    return actor_for(session, user, token.id)


def actor_for(session: Session, user: User, token_id: str | None = None) -> Actor:
    grants = {
        name: Grant(role, approver)
        for name, role, approver in session.execute(
            select(Project.name, RoleBinding.role, RoleBinding.approver)
            .join(Project, Project.id == RoleBinding.project_id)
            .where(RoleBinding.user_id == user.id)
        ).all()
    }
    return Actor(
        name=user.name, user_id=user.id, is_admin=user.is_admin, grants=MappingProxyType(grants), token_id=token_id
    )


def bootstrap_admin(ctx: Context, name: str = "admin", token: str | None = None) -> s.TokenCreated | None:
    """On a store with no users: create the first admin and its token. None if users exist."""
    if ctx.session.execute(select(User.id).limit(1)).scalar() is not None:
        if (
            token is not None
            and ctx.session.execute(select(Token.id).where(Token.hash == sha256_hex(token.encode()))).scalar() is None
        ):
            admin = ctx.session.execute(select(User).where(User.is_admin.is_(True)).order_by(User.created_at)).scalar()
            if admin is not None:
                return _issue_token(ctx, admin, "admin-token", token, None)
        return None
    user = User(id=new_id(), name=name, email=None, is_admin=True, disabled=False, created_at=ctx.now())
    ctx.session.add(user)
    ctx.session.flush()
    ctx.emit("user.create", f"users:/{name}", {"is_admin": True, "bootstrap": True}, project=None)
    return _issue_token(ctx, user, "first-login", token, None)


# --- roles ------------------------------------------------------------------------------
def grant_role(ctx: Context, user: str, role: str, approver: bool = False) -> s.Member:
    """Give a user a role (and optionally the approver capability) in the context's project."""
    ctx.require("admin")
    if role not in ROLES:
        raise InvalidInput(f"role {role!r} is not one of {', '.join(ROLES)}", field="role")
    project_id = ctx.project_id()
    target = _user(ctx.session, user)
    binding = ctx.session.execute(
        select(RoleBinding).where(RoleBinding.user_id == target.id, RoleBinding.project_id == project_id)
    ).scalar()
    before = {"role": binding.role, "approver": binding.approver} if binding else None
    if binding is None:
        binding = RoleBinding(id=new_id(), user_id=target.id, project_id=project_id, role=role, approver=approver)
        ctx.session.add(binding)
    else:
        binding.role, binding.approver = role, approver
    ctx.emit("role.grant", f"users:/{user}", {"before": before, "after": {"role": role, "approver": approver}})
    return s.Member(user=user, project=ctx.project, role=role, approver=approver)  # type: ignore[arg-type]


def revoke_role(ctx: Context, user: str) -> None:
    ctx.require("admin")
    project_id = ctx.project_id()
    target = _user(ctx.session, user)
    binding = ctx.session.execute(
        select(RoleBinding).where(RoleBinding.user_id == target.id, RoleBinding.project_id == project_id)
    ).scalar()
    if binding is None:
        raise NotFound(f"user {user!r} has no role in project {ctx.project!r}")
    ctx.session.delete(binding)
    ctx.emit("role.revoke", f"users:/{user}", {"before": {"role": binding.role, "approver": binding.approver}})


def list_members(ctx: Context) -> list[s.Member]:
    ctx.require("read")
    project_id = ctx.project_id()
    rows = ctx.session.execute(
        select(User.name, RoleBinding.role, RoleBinding.approver)
        .join(User, User.id == RoleBinding.user_id)
        .where(RoleBinding.project_id == project_id)
        .order_by(User.name)
    ).all()
    return [s.Member(user=n, project=ctx.project, role=r, approver=a) for n, r, a in rows]


# --- audit ------------------------------------------------------------------------------
def list_events(
    ctx: Context,
    after: int = 0,
    limit: int = 100,
    action: str | None = None,
    resource: str | None = None,
    actor: str | None = None,
    all_projects: bool = False,
    descending: bool = False,
    before: int | None = None,
) -> list[s.EventInfo]:
    """Events after a sequence number: the audit trail and the change feed.

    Platform admins may read every project's events (``all_projects=True``); maintainers
    read their project's.
    """
    if limit < 1 or limit > 10_000:
        raise InvalidInput("limit must be between 1 and 10000", field="limit")
    if all_projects:
        ctx.require("global_admin")
    else:
        ctx.require("manage")
        ctx.project_id()
    rows = read_events(
        ctx.session,
        after=after,
        limit=limit,
        project=None if all_projects else ctx.project,
        action=action,
        resource=resource,
        actor=actor,
        descending=descending,
        before=before,
    )
    return [
        s.EventInfo(
            seq=e.seq,
            at=e.at,
            actor=e.actor,
            project=e.project,
            action=e.action,
            resource=e.resource,
            summary=json.loads(e.summary),
            request_id=e.request_id,
            hash=e.hash,
        )
        for e in rows
    ]


def verify_audit(ctx: Context) -> s.AuditReport:
    """Recompute the whole hash chain; each problem names the event where it is."""
    ctx.require("global_admin")
    report = verify_chain(ctx.session)
    return s.AuditReport(
        ok=report.ok,
        checked=report.checked,
        head_seq=report.head_seq,
        head_hash=report.head_hash,
        problems=[s.ChainProblemInfo(seq=p.seq, kind=p.kind, message=p.message) for p in report.problems],
    )


def _flush_unique(session: Session, message: str) -> None:
    """Flush, turning a unique-constraint race into AlreadyExists."""
    try:
        session.flush()
    except IntegrityError:
        raise AlreadyExists(message) from None
