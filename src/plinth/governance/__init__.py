"""Governance: projects, users, API tokens, roles and the audit log."""

from plinth.core.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    globals(),
    {
        "plinth.governance.sdk": [
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
    },
)
