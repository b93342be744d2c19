"""Governance: projects, users, API tokens, roles and the audit log."""

from plinth.governance.sdk import (
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

__all__ = [
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
]
