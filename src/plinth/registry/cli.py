"""CLI of the model registry (thin: SDK calls only)."""

from __future__ import annotations

import typer

from plinth.cli.output import JsonOption, ProjectOption, show

registry = typer.Typer(
    help="The model registry: models, versions, aliases, stages, approvals, history.", no_args_is_help=True
)

MODEL_COLS = ["name", "latest_version", "production_version", "aliases", "stages", "owner", "updated_at"]
VERSION_COLS = ["version", "stage", "flavor", "aliases", "source", "created_by", "created_at"]
APPROVAL_COLS = ["id", "name", "version", "status", "reason", "requested_by", "decided_by", "requested_at"]


@registry.command("list")
def list_(project: str | None = ProjectOption, json: bool = JsonOption) -> None:
    """List the registered models with their latest and production versions."""
    from plinth.registry import list_models

    show(list_models(project=project), json, MODEL_COLS, title="registered models")


@registry.command("create")
def create(
    name: str,
    description: str = typer.Option("", "--description", "-d"),
    owner: str | None = typer.Option(None, "--owner"),
    project: str | None = ProjectOption,
    json: bool = JsonOption,
) -> None:
    """Create a registered model (registering a version creates it too)."""
    from plinth.registry import create_model

    show(create_model(name, description, owner=owner, project=project), json, MODEL_COLS[:1] + ["description", "owner"])


@registry.command("show")
def show_(name: str, project: str | None = ProjectOption, json: bool = JsonOption) -> None:
    """A registered model and its versions."""
    from plinth.registry import get_model

    detail = get_model(name, project=project)
    if json:
        show(detail, True)
        return
    show(detail, False, ["name", "description", "owner", "tags", "aliases", "production_version", "pending_approvals"])
    show(detail.versions, False, VERSION_COLS, title="versions")


@registry.command("register")
def register(
    name: str,
    source: str = typer.Argument(..., help="runs:/<run_id>/<path> of a logged model, or models:/<name>/<version>"),
    description: str = typer.Option("", "--description", "-d"),
    project: str | None = ProjectOption,
    json: bool = JsonOption,
) -> None:
    """Register a logged model as the next version of NAME (lineage is recorded)."""
    from plinth.registry import register_model

    show(register_model(name, source, description, project=project), json, VERSION_COLS)


@registry.command("versions")
def versions(
    name: str,
    stage: str | None = typer.Option(None, "--stage"),
    project: str | None = ProjectOption,
    json: bool = JsonOption,
) -> None:
    from plinth.registry import list_versions

    show(list_versions(name, stage=stage, project=project), json, VERSION_COLS, title="versions")


@registry.command("resolve")
def resolve(ref: str, project: str | None = ProjectOption, json: bool = JsonOption) -> None:
    """The version a reference names, e.g. models:/churn@champion."""
    from plinth.registry import resolve as _resolve

    show(_resolve(ref, project=project), json, ["name", *VERSION_COLS, "manifest_sha256"])


@registry.command("alias")
def alias(name: str, alias: str, version: int, project: str | None = ProjectOption, json: bool = JsonOption) -> None:
    """Point models:/NAME@ALIAS at VERSION (moved atomically)."""
    from plinth.registry import set_alias

    show(set_alias(name, alias, version, project=project), json, ["name", *VERSION_COLS])


@registry.command("unalias")
def unalias(name: str, alias: str, project: str | None = ProjectOption) -> None:
    from plinth.registry import delete_alias

    delete_alias(name, alias, project=project)
    typer.echo(f"removed @{alias} from {name}")


@registry.command("stage")
def stage(
    name: str,
    version: int,
    stage: str = typer.Argument(..., help="development, staging or archived (production needs an approval)"),
    comment: str | None = typer.Option(None, "--comment"),
    project: str | None = ProjectOption,
    json: bool = JsonOption,
) -> None:
    """Move a version between stages."""
    from plinth.registry import transition_stage

    show(transition_stage(name, version, stage, comment, project=project), json, ["name", *VERSION_COLS])


@registry.command("request-approval")
def request_approval(
    name: str,
    version: int,
    reason: str = typer.Option(..., "--reason", help="Why this version should go to production."),
    project: str | None = ProjectOption,
    json: bool = JsonOption,
) -> None:
    """Ask for VERSION to go to production; an approver other than you decides."""
    from plinth.registry import request_approval as _request

    show(_request(name, version, reason, project=project), json, APPROVAL_COLS)


