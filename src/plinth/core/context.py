"""The Context every service call receives: who acts, in which project, on which stores.

Services never read globals: the actor, the project, the database session (one
transaction), the stores, the settings and the clock all come in here. ``require`` is the
one permission check; ``emit`` appends the change's event in the same transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from plinth.core.errors import InvalidInput, NotFound, PermissionDenied

if TYPE_CHECKING:
    from plinth.core.platform import Stores
    from plinth.core.settings import Settings

__all__ = ["LOCAL_ADMIN", "PERMISSIONS", "ROLES", "Actor", "Context", "Grant"]

ROLES = ("viewer", "editor", "maintainer", "admin")
# permission -> the lowest role that holds it; "approve" is a capability, not a role.
PERMISSIONS = {"read": "viewer", "write": "editor", "manage": "maintainer", "admin": "admin"}
_VERB = {"read": "reading", "write": "writing", "manage": "managing", "admin": "administering"}


@dataclass(frozen=True)
class Grant:
    role: str
    approver: bool = False


@dataclass(frozen=True)
class Actor:
    """Who is acting. ``grants`` maps project names to the actor's role there."""

    name: str
    user_id: str | None = None
    is_admin: bool = False
    grants: Mapping[str, Grant] = field(default_factory=lambda: MappingProxyType({}))
    token_id: str | None = None

    def role_in(self, project: str) -> str | None:
        if self.is_admin:
            return "admin"
        grant = self.grants.get(project)
        return grant.role if grant else None

    def can(self, permission: str, project: str) -> bool:
        if self.is_admin:
            return True
        grant = self.grants.get(project)
        if grant is None:
            return False
        if permission == "approve":
            return grant.approver
        if permission == "global_admin":
            return False
        needed = PERMISSIONS[permission]
        return ROLES.index(grant.role) >= ROLES.index(needed)


LOCAL_ADMIN = Actor(name="local", is_admin=True)


_OWN_PROJECT: Any = object()


def utcnow() -> datetime:
    return datetime.now(UTC)


class Context:
    def __init__(
        self,
        *,
        actor: Actor,
        project: str,
        session: Session,
        stores: Stores,
        settings: Settings,
        clock: Callable[[], datetime] = utcnow,
        request_id: str | None = None,
    ) -> None:
        self.actor = actor
        self.project = project
        self.session = session
        self.stores = stores
        self.settings = settings
        self.clock = clock
        self.request_id = request_id
        self._project_ids: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"Context(actor={self.actor.name!r}, project={self.project!r})"

    def with_session(self, session: Session) -> Context:
        """The same caller on another transaction (for work split into short transactions)."""
        return Context(
            actor=self.actor,
            project=self.project,
            session=session,
            stores=self.stores,
            settings=self.settings,
            clock=self.clock,
            request_id=self.request_id,
        )

    def now(self) -> datetime:
        return self.clock()

    def require(self, permission: str, project: str | None = None) -> None:
        """Raise PermissionDenied unless the actor holds ``permission`` in the project.

        ``permission`` is one of read, write, manage, admin (per project), approve (the
        approver capability) or global_admin (users and projects of the whole platform).
        """
        if permission not in PERMISSIONS and permission not in {"approve", "global_admin"}:
            raise ValueError(f"unknown permission {permission!r}")
        project = project or self.project
        if self.actor.can(permission, project):
            return
        if permission == "global_admin":
            raise PermissionDenied(f"{self.actor.name!r} is not a platform admin; only admins may do this")
        role = self.actor.role_in(project)
        if permission == "approve":
            raise PermissionDenied(f"{self.actor.name!r} lacks the approver capability in project {project!r}")
        have = f"is a {role}" if role else "has no role"
        raise PermissionDenied(
            f"{self.actor.name!r} {have} in project {project!r}; "
            f"{_VERB[permission]} needs {PERMISSIONS[permission]} or above",
            project=project,
            permission=permission,
        )

    def project_id(self, name: str | None = None) -> str:
        """The id of a project by name (the context's own by default); NotFound if unknown."""
        from sqlalchemy import select

        from plinth.governance.tables import Project

        name = name or self.project
        if name not in self._project_ids:
            if not isinstance(name, str) or not name:
                raise InvalidInput("project must be a non-empty name", field="project")
            pid = self.session.execute(select(Project.id).where(Project.name == name)).scalar()
            if pid is None:
                raise NotFound(f"project {name!r} does not exist", project=name)
            self._project_ids[name] = pid
        return self._project_ids[name]

    def emit(
        self,
        action: str,
        resource: str,
        summary: dict[str, Any] | None = None,
        *,
        project: str | None = _OWN_PROJECT,
    ) -> int:
        """Append this change's event to the log, in the current transaction. Returns its seq.

        The event belongs to the context's project unless ``project`` names another, or is
        ``None`` for platform-wide changes (users, tokens).
        """
        from plinth.store.events import append_event

        ev = append_event(
            self.session,
            actor=self.actor.name,
            project=self.project if project is _OWN_PROJECT else project,
            action=action,
            resource=resource,
            summary=summary,
            request_id=self.request_id,
            at=self.now(),
        )
        return ev.seq
