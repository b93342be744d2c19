"""CLI of the artifacts area."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from plinth.cli.output import JsonOption, ProjectOption, show

artifacts = typer.Typer(help="Artifacts: named files owned by runs, models and other resources.", no_args_is_help=True)
COLS = ["owner", "name", "size", "sha256", "media_type", "created_at"]


@artifacts.command("upload")
def upload(
    owner: str = typer.Argument(..., help="Owning resource, e.g. runs:/<id>"),
    name: str = typer.Argument(..., help="Artifact name, e.g. model/weights.bin"),
    path: Path = typer.Argument(..., help="Local file to upload"),
    project: str | None = ProjectOption,
    json: bool = JsonOption,
) -> None:
    """Upload a file as an artifact (streamed; verified by sha256)."""
    from plinth.artifacts import upload_artifact

    show(upload_artifact(owner, name, path, project=project), json, COLS)


@artifacts.command("list")
def list_(
    owner: str,
    prefix: str | None = typer.Option(None, "--prefix"),
    project: str | None = ProjectOption,
    json: bool = JsonOption,
) -> None:
    from plinth.artifacts import list_artifacts

    show(list_artifacts(owner, prefix=prefix, project=project), json, COLS, title="artifacts")


@artifacts.command("download")
def download(
    owner: str,
    name: str,
    out: Path | None = typer.Option(None, "--out", "-o", help="Write here instead of standard output."),
    project: str | None = ProjectOption,
) -> None:
    """Download an artifact; its sha256 is verified as it streams."""
    from plinth.artifacts import download_artifact

    if out is None:
        for chunk in download_artifact(owner, name, project=project):
            sys.stdout.buffer.write(chunk)
        return
    tmp = out.with_name(out.name + ".part")
    try:
        with tmp.open("wb") as fh:
            for chunk in download_artifact(owner, name, project=project):
                fh.write(chunk)
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    typer.echo(f"wrote {out}")


def register(app: typer.Typer) -> None:
    app.add_typer(artifacts, name="artifacts")