@registry.command("approvals")
def approvals(
    status: str = typer.Option("pending", "--status", help="pending, approved, rejected, cancelled or all"),
    model: str | None = typer.Option(None, "--model"),
    project: str | None = ProjectOption,
    json: bool = JsonOption,
) -> None:
    """The approval queue."""
    from plinth.registry import list_approvals

    show(list_approvals(status, name=model, project=project), json, APPROVAL_COLS, title="approval requests")


@registry.command("approve")
def approve(
    request_id: str,
    comment: str | None = typer.Option(None, "--comment"),
    project: str | None = ProjectOption,
    json: bool = JsonOption,
) -> None:
    """Approve a request: its version goes to production, the previous one is archived."""
    from plinth.registry import approve as _approve

    show(_approve(request_id, comment, project=project), json, APPROVAL_COLS)


@registry.command("reject")
def reject(
    request_id: str,
    comment: str | None = typer.Option(None, "--comment"),
    project: str | None = ProjectOption,
    json: bool = JsonOption,
) -> None:
    from plinth.registry import reject as _reject

    show(_reject(request_id, comment, project=project), json, APPROVAL_COLS)


@registry.command("cancel")
def cancel(request_id: str, project: str | None = ProjectOption, json: bool = JsonOption) -> None:
    """Withdraw a pending approval request."""
    from plinth.registry import cancel_approval

    show(cancel_approval(request_id, project=project), json, APPROVAL_COLS)


@registry.command("history")
def history(
    name: str,
    at: str | None = typer.Option(
        None, "--at", help="A moment such as 2026-11-01T12:00Z (UTC unless a zone is given)."
    ),
    project: str | None = ProjectOption,
    json: bool = JsonOption,
) -> None:
    """Which version each alias named and which was in production at --at (from the event log)."""
    from plinth.registry import history as _history

    result = _history(name, at=at, project=project)
    if json:
        show(result, True)
        return
    when = result.at.strftime("%Y-%m-%dT%H:%M:%SZ") if result.at else "now"
    typer.echo(f"{name} at {when}:")
    for alias_, version in result.aliases.items():
        typer.echo(f"  @{alias_} -> version {version}")
    production = ", ".join(str(v) for v in result.production) or "none"
    typer.echo(f"  production: {production}")
    rows = [
        {"seq": e.seq, "at": e.at, "actor": e.actor, "action": e.action, "version": e.version, "summary": e.summary}
        for e in result.events
    ]
    show(rows, False, ["seq", "at", "actor", "action", "version", "summary"], title="events")


@registry.command("compare")
def compare(name: str, versions: list[int], project: str | None = ProjectOption, json: bool = JsonOption) -> None:
    """Metrics, params and signatures of versions side by side."""
    from plinth.registry import compare_versions

    result = compare_versions(name, versions, project=project)
    if json:
        show(result, True)
        return
    keys = [str(v) for v in result.versions]
    rows: list[dict[str, object]] = [
        {"what": "stage", **result.stages},
        {"what": "flavor", **result.flavors},
        {"what": "inputs", **result.signatures},
    ]
    rows += [{"what": f"metric {k}", **{v: vals.get(v) for v in keys}} for k, vals in result.metrics.items()]
    rows += [{"what": f"param {k}", **{v: vals.get(v) for v in keys}} for k, vals in result.params.items()]
    show(rows, False, ["what", *keys], title=f"{name}: versions {', '.join(keys)}")
    for change in result.signature_changes:
        typer.echo(f"signature: {change}")


@registry.command("edit-card")
def edit_card(
    name: str,
    set_: list[str] = typer.Option(..., "--set", help="FIELD=TEXT, e.g. intended_use='Churn triage'; repeatable."),
    project: str | None = ProjectOption,
    json: bool = JsonOption,
) -> None:
    """Write fields of NAME's model card (purpose, intended_use, limitations...)."""
    from plinth.cli.output import fail
    from plinth.registry import update_card

    fields = {}
    for item in set_:
        key, sep, value = item.partition("=")
        if not sep:
            raise fail(f"--set takes FIELD=TEXT, got {item!r}", 2)
        fields[key.strip()] = value
    card = update_card(name, fields, project=project)
    show(card if json else card.fields, json)


def register_commands(app: typer.Typer) -> None:
    app.add_typer(registry, name="registry")
