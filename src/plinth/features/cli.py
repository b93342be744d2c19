"""CLI of the features area: ``plinth features plan|apply|list|show|search|materialize|serve``."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer

from plinth.cli.output import JsonOption, ProjectOption, print_json, show

features = typer.Typer(
    help="The feature store: definitions, training sets, online serving (Feast semantics).",
    no_args_is_help=True,
)
DEFINITION_COLS = ["kind", "name", "version", "owner", "description", "updated_at", "updated_by"]
FEATURE_COLS = ["ref", "dtype", "entities", "owner", "description", "tags"]
KINDS = {"views": "feature_view", "services": "feature_service", "entities": "entity"}
ACTION_MARK = {"create": "+", "update": "~", "remove": "-", "unchanged": "=", "keep": "?"}


def _print_plan(plan: Any, prune: bool) -> None:
    kept = [c for c in plan.changes if c.action == "keep"]
    for c in plan.changes:
        if c.action in {"keep"}:
            continue
        versions = ""
        if c.action == "create":
            versions = f" (version {c.to_version})"
        elif c.action == "update":
            versions = f" (version {c.from_version} -> {c.to_version})"
        typer.echo(f"{ACTION_MARK[c.action]} {c.action:9} {c.kind:24} {c.name}{versions}")
        for line in c.changes:
            typer.echo(f"      {line}")
    if kept:
        typer.echo(f"{len(kept)} definitions in the registry are not in the repository (kept; --prune removes them)")
    counts = plan.summary()
    typer.echo(", ".join(f"{n} {a}" for a, n in sorted(counts.items()) if a != "keep") or "nothing to change")


@features.command("plan")
def plan(
    path: Path = typer.Argument(Path("."), help="Feature repository folder (default: the current folder)."),  # noqa: B008
    prune: bool = typer.Option(False, "--prune", help="Also show the removal of definitions not in the folder."),
    project: str | None = ProjectOption,
    json: bool = JsonOption,
) -> None:
    """Show what `apply` would change in the registry (nothing is written)."""
    import plinth.features as pf

    result = pf.plan(pf.load_repo(path), prune=prune, project=project)
    if json:
        print_json(result)
        return
    _print_plan(result, prune)


@features.command("apply")
def apply(
    path: Path = typer.Argument(Path("."), help="Feature repository folder (default: the current folder)."),  # noqa: B008
    prune: bool = typer.Option(False, "--prune", help="Remove registry definitions that are not in the folder."),
    project: str | None = ProjectOption,
    json: bool = JsonOption,
) -> None:
    """Store the folder's definitions: a new version of each one that changed (audited)."""
    import plinth.features as pf

    result = pf.apply(pf.load_repo(path), prune=prune, project=project)
    if json:
        print_json(result)
        return
    _print_plan(result.plan, prune)


@features.command("list")
def list_(
    kind: str = typer.Option("views", "--kind", "-k", help="views, features, services or entities"),
    project: str | None = ProjectOption,
    json: bool = JsonOption,
) -> None:
    """List feature views (default), features, feature services or entities."""
    import plinth.features as pf

    if kind == "features":
        show(pf.list_features(project=project), json, FEATURE_COLS, title="features")
        return
    if kind not in KINDS:
        from plinth.cli.output import fail

        raise fail("--kind must be views, features, services or entities", 2)
    items = {
        "views": pf.list_feature_views,
        "services": pf.list_feature_services,
        "entities": pf.list_entities,
    }[kind](project=project)
    show(items, json, DEFINITION_COLS, title=kind)


