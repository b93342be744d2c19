"""How every command prints: a rich table for people, ``--json`` for scripts, one-line errors."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

import typer

JsonOption = typer.Option(False, "--json", help="Print JSON for scripts instead of a table.")
ProjectOption = typer.Option(None, "--project", "-p", help="Project to act in (default: 'default').")


def _plain(value: Any) -> Any:
    from pydantic import BaseModel
    from pydantic_core import to_jsonable_python

    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return to_jsonable_python(value)


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(_plain(value), indent=2, default=str) + "\n")


def show(value: Any, as_json: bool, columns: Sequence[str] | None = None, title: str | None = None) -> None:
    """Print one object (as key/value lines) or a list (as a table of ``columns``)."""
    if as_json:
        print_json(value)
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    data = _plain(value)
    if isinstance(data, list):
        cols = list(columns or (data[0].keys() if data else []))
        table = Table(title=title, show_lines=False)
        for col in cols:
            table.add_column(col)
        for row in data:
            table.add_row(*[_cell(row.get(c)) for c in cols])
        if not data:
            console.print(f"[dim]no {title or 'rows'}[/dim]")
        else:
            console.print(table)
        return
    if isinstance(data, dict):
        keys = columns or list(data.keys())
        width = max((len(k) for k in keys), default=0)
        for k in keys:
            console.print(f"[bold]{k.ljust(width)}[/bold]  {_cell(data.get(k))}", highlight=False)
        return
    console.print(str(data))


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, default=str)
    return str(value)


def fail(message: str, code: int = 1) -> typer.Exit:
    sys.stderr.write(f"error: {message}\n")
    return typer.Exit(code)
