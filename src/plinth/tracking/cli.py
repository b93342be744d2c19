"""CLI of the tracking area: ``plinth experiments …`` and ``plinth runs …`` (SDK calls only)."""

from __future__ import annotations

from typing import Any

import typer

from plinth.cli.output import JsonOption, ProjectOption, print_json, show

experiments = typer.Typer(help="Experiments: named groups of runs.", no_args_is_help=True)
runs = typer.Typer(help="Runs: list, show, compare, delete.", no_args_is_help=True)

EXPERIMENT_COLS = ["name", "run_count", "last_run_at", "description", "created_by", "created_at"]
RUN_COLS = ["run_id", "name", "status", "start_time"]
MAX_METRIC_COLUMNS = 6


@experiments.command("list")
def experiments_list(project: str | None = ProjectOption, json: bool = JsonOption) -> None:
    """List the project's experiments with their run counts."""
    from plinth.tracking import list_experiments

    show(list_experiments(project=project), json, EXPERIMENT_COLS, title="experiments")


@experiments.command("create")
def experiments_create(
    name: str,
    description: str = typer.Option("", "--description", "-d"),
    project: str | None = ProjectOption,
    json: bool = JsonOption,
) -> None:
    """Create an experiment."""
    from plinth.tracking import create_experiment

    show(create_experiment(name, description, project=project), json, EXPERIMENT_COLS)


@experiments.command("show")
def experiments_show(name: str, project: str | None = ProjectOption, json: bool = JsonOption) -> None:
    from plinth.tracking import get_experiment

    show(get_experiment(name, project=project), json)


@runs.command("list")
def runs_list(
    experiment: list[str] | None = typer.Option(None, "--experiment", "-e", help="Only these experiments."),
    filter: str | None = typer.Option(
        None, "--filter", "-f", help="e.g. \"metrics.auc > 0.9 and params.model = 'rf'\""
    ),
    order_by: list[str] | None = typer.Option(None, "--order-by", "-o", help="e.g. 'metrics.auc desc'"),
    max_results: int = typer.Option(100, "--max-results", "-n"),
    project: str | None = ProjectOption,
    json: bool = JsonOption,
) -> None:
    """Search runs; the newest first unless --order-by says otherwise."""
    from plinth.tracking import search_runs

    table = search_runs(
        experiment or None, filter, order_by or None, max_results=max_results, project=project, output="table"
    )
    rows = list(table.rows())
    if json:
        print_json(rows)
        return
    metric_keys = sorted(table.metrics)[:MAX_METRIC_COLUMNS]
    flat: list[dict[str, Any]] = [
        {**{c: row[c] for c in RUN_COLS}, **{f"metrics.{k}": _num(row["metrics"].get(k)) for k in metric_keys}}
        for row in rows
    ]
    show(flat, False, RUN_COLS + [f"metrics.{k}" for k in metric_keys], title="runs")


def _num(value: Any) -> Any:
    return f"{value:.6g}" if isinstance(value, float) else value


@runs.command("show")
def runs_show(run_id: str, json: bool = JsonOption) -> None:
    """A run: its status, params, tags and latest metrics."""
    from plinth.tracking import get_run

    run = get_run(run_id)
    if json:
        print_json(run)
        return
    show(run.model_dump(exclude={"params", "tags", "metrics"}), False)
    for title, values in (
        ("params", run.params),
        ("metrics", {k: f"{m.value:.6g} (step {m.step})" for k, m in run.metrics.items()}),
        ("tags", run.tags),
    ):
        if values:
            typer.echo(f"\n{title}:")
            width = max(len(k) for k in values)
            for key in sorted(values):
                typer.echo(f"  {key.ljust(width)}  {values[key]}")


@runs.command("compare")
def runs_compare(
    run_ids: list[str] = typer.Argument(..., help="Two or more run ids."),
    json: bool = JsonOption,
) -> None:
    """Params (those that differ marked with *) and latest metrics side by side."""
    from plinth.tracking import compare_runs

    cmp = compare_runs(run_ids)
    if json:
        print_json(cmp)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="compare")
    table.add_column("")
    for run in cmp.runs:
        table.add_column(f"{run.name}\n{run.id}")
    for key, by_run in cmp.params.items():
        mark = " *" if key in cmp.params_differ else ""
        table.add_row(f"params.{key}{mark}", *[by_run.get(r.id) or "" for r in cmp.runs])
    for key, by_run in cmp.metrics.items():
        table.add_row(f"metrics.{key}", *[str(_num(by_run.get(r.id)) or "") for r in cmp.runs])
    Console().print(table)


@runs.command("history")
def runs_history(run_id: str, key: str, json: bool = JsonOption) -> None:
    """Every point of one metric of a run."""
    from plinth.tracking import get_metric_history

    history = get_metric_history(run_id, key)
    if json:
        print_json(history)
        return
    show(
        [
            {"step": st, "timestamp": ts, "value": v}
            for st, ts, v in zip(history.steps, history.timestamps, history.values, strict=True)
        ],
        False,
        ["step", "timestamp", "value"],
        title=f"{key} of {run_id}",
    )


@runs.command("delete")
def runs_delete(run_id: str, json: bool = JsonOption) -> None:
    """Hide a run from lists and searches (its data stays)."""
    from plinth.tracking import delete_run

    delete_run(run_id)
    if json:
        print_json({"run_id": run_id, "deleted": True})
    else:
        typer.echo(f"deleted run {run_id}")


def register(app: typer.Typer) -> None:
    app.add_typer(experiments, name="experiments")
    app.add_typer(runs, name="runs")
