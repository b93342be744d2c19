"""CLI of the data area: ``plinth data ingest|list|show|versions|tag|profile|validate|diff``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

from plinth.cli.output import JsonOption, ProjectOption, print_json, show

data = typer.Typer(
    help="Datasets: versioned tables, profiles, data quality checks and lineage.",
    no_args_is_help=True,
)
VERSION_COLS = [
    "version",
    "row_count",
    "rows_written",
    "mode",
    "tags",
    "quality",
    "source",
    "created_at",
    "created_by",
]


def _ingest_with_progress(name: str, source: str, json: bool, **options: Any) -> Any:
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    import plinth
    from plinth.client.backend import current_backend

    path = Path(source)
    upload = current_backend().remote and path.is_file()
    if json or not sys.stderr.isatty():
        return plinth.data.ingest(name, source, **options)
    columns: list[Any] = [SpinnerColumn(), TextColumn("[bold]{task.description}")]
    if upload:
        columns += [BarColumn(), DownloadColumn()]
    else:
        columns += [TextColumn("{task.completed:,.0f} rows")]
    columns.append(TimeElapsedColumn())
    with Progress(*columns, transient=True, console=_stderr()) as progress:
        task = progress.add_task(
            f"uploading {path.name}" if upload else f"ingesting into {name}",
            total=path.stat().st_size if upload else None,
        )
        return plinth.data.ingest(
            name, source, progress=lambda n: progress.update(task, completed=n), **options
        )


def _stderr() -> Any:
    from rich.console import Console

    return Console(stderr=True)


@data.command("ingest")
def ingest(
    name: str = typer.Argument(..., help="Dataset name (created on first ingest)."),
    source: str = typer.Argument(
        ..., help="A CSV, Parquet, JSON lines or Arrow file, or a folder of them."
    ),
    mode: str = typer.Option("append", "--mode", help="append or overwrite"),
    tag: list[str] = typer.Option([], "--tag", "-t", help="Tag the new version (repeatable)."),  # noqa: B008
    allow_breaking: bool = typer.Option(
        False, "--allow-breaking", help="Accept dropped columns and type changes."
    ),
    on_bad_lines: str = typer.Option(
        "error", "--on-bad-lines", help="error, or quarantine (CSV: set bad rows aside)"
    ),
    suite: Path | None = typer.Option(  # noqa: B008
        None, "--suite", help="Expectation suite (YAML) to validate the new version."
    ),
    on_failure: str = typer.Option("reject", "--on-failure", help="reject (write nothing) or warn"),
    format: str | None = typer.Option(
        None, "--format", help="csv, tsv, parquet, jsonl or arrow (default: by extension)"
    ),
    description: str | None = typer.Option(None, "--description"),
    run_id: str | None = typer.Option(
        None, "--run-id", help="Record the run that wrote this version."
    ),
    no_profile: bool = typer.Option(False, "--no-profile", help="Skip the profile."),
    project: str | None = ProjectOption,
    json: bool = JsonOption,
) -> None:
    """Write a file or folder as the next version of a dataset (progress on stderr)."""
    result = _ingest_with_progress(
        name,
        source,
        json,
        mode=mode,
        tags=tag or None,
        allow_breaking=allow_breaking,
        on_bad_lines=on_bad_lines,
        expectations=str(suite) if suite else None,
        on_failure=on_failure,
        format=format,
        description=description,
        run_id=run_id,
        profile=not no_profile,
        project=project,
    )
    if json:
        print_json(result)
        return
    v = result.version
    typer.echo(
        f"{v.ref}: {v.rows_written:,} rows written, {v.row_count:,} in the table "
        f"({result.seconds:.1f} s)"
    )
    for change in v.schema_changes:
        typer.echo(f"  schema: {change}")
    if result.quarantined:
        typer.echo(f"  {result.quarantined} bad rows quarantined (plinth data quarantine {name})")
    if result.validation is not None:
        verdict = "passed" if result.validation.success else "FAILED"
        typer.echo(f"  suite {result.validation.suite!r} {verdict}")


@data.command("list")
def list_(project: str | None = ProjectOption, json: bool = JsonOption) -> None:
    """List the datasets of a project."""
    import plinth

    show(
        plinth.data.list_datasets(project=project),
        json,
        ["name", "latest_version", "description", "updated_at"],
        title="datasets",
    )


@data.command("show")
def show_(name: str, project: str | None = ProjectOption, json: bool = JsonOption) -> None:
    """A dataset, its latest version's schema and its tags."""
    import plinth

    detail = plinth.data.get_dataset(name, project=project)
    if json:
        print_json(detail)
        return
    show(
        detail.dataset,
        False,
        ["name", "description", "latest_version", "created_at", "created_by", "location"],
    )
    if detail.tags:
        typer.echo("tags: " + ", ".join(f"{t}={v}" for t, v in detail.tags.items()))
    if detail.latest is not None:
        show(
            [c.model_dump() for c in detail.latest.columns],
            False,
            ["name", "type", "nullable"],
            title=f"schema of {detail.latest.ref}",
        )


@data.command("versions")
def versions(name: str, project: str | None = ProjectOption, json: bool = JsonOption) -> None:
    """Versions of a dataset, newest first."""
    import plinth

    show(
        plinth.data.list_versions(name, project=project),
        json,
        VERSION_COLS,
        title=f"versions of {name}",
    )


@data.command("tag")
def tag(
    name: str,
    tag_name: str = typer.Argument(..., metavar="TAG"),
    version: int | None = typer.Option(
        None, "--version", "-v", help="Version to tag (default: latest)."
    ),
    force: bool = typer.Option(False, "--force", help="Move the tag if it pins another version."),
    project: str | None = ProjectOption,
    json: bool = JsonOption,
) -> None:
    """Pin a tag to a version."""
    import plinth

    info = plinth.data.tag(name, tag_name, version=version, force=force, project=project)
    show(info, json, ["ref", "tags", "row_count"])


