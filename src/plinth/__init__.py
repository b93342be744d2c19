"""Plinth: a self-hosted AI platform in one Python package.

The SDK works embedded (``PLINTH_URI`` unset: SQLite and files under ``PLINTH_HOME``) or
against a server (``PLINTH_URI=http://host:8420`` with ``PLINTH_TOKEN``), with the same
calls either way.

Names are imported on first use (``plinth.create_project`` loads the governance area
then), so ``import plinth`` stays fast. To add a public name, list it in ``_EXPORTS``.
"""

from __future__ import annotations

from plinth.core.errors import (  # noqa: F401 - re-exported
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
from plinth.core.lazy import lazy_exports

__version__ = "0.1.0"

# module -> the public names it provides as ``plinth.<name>``
_EXPORTS: dict[str, list[str]] = {
    "plinth.artifacts": [
        "delete_artifact",
        "download_artifact",
        "get_artifact",
        "list_artifacts",
        "read_artifact",
        "upload_artifact",
    ],
    "plinth.governance": [
        "create_project",
        "create_token",
        "create_user",
        "get_project",
        "get_user",
        "grant_role",
        "list_events",
        "list_members",
        "list_projects",
        "list_tokens",
        "list_users",
        "revoke_role",
        "revoke_token",
        "set_user_disabled",
        "verify_audit",
        "whoami",
    ],
}
_ERRORS = [
    "AlreadyExists",
    "Conflict",
    "DataCorrupted",
    "InvalidInput",
    "NotFound",
    "PermissionDenied",
    "PlinthError",
    "Unauthenticated",
    "Unavailable",
]

__getattr__, __dir__, _LAZY = lazy_exports(__name__, globals(), _EXPORTS)
__all__ = sorted([*_ERRORS, "__version__", *_LAZY])
