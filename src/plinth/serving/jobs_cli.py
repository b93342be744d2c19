"""CLI of inference jobs: ``plinth predict`` (batch, dataset to dataset) and ``plinth stream``
(a Redis Stream to a Redis Stream), and what they left on the platform: ``plinth batch-jobs``
and ``plinth stream-workers``. Thin: each one SDK call."""

from __future__ import annotations

import os
import signal
import socket
import sys
from typing import Any

import typer

from plinth.cli.output import JsonOption, ProjectOption, print_json, show

JOB_COLS = ["id", "state", "model", "input", "output_version", "rows", "seconds", "created_by", "created_at"]
WORKER_COLS = ["consumer", "group", "state", "model", "consumed", "acked", "dead", "reclaimed", "heartbeat_at"]


def predict(
    model: str = typer.Option(..., "--model", "-m", help="models:/<name>/<version>, models:/<name>@<alias> or runs:/"),
    input: str = typer.Option(..., "--input", "-i", help="Dataset version to score: datasets:/<name>@<version|tag>."),  # noqa: A002
    output: str = typer.Option(..., "--output", "-o", help="The dataset the predictions become the next version of."),
    executor: str = typer.Option("local", "--executor", help="local (processes) or ray (Ray Data)."),
    workers: int = typer.Option(
        1, "--workers", "-w", min=1, help="Processes (local) or actors (ray), each loads once."
    ),
    batch_size: int = typer.Option(65_536, "--batch-size", min=1, help="Rows per model call."),
    keep_columns: str | None = typer.Option(
        None,
        "--keep-columns",
        help="Input columns copied to the output: all, none, or a comma-separated list "
        "(default: the columns the model does not read).",
    ),
    tag: list[str] = typer.Option([], "--tag", "-t", help="Tag the output version (repeatable)."),  # noqa: B008
    trust: bool = typer.Option(False, "--trust", help="Allow formats that run code when loaded. Trusted models only."),
    project: str | None = ProjectOption,
    json: bool = JsonOption,
) -> None:
    """Score a dataset version with a model: the predictions become a new dataset version, with lineage."""
    import plinth

    options: dict[str, Any] = {
        "executor": executor,
        "workers": workers,
        "batch_size": batch_size,
        "keep_columns": keep_columns,
        "tags": tag or None,
        "trust": trust,
        "project": project,
    }
    if json or not sys.stderr.isatty():
        result = plinth.serving.predict_batch(model, input, output, **options)
    else:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        total = plinth.data.get_version(input, project=project).row_count
        columns = [TextColumn("[bold]scoring {task.description}"), BarColumn(), MofNCompleteColumn()]
        with Progress(*columns, TimeElapsedColumn(), transient=True, console=Console(stderr=True)) as bar:
            task = bar.add_task(input, total=total)
            result = plinth.serving.predict_batch(
                model, input, output, progress=lambda n: bar.update(task, completed=n), **options
            )
    if json:
        print_json(result)
        return
    typer.echo(
        f"{result.output.ref}: {result.rows:,} rows scored by {result.model} from {result.input} "
        f"({result.seconds:.1f} s, {result.rows_per_second:,.0f} rows/s)"
    )


def stream(
    model: str = typer.Option(..., "--model", "-m", help="models:/<name>/<version>, models:/<name>@<alias> or runs:/"),
    source: str = typer.Option(..., "--source", help="redis://host:port[/db]/<stream key> to read entries from."),
    sink: str = typer.Option(..., "--sink", help="redis://host:port[/db]/<stream key> to write results to."),
    group: str = typer.Option("plinth", "--group", help="Consumer group on the source stream (created if missing)."),
    consumer: str | None = typer.Option(None, "--consumer", help="This consumer's name (default: host-pid)."),
    batch_size: int = typer.Option(64, "--batch-size", min=1, help="Most entries per model call."),
    block_ms: int = typer.Option(1000, "--block-ms", min=1, help="Longest wait for new entries per read."),
    claim_idle_ms: int = typer.Option(
        30_000, "--claim-idle-ms", min=0, help="Reclaim entries other consumers left pending this long."
    ),
    max_entries: int | None = typer.Option(None, "--max-entries", min=1, help="Stop after this many entries."),
    dead_letter: str | None = typer.Option(
        None, "--dead-letter", help="Stream key for malformed entries (default: <sink key>:dead)."
    ),
    trust: bool = typer.Option(False, "--trust", help="Allow formats that run code when loaded. Trusted models only."),
    project: str | None = ProjectOption,
    json: bool = JsonOption,
) -> None:
    """Predict on a Redis Stream in micro-batches; at-least-once, acknowledged after the results are written."""
    from plinth.serving.stream import StreamWorker

    worker = StreamWorker(
        model,
        source,
        sink,
        group=group,
        consumer=consumer or f"{socket.gethostname()}-{os.getpid()}",
        batch_size=batch_size,
        block_ms=block_ms,
        claim_idle_ms=claim_idle_ms,
        dead_letter=dead_letter,
        trust=trust,
        project=project,
    )
    for signum in (signal.SIGTERM, signal.SIGINT):  # finish the batch in hand, then stop
        signal.signal(signum, lambda *_: worker.stop())
    try:
        stats = worker.run(max_entries=max_entries)
    except KeyboardInterrupt:
        stats = worker.stats
    finally:
        worker.close()
    if json:
        print_json(stats)
        return
    typer.echo(
        f"{stats.entries} entries: {stats.predicted} predicted, {stats.dead} to the dead-letter stream, "
        f"{stats.reclaimed} reclaimed"
    )


def batch_jobs(
    job_id: str | None = typer.Argument(None, help="Show this job (default: list them, newest first)."),
    state: str | None = typer.Option(
        None, "--state", help="Only jobs in this state: queued, running, succeeded, failed."
    ),
    limit: int = typer.Option(50, "--limit", min=1, max=1000, help="Most jobs listed."),
    close_stale: bool = typer.Option(
        False, "--close-stale", help="Mark failed the jobs whose runner stopped reporting (admins)."
    ),
    project: str | None = ProjectOption,
    json: bool = JsonOption,
) -> None:
    """Batch inference jobs: state, model and input versions, output version, rows, error, timings."""
    import plinth

    if close_stale:
        closed = plinth.serving.close_stale_batch_jobs(project=project)
        show(closed, json, JOB_COLS, title=f"{len(closed)} stale batch jobs closed")
        return
    if job_id is not None:
        show(plinth.serving.get_batch_job(job_id, project=project), json)
        return
    show(plinth.serving.list_batch_jobs(state=state, limit=limit, project=project), json, JOB_COLS, title="batch jobs")


def stream_workers(
    worker_id: str | None = typer.Argument(None, help="Show this worker (default: list them)."),
    project: str | None = ProjectOption,
    json: bool = JsonOption,
) -> None:
    """Streaming inference workers: what each consumes, its counts, state and last heartbeat."""
    import plinth

    if worker_id is not None:
        show(plinth.serving.get_stream_worker(worker_id, project=project), json)
        return
    show(plinth.serving.list_stream_workers(project=project), json, WORKER_COLS, title="stream workers")


def register(app: typer.Typer) -> None:
    app.command("predict")(predict)
    app.command("stream")(stream)
    app.command("batch-jobs")(batch_jobs)
    app.command("stream-workers")(stream_workers)
