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
    "plinth.tracking": [
        "ActiveRun",
        "TorchLogger",
        "active_run",
        "autolog",
        "compare_runs",
        "create_experiment",
        "delete_run",
        "end_run",
        "flush",
        "get_experiment",
        "get_metric_history",
        "get_run",
        "lightgbm_callback",
        "list_experiments",
        "log_artifact",
        "log_artifacts",
        "log_batch",
        "log_dict",
        "log_figure",
        "log_image",
        "log_metric",
        "log_metrics",
        "log_param",
        "log_params",
        "log_table",
        "log_text",
        "search_runs",
        "set_experiment",
        "set_tag",
        "set_tags",
        "start_run",
        "xgboost_callback",
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

_getattr, _dir, _LAZY = lazy_exports(__name__, globals(), _EXPORTS)
# Areas whose SDK is a namespace of its own: ``plinth.data.ingest(...)``.
_SUBMODULES = {"data", "features", "models", "registry", "serving"}


def __getattr__(name: str) -> object:
    if name in _SUBMODULES:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    return _getattr(name)


def __dir__() -> list[str]:
    return sorted(set(_dir()) | _SUBMODULES)


__all__ = sorted([*_ERRORS, "__version__", *_LAZY, *_SUBMODULES])
