"""CLI of the governance area: projects, users, tokens, audit (thin: SDK calls only)."""

from __future__ import annotations

import typer

from plinth.cli.output import JsonOption, ProjectOption, show

projects = typer.Typer(help="Projects: the namespaces every resource lives in.", no_args_is_help=True)
users = typer.Typer(help="Users of the platform (admins only).", no_args_is_help=True)
tokens = typer.Typer(help="API tokens: create, list, revoke.", no_args_is_help=True)
audit = typer.Typer(help="The hash-chained event log.", no_args_is_help=True)

PROJECT_COLS = ["name", "description", "created_by", "created_at"]
USER_COLS = ["name", "email", "is_admin", "disabled", "created_at"]
TOKEN_COLS = ["id", "user", "name", "prefix", "created_at", "expires_at", "revoked_at", "last_used_at"]
EVENT_COLS = ["seq", "at", "actor", "project", "action", "resource", "summary"]


@projects.command("create")
def projects_create(
    name: str, description: str = typer.Option("", "--description", "-d"), json: bool = JsonOption
) -> None:
    """Create a project (you become its admin)."""
    from plinth.governance import create_project

    show(create_project(name, description), json, PROJECT_COLS)


@projects.command("list")
def projects_list(json: bool = JsonOption) -> None:
    """List the projects you can read."""
    from plinth.governance import list_projects

    show(list_projects(), json, PROJECT_COLS, title="projects")


@projects.command("show")
def projects_show(name: str, json: bool = JsonOption) -> None:
    from plinth.governance import get_project

    show(get_project(name), json)


@projects.command("members")
def projects_members(project: str | None = ProjectOption, json: bool = JsonOption) -> None:
    """List the users with a role in a project."""
    from plinth.governance import list_members

    show(list_members(project=project), json, ["user", "project", "role", "approver"], title="members")


@projects.command("grant")
def projects_grant(
    user: str,
    role: str = typer.Argument(..., help="viewer, editor, maintainer or admin"),
    approver: bool = typer.Option(False, "--approver", help="Also give the approver capability."),
    project: str | None = ProjectOption,
    json: bool = JsonOption,
) -> None:
    """Give USER a ROLE in a project."""
    from plinth.governance import grant_role

    show(grant_role(user, role, approver=approver, project=project), json)


@projects.command("revoke")
def projects_revoke(user: str, project: str | None = ProjectOption) -> None:
    """Remove USER's role from a project."""
    from plinth.governance import revoke_role

    revoke_role(user, project=project)
    typer.echo(f"revoked {user}'s role")


@users.command("create")
def users_create(
    name: str,
    email: str | None = typer.Option(None, "--email"),
    admin: bool = typer.Option(False, "--admin", help="Make the user a platform admin."),
    json: bool = JsonOption,
) -> None:
    from plinth.governance import create_user

    show(create_user(name, email=email, is_admin=admin), json, USER_COLS)


@users.command("list")
def users_list(json: bool = JsonOption) -> None:
    from plinth.governance import list_users

    show(list_users(), json, USER_COLS, title="users")


@users.command("disable")
def users_disable(name: str, json: bool = JsonOption) -> None:
    """Disable a user: their tokens stop working."""
    from plinth.governance import set_user_disabled

    show(set_user_disabled(name, True), json, USER_COLS)


@users.command("enable")
def users_enable(name: str, json: bool = JsonOption) -> None:
    from plinth.governance import set_user_disabled

    show(set_user_disabled(name, False), json, USER_COLS)


@tokens.command("create")
def tokens_create(
    name: str,
    user: str | None = typer.Option(None, "--user", help="Whose token (admins only); yourself by default."),
    expires_in_days: float | None = typer.Option(None, "--expires-in-days"),
    json: bool = JsonOption,
) -> None:
    """Create an API token. The secret is printed once; store it now."""
    from plinth.governance import create_token

    created = create_token(name, user=user, expires_in_days=expires_in_days)
    if json:
        show(created, True)
        return
    show(created, False, ["id", "user", "name", "prefix", "expires_at"])
    typer.echo(f"\ntoken (shown once): {created.token}")


@tokens.command("list")
def tokens_list(user: str | None = typer.Option(None, "--user"), json: bool = JsonOption) -> None:
    from plinth.governance import list_tokens

    show(list_tokens(user=user), json, TOKEN_COLS, title="tokens")


@tokens.command("revoke")
def tokens_revoke(token_id: str, json: bool = JsonOption) -> None:
    from plinth.governance import revoke_token

    show(revoke_token(token_id), json, TOKEN_COLS)


@audit.command("list")
def audit_list(
    after: int = typer.Option(0, "--after", help="Only events after this sequence number."),
    limit: int = typer.Option(50, "--limit"),
    action: str | None = typer.Option(None, "--action", help="e.g. token.create or token.*"),
    actor: str | None = typer.Option(None, "--actor"),
    project: str | None = ProjectOption,
    all_projects: bool = typer.Option(False, "--all", help="Every project's events (admins)."),
    json: bool = JsonOption,
) -> None:
    """List events of the audit log."""
    from plinth.governance import list_events

    rows = list_events(after=after, limit=limit, action=action, actor=actor, project=project, all_projects=all_projects)
    show(rows, json, EVENT_COLS, title="events")


@audit.command("verify")
def audit_verify(json: bool = JsonOption) -> None:
    """Recompute the hash chain; exit 1 and name each altered event if it was tampered with."""
    from plinth.governance import verify_audit

    report = verify_audit()
    if json:
        show(report, True)
    elif report.ok:
        typer.echo(f"ok: {report.checked} events verified, head {report.head_seq} {report.head_hash[:16]}…")
    else:
        typer.echo(f"FAILED: {len(report.problems)} problem(s) in {report.checked} events", err=True)
        for p in report.problems:
            typer.echo(f"  event {p.seq} [{p.kind}]: {p.message}", err=True)
    if not report.ok:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.add_typer(projects, name="projects")
    app.add_typer(users, name="users")
    app.add_typer(tokens, name="tokens")
    app.add_typer(audit, name="audit")
