"""Plinth: a self-hosted AI platform in one Python package.

The SDK works embedded (``PLINTH_URI`` unset: SQLite and files under ``PLINTH_HOME``) or
against a server (``PLINTH_URI=http://host:8420`` with ``PLINTH_TOKEN``), with the same
calls either way.
"""

from plinth.artifacts import (
    delete_artifact,
    download_artifact,
    get_artifact,
    list_artifacts,
    read_artifact,
    upload_artifact,
)
from plinth.core.errors import (
    AlreadyExists,
    Conflict,
    DataCorrupted,
    InvalidInput,
    NotFound,
    PermissionDenied,
    PlinthError,
    Unauthenticated,
    Unavailable,
)
from plinth.governance import (
    create_project,
    create_token,
    create_user,
    get_project,
    get_user,
    grant_role,
    list_events,
    list_members,
    list_projects,
    list_tokens,
    list_users,
    revoke_role,
    revoke_token,
    set_user_disabled,
    verify_audit,
    whoami,
)

__version__ = "0.1.0"

__all__ = [
    "AlreadyExists",
    "Conflict",
    "DataCorrupted",
    "InvalidInput",
    "NotFound",
    "PermissionDenied",
    "PlinthError",
    "Unauthenticated",
    "Unavailable",
    "__version__",
    "create_project",
    "create_token",
    "create_user",
    "delete_artifact",
    "download_artifact",
    "get_artifact",
    "get_project",
    "get_user",
    "grant_role",
    "list_artifacts",
    "list_events",
    "list_members",
    "list_projects",
    "list_tokens",
    "list_users",
    "read_artifact",
    "revoke_role",
    "revoke_token",
    "set_user_disabled",
    "upload_artifact",
    "verify_audit",
    "whoami",
]