@features.command("show")
def show_(
    name: str = typer.Argument(..., help="A feature view, feature service, entity, or feature (view:feature)."),
    project: str | None = ProjectOption,
    json: bool = JsonOption,
) -> None:
    """Details of a feature (``view:feature``), a feature view or service, or an entity."""
    import plinth.features as pf
    from plinth.core.errors import NotFound

    if ":" in name and not name.startswith("features:/"):
        info = pf.get_feature(name, project=project)
        if json:
            print_json(info)
            return
        show(
            info,
            False,
            [
                "ref",
                "dtype",
                "kind",
                "view_version",
                "entities",
                "owner",
                "description",
                "tags",
                "source",
                "ttl_seconds",
                "online",
            ],
        )
        if info.freshness:
            show(info.freshness, False, ["last_write_at", "materialized_until", "max_event_ts", "lag_seconds"])
        if info.statistics:
            typer.echo("statistics: " + ", ".join(f"{k}={v}" for k, v in info.statistics.items() if v is not None))
        if info.usage:
            show(info.usage, False)
        return
    name = name.removeprefix("features:/")
    for getter in (pf.get_feature_view, pf.get_feature_service):
        try:
            detail = getter(name, project=project)
        except NotFound:
            continue
        if json:
            print_json(detail)
            return
        d = detail.definition
        typer.echo(f"{d.kind} {d.name} (version {d.version}), updated {d.updated_at:%Y-%m-%d %H:%M} by {d.updated_by}")
        if d.description:
            typer.echo(d.description)
        show(detail.features, False, ["ref", "dtype", "description"], title="features")
        return
    show(pf.get_entity(name, project=project), json, ["kind", "name", "version", "spec", "updated_at"])


@features.command("search")
def search(
    query: str = typer.Argument(..., help="Words that must all appear (name, description, owner, tags, dtype)."),
    project: str | None = ProjectOption,
    json: bool = JsonOption,
) -> None:
    """Search the feature catalog."""
    import plinth.features as pf

    show(pf.search_features(query, project=project), json, FEATURE_COLS, title=f"features matching {query!r}")


def _when(text: str | None, what: str) -> datetime | None:
    if text is None:
        return None
    if text == "now":
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        from plinth.core.errors import InvalidInput

        raise InvalidInput(
            f"{what} {text!r} is not an ISO-8601 time such as 2026-11-27T00:00:00Z", field=what
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@features.command("materialize")
def materialize(
    start: str | None = typer.Argument(None, help="Start (ISO-8601, UTC when no zone); omit with --incremental."),
    end: str = typer.Argument("now", help="End (ISO-8601 or 'now')."),
    incremental: bool = typer.Option(False, "--incremental", "-i", help="From each view's last materialization."),
    view: list[str] = typer.Option([], "--view", "-v", help="Only these feature views (repeatable)."),  # noqa: B008
    project: str | None = ProjectOption,
    json: bool = JsonOption,
) -> None:
    """Copy the newest values per entity into the online store (SQLite or Redis)."""
    import plinth.features as pf

    if incremental:
        until = start if (end == "now" and start is not None) else end  # `materialize --incremental END`
        result = pf.materialize_incremental(_when(until, "end"), views=view or None, project=project)  # type: ignore[arg-type]
    else:
        result = pf.materialize(_when(start, "start"), _when(end, "end"), views=view or None, project=project)  # type: ignore[arg-type]
    if json:
        print_json(result)
        return
    show(
        result.writes,
        False,
        ["view", "view_version", "start_ts", "end_ts", "rows_read", "entities_written", "seconds"],
        title="materialized",
    )


@features.command("serve")
def serve(
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(6566, "--port"),
    repo: Path | None = typer.Option(None, "--repo", help="Load this repository's on-demand views."),  # noqa: B008
    no_auth: bool = typer.Option(False, "--no-auth", help="Turn authentication off (loopback only)."),
) -> None:
    """Run a standalone feature server: POST /features/online."""
    from plinth.core.settings import load_settings
    from plinth.features.server import serve_features

    serve_features(load_settings(), host=host, port=port, auth=not no_auth, repo=repo, echo=typer.echo)


def register(app: typer.Typer) -> None:
    app.add_typer(features, name="features")
