"""CLI of model packaging: inspect, predict, convert, and model cards (thin: SDK calls only)."""

from __future__ import annotations

from pathlib import Path

import typer

from plinth.cli.output import JsonOption, ProjectOption, show

models = typer.Typer(help="Models: inspect, predict with, convert, and print model cards.", no_args_is_help=True)
TrustOption = typer.Option(
    False, "--trust", help="Allow formats that run code when loaded (pickle, shipped code). Only for trusted models."
)


@models.command("inspect")
def inspect(uri: str, project: str | None = ProjectOption, json: bool = JsonOption) -> None:
    """Show a model's manifest: flavor, signature, requirements, files (nothing is loaded)."""
    from plinth.models import Manifest, fetch

    folder = fetch(uri, project=project) if ":/" in uri else Path(uri)
    manifest = Manifest.read_folder(folder)
    data = manifest.to_dict()
    if json:
        show(data, True)
        return
    show(
        {**data, "files": {k: v["size"] for k, v in data["files"].items()}},
        False,
        ["flavor", "flavor_options", "signature", "requirements", "metadata", "created_at", "files"],
    )


def _read_input(path: Path) -> object:
    import pandas as pd

    from plinth.cli.output import fail

    suffix = path.suffix.lower()
    if suffix == ".csv":
        return pd.read_csv(path)
    if suffix in {".parquet", ".pq"}:
        return pd.read_parquet(path)
    if suffix in {".json", ".jsonl"}:
        import json as _json

        if suffix == ".jsonl":
            return [_json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        return _json.loads(path.read_text())
    raise fail(f"{path}: give a .csv, .parquet, .json or .jsonl file", 2)


@models.command("predict")
def predict(
    uri: str,
    input: Path = typer.Option(..., "--input", "-i", help="A .csv, .parquet, .json (list of rows) or .jsonl file."),
    proba: bool = typer.Option(False, "--proba", help="Class probabilities instead of predictions."),
    trust: bool = TrustOption,
    project: str | None = ProjectOption,
    json: bool = JsonOption,
) -> None:
    """Load a model and predict on a file; the input is checked against the signature."""
    import numpy as np
    import pandas as pd

    from plinth.models import load

    model = load(uri, trust=trust, project=project)
    data = _read_input(input)
    result = model.predict_proba(data) if proba else model.predict(data)
    frame = result if isinstance(result, pd.DataFrame) else pd.DataFrame(np.asarray(result).reshape(len(result), -1))
    if json:
        show(frame.to_dict(orient="records"), True)
    else:
        typer.echo(frame.to_csv(index=False), nl=False)


@models.command("convert")
def convert(
    uri: str,
    to: str = typer.Option("onnx", "--to", help="The target format (onnx)."),
    name: str | None = typer.Option(None, "--name", help="Register under this model (default: the source's)."),
    force: bool = typer.Option(False, "--force", help="Register even if the equivalence check fails."),
    trust: bool = TrustOption,
    project: str | None = ProjectOption,
    json: bool = JsonOption,
) -> None:
    """Convert a scikit-learn model to ONNX, check it agrees, and register it beside the source."""
    from plinth.models import convert as _convert

    result = _convert(uri, to, name=name, force=force, trust=trust, project=project)
    out = {
        "source": result.source,
        "uri": result.uri,
        "run_id": result.run_id,
        "check": result.check,
        "registered": result.registered.uri if result.registered else None,
    }
    show(out, json)


def _card_ref(target: str) -> tuple[str, str | None]:
    text = target.removeprefix("models:/")
    if "@" in text:
        name, ref = text.split("@", 1)
        return name, ref
    if "/" in text:
        name, ref = text.split("/", 1)
        return name, ref
    return text, None


@models.command("card")
def card(
    target: str = typer.Argument(..., help="NAME, NAME@ALIAS or NAME/VERSION (production or latest by default)"),
    format: str = typer.Option("md", "--format", "-f", help="md or html"),
    out: Path | None = typer.Option(None, "--out", "-o", help="Write to this file instead of standard output."),
    project: str | None = ProjectOption,
) -> None:
    """Print a model card, generated from the registry plus the fields people wrote."""
    from plinth.registry import render_card

    name, ref = _card_ref(target)
    text = render_card(name, ref, format=format, project=project)
    if out is None:
        typer.echo(text)
    else:
        out.write_text(text)
        typer.echo(f"wrote {out}")


def register(app: typer.Typer) -> None:
    app.add_typer(models, name="models")