@data.command("profile")
def profile(
    ref: str = typer.Argument(..., help="datasets:/NAME@VERSION|TAG, or NAME"),
    refresh: bool = typer.Option(False, "--refresh", help="Compute again even if stored."),
    project: str | None = ProjectOption,
    json: bool = JsonOption,
) -> None:
    """The profile of a version: per column type, nulls, distinct, min/max/mean/std."""
    import plinth

    p = plinth.data.profile(ref, refresh=refresh, project=project)
    if json:
        print_json(p)
        return
    typer.echo(f"{p.dataset} version {p.version}: {p.row_count:,} rows")
    rows = []
    for c in p.columns:
        rows.append(
            {
                "column": c.name,
                "type": c.type,
                "nulls": f"{c.null_share:.1%}",
                "distinct": c.distinct,
                "min": c.min,
                "max": c.max,
                "mean": None if c.mean is None else f"{c.mean:.4g}",
                "std": None if c.std is None else f"{c.std:.4g}",
                "top": ", ".join(f"{t.value} ({t.count})" for t in (c.top or [])[:3]),
            }
        )
    show(
        rows,
        False,
        ["column", "type", "nulls", "distinct", "min", "max", "mean", "std", "top"],
        title="columns",
    )


@data.command("validate")
def validate(
    ref: str,
    suite: Path = typer.Argument(..., help="Expectation suite, YAML."),  # noqa: B008
    project: str | None = ProjectOption,
    json: bool = JsonOption,
) -> None:
    """Validate a version against a suite; the result is stored. Exit code 1 if it fails."""
    import plinth

    result = plinth.data.validate(ref, str(suite), project=project)
    if json:
        print_json(result)
    else:
        rows = [
            {
                "expectation": r.label,
                "ok": "yes" if r.success else "NO",
                "observed": r.observed,
                "message": r.message,
            }
            for r in result.results
        ]
        show(
            rows,
            False,
            ["expectation", "ok", "observed", "message"],
            title=f"suite {result.suite!r} on {result.dataset} v{result.version}",
        )
    if not result.success:
        raise typer.Exit(1)


@data.command("diff")
def diff(a: str, b: str, project: str | None = ProjectOption, json: bool = JsonOption) -> None:
    """Schema and row-count changes between two versions (NAME@a NAME@b)."""
    import plinth

    d = plinth.data.diff(a, b, project=project)
    if json:
        print_json(d)
        return
    typer.echo(
        f"{d.a} -> {d.b}: rows {d.row_count_a:,} -> {d.row_count_b:,} ({d.row_count_change:+,})"
    )
    if not d.schema_changes:
        typer.echo("schema: unchanged")
    for c in d.schema_changes:
        typer.echo(f"schema: {c}{' (breaking)' if c.breaking else ''}")


@data.command("read")
def read(
    ref: str,
    columns: str | None = typer.Option(None, "--columns", "-c", help="Comma-separated columns."),
    limit: int = typer.Option(20, "--limit", "-n", help="Rows to print (0: all)."),
    out: Path | None = typer.Option(  # noqa: B008
        None, "--out", "-o", help="Write all rows to .parquet or .csv instead."
    ),
    run_id: str | None = typer.Option(
        None, "--run-id", help="Record this read as an input of a run."
    ),
    project: str | None = ProjectOption,
    json: bool = JsonOption,
) -> None:
    """Print (or write to a file) the rows of a version."""
    import plinth

    cols = [c.strip() for c in columns.split(",")] if columns else None
    reader = plinth.data.read_batches(ref, columns=cols, run_id=run_id, project=project)
    if out is not None:
        _write_out(reader, out)
        return
    rows: list[dict[str, Any]] = []
    for batch in reader:
        rows.extend(batch.to_pylist())
        if limit and len(rows) >= limit:
            rows = rows[:limit]
            break
    show(rows, json, list(reader.schema.names), title=ref)


def _write_out(reader: Any, out: Path) -> None:
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    suffix = out.suffix.lower()
    if suffix not in {".parquet", ".csv"}:
        raise typer.BadParameter("--out must end in .parquet or .csv")
    tmp = out.with_name(out.name + ".part")
    rows = 0
    try:
        writer: Any = (
            pq.ParquetWriter(tmp, reader.schema)
            if suffix == ".parquet"
            else pcsv.CSVWriter(tmp, reader.schema)
        )
        with writer:
            for batch in reader:
                writer.write_batch(batch)
                rows += batch.num_rows
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    typer.echo(f"wrote {rows:,} rows to {out}")


@data.command("quarantine")
def quarantine(name: str, project: str | None = ProjectOption, json: bool = JsonOption) -> None:
    """Rows that ingests set aside (--on-bad-lines quarantine)."""
    import plinth

    show(
        plinth.data.quarantine(name, project=project).to_pylist(),
        json,
        ["version", "file", "line", "error", "raw"],
        title="quarantined rows",
    )


@data.command("lineage")
def lineage(
    ref: str,
    direction: str = typer.Option("both", "--direction", help="upstream, downstream or both"),
    project: str | None = ProjectOption,
    json: bool = JsonOption,
) -> None:
    """What a dataset version was made from and what used it."""
    import plinth

    graph = plinth.data.lineage(ref, direction=direction, project=project)  # type: ignore[arg-type]
    if json:
        print_json(graph)
        return
    show(graph.edges, False, ["src", "kind", "dst", "created_at"], title=f"lineage of {graph.ref}")


def register(app: typer.Typer) -> None:
    app.add_typer(data, name="data")
