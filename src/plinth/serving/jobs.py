"""Batch inference jobs: the record of every ``predict_batch`` (queued, running, succeeded, failed),
and the server side of ``POST /api/v1/batch-jobs``.

Embedded, ``plinth.serving.predict_batch`` plans, records and runs a job in the calling process.
Through a server (``PLINTH_URI`` set) the same call submits the job: the server plans it as the
calling user (every check of the input runs before the request returns; a refused job writes
nothing, not even its record), then scores it in a background thread with that user's
permissions, while the client follows the job's state. Every change of state is an event; the
rows scored so far and a heartbeat are updated while it runs, so a job whose process died shows
as ``stale``.

>>> import plinth
>>> [j.state for j in plinth.serving.list_batch_jobs()]                     # doctest: +SKIP
['succeeded', 'failed']
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from plinth.core.context import Context
from plinth.core.errors import InvalidInput, PlinthError
from plinth.core.ids import new_id
from plinth.serving import schemas as s
from plinth.serving.tables import BatchJob, project_row

if TYPE_CHECKING:
    from plinth.core.platform import Caller
    from plinth.serving.batch import BatchPlan, BatchPrediction

log = logging.getLogger("plinth.serving.jobs")

HEARTBEAT_S = 5.0
STALE_AFTER = timedelta(seconds=60)  # no heartbeat for this long: the process running it is gone
MAX_LISTED = 1000
POLL_MAX_S = 0.25  # the client's longest wait between two looks at a running job
MAX_RUNNING = 2  # jobs a server process scores at once by default; the others stay queued (heartbeat on)
MAX_RUNNING_ENV = "PLINTH_BATCH_JOBS_MAX_RUNNING"


def max_running() -> int:
    """Jobs a server process scores at once: ``$PLINTH_BATCH_JOBS_MAX_RUNNING`` (1-64), else 2."""
    raw = os.environ.get(MAX_RUNNING_ENV, "").strip()
    if not raw:
        return MAX_RUNNING
    if not raw.isdigit() or not 1 <= int(raw) <= 64:
        raise InvalidInput(f"{MAX_RUNNING_ENV} must be a whole number from 1 to 64, got {raw!r}", field=MAX_RUNNING_ENV)
    return int(raw)


_slots: threading.BoundedSemaphore | None = None  # made on the first job this process runs
_slots_lock = threading.Lock()


def _job_slots() -> threading.BoundedSemaphore:
    global _slots
    with _slots_lock:
        if _slots is None:
            _slots = threading.BoundedSemaphore(max_running())
        return _slots


# --- the service: the one place that reads and writes job records ---------------------------------
def check_submission(ctx: Context, executor: str, trust: bool) -> None:
    """May the caller have the server run this job? (Before anything is loaded or written.)"""
    ctx.require("write")
    if trust:  # a format that runs code when loaded would run it in the server's process
        ctx.require("admin")
    if executor == "ray":
        raise InvalidInput(
            "executor 'ray' reads the table files itself: run it embedded (PLINTH_URI unset) where the "
            "table store is; the server's batch jobs run executor 'local'",
            field="executor",
        )


def record_job(
    ctx: Context,
    model: str,
    input: str,  # noqa: A002 - the word of the CLI option
    output: str,
    options: dict[str, Any],
    total_rows: int | None,
    trust: bool,
) -> s.BatchJobInfo:
    """Record a planned job as queued."""
    ctx.require("write")
    now = ctx.now()
    row = BatchJob(
        id=new_id(),
        project_id=ctx.project_id(),
        state="queued",
        model=model,
        input=input,
        output=output,
        output_version=None,
        options=options,
        rows=0,
        total_rows=total_rows,
        error="",
        error_code=None,
        runner=f"{socket.gethostname()}:{os.getpid()}"[:200],
        trust=bool(trust),
        seconds=None,
        created_at=now,
        created_by=ctx.actor.name,
        started_at=None,
        finished_at=None,
        heartbeat_at=now,
    )
    ctx.session.add(row)
    ctx.session.flush()
    ctx.emit("batch_job.create", _resource(row), {"model": model, "input": input, "output": output, **options})
    return _info(ctx, row)


def start_job(ctx: Context, id: str) -> s.BatchJobInfo:  # noqa: A002 - the route's word
    row = _owned(ctx, id)
    if row.state != "queued":
        raise InvalidInput(f"batch job {id} is {row.state}, not queued", field="id")
    row.state = "running"
    row.started_at = row.heartbeat_at = ctx.now()
    ctx.emit("batch_job.start", _resource(row), {"runner": row.runner})
    return _info(ctx, row)


def job_progress(ctx: Context, id: str, rows: int) -> None:  # noqa: A002
    """Rows scored so far, and a heartbeat. Not an event: it changes nothing but the count."""
    row = _owned(ctx, id)
    row.rows = int(rows)
    row.heartbeat_at = ctx.now()


def finish_job(
    ctx: Context,
    id: str,  # noqa: A002
    rows: int,
    seconds: float,
    output_version: str | None = None,
    error: str | None = None,
    error_code: str | None = None,
) -> s.BatchJobInfo:
    row = _owned(ctx, id)
    now = ctx.now()
    row.state = "failed" if error is not None else "succeeded"
    row.rows, row.seconds = int(rows), round(float(seconds), 3)
    row.output_version = output_version
    row.error, row.error_code = (error or "")[:5000], error_code
    row.finished_at = row.heartbeat_at = now
    summary: dict[str, Any] = {"rows": row.rows, "seconds": row.seconds}
    if error is not None:
        summary.update(error=row.error[:500], code=error_code)
    else:
        summary["output_version"] = output_version
    ctx.emit("batch_job.succeed" if error is None else "batch_job.fail", _resource(row), summary)
    return _info(ctx, row)


def list_jobs(ctx: Context, state: str | None = None, limit: int = 100) -> list[s.BatchJobInfo]:
    """The project's batch jobs, newest first."""
    ctx.require("read")
    if state is not None and state not in s.JOB_STATES:
        raise InvalidInput(f"state must be one of {', '.join(s.JOB_STATES)}, not {state!r}", field="state")
    if not isinstance(limit, int) or not 1 <= limit <= MAX_LISTED:
        raise InvalidInput(f"limit must be a whole number from 1 to {MAX_LISTED}", field="limit")
    query = select(BatchJob).where(BatchJob.project_id == ctx.project_id())
    if state is not None:
        query = query.where(BatchJob.state == state)
    rows = ctx.session.execute(query.order_by(BatchJob.created_at.desc(), BatchJob.id.desc()).limit(limit)).scalars()
    return [_info(ctx, row) for row in rows]


def close_stale_jobs(ctx: Context) -> list[s.BatchJobInfo]:
    """Mark failed the project's jobs whose runner stopped reporting (queued or running, no
    heartbeat for ``STALE_AFTER``): a server that died mid-job leaves them so. Admins only."""
    ctx.require("admin")
    now = ctx.now()
    rows = ctx.session.execute(
        select(BatchJob)
        .where(
            BatchJob.project_id == ctx.project_id(),
            BatchJob.state.in_(("queued", "running")),
            BatchJob.heartbeat_at < now - STALE_AFTER,
        )
        .order_by(BatchJob.created_at)
    ).scalars()
    closed = []
    for row in rows:
        row.state, row.error_code, row.finished_at = "failed", "stale", now
        row.error = (
            f"its runner {row.runner} stopped reporting at {row.heartbeat_at.isoformat(timespec='seconds')}; "
            f"closed by {ctx.actor.name}"
        )
        summary = {"rows": row.rows, "error": row.error[:500], "code": "stale"}
        ctx.emit("batch_job.fail", _resource(row), summary)
        closed.append(_info(ctx, row))
    return closed


def get_job(ctx: Context, id: str) -> s.BatchJobInfo:  # noqa: A002
    ctx.require("read")
    return _info(ctx, _get(ctx, id))


def _get(ctx: Context, id: str) -> BatchJob:  # noqa: A002
    return project_row(ctx, BatchJob, "batch job", "id", id)


def _owned(ctx: Context, id: str) -> BatchJob:  # noqa: A002
    """A job the caller may update: its own (the runner acts as the user who submitted it)."""
    ctx.require("write")
    row = _get(ctx, id)
    if row.created_by != ctx.actor.name:
        raise InvalidInput(
            f"batch job {id} was submitted by {row.created_by!r}; only its runner updates it", field="id"
        )
    return row


def _resource(row: BatchJob) -> str:
    return f"batch-jobs:/{row.id}"


def _info(ctx: Context, row: BatchJob) -> s.BatchJobInfo:
    options = row.options or {}
    stale = row.state in ("queued", "running") and ctx.now() - row.heartbeat_at > STALE_AFTER
    return s.BatchJobInfo(
        id=row.id,
        project=ctx.project,
        state=row.state,  # type: ignore[arg-type]
        stale=stale,
        model=row.model,
        input=row.input,
        output=row.output,
        output_version=row.output_version,
        executor=str(options.get("executor", "local")),
        workers=int(options.get("workers", 1)),
        batch_size=int(options.get("batch_size", 0)),
        keep_columns=options.get("keep_columns"),
        tags=options.get("tags"),
        rows=row.rows,
        total_rows=row.total_rows,
        error=row.error,
        error_code=row.error_code,
        runner=row.runner,
        created_at=row.created_at,
        created_by=row.created_by,
        started_at=row.started_at,
        finished_at=row.finished_at,
        heartbeat_at=row.heartbeat_at,
        seconds=row.seconds,
    )


# --- running a planned job -----------------------------------------------------------------------
class _Heartbeat:
    """Writes the rows scored so far and a heartbeat every ``HEARTBEAT_S`` from its own thread."""

    def __init__(self, backend: Any, project: str | None, job_id: str) -> None:
        self.backend, self.project, self.job_id = backend, project, job_id
        self.rows = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"plinth-job-{job_id}", daemon=True)

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            try:
                self.backend.call(None, job_progress, project=self.project, id=self.job_id, rows=self.rows)
            except Exception:  # a missed beat is not worth failing the job for
                log.warning("batch job %s: the heartbeat could not be written", self.job_id, exc_info=True)


def run_job(plan: BatchPlan, job: s.BatchJobInfo, progress: Any = None) -> BatchPrediction:
    """Run a recorded job through the current backend: running, then succeeded or failed."""
    from plinth.client.backend import LocalBackend, current_backend

    backend = current_backend()
    if not isinstance(backend, LocalBackend):  # remote: the server runs it (see submit_job)
        raise TypeError("a batch job runs where the stores are: embedded, or inside the server")
    project = plan.project
    started = time.perf_counter()
    heartbeat = _Heartbeat(backend, project, job.id)

    def rows_done(n: int) -> None:
        heartbeat.rows = n
        if progress is not None:
            progress(n)

    try:
        backend.call(None, start_job, project=project, id=job.id)
        with heartbeat:
            result = plan.run(progress=rows_done)
    except BaseException as exc:
        plan.close()
        if isinstance(exc, PlinthError):
            code, message = exc.code, exc.message
        elif isinstance(exc, KeyboardInterrupt):
            code, message = "interrupted", "interrupted before the output was written"
        else:
            code, message = "internal", f"{type(exc).__name__}: {exc}"
        try:
            backend.call(
                None,
                finish_job,
                project=project,
                id=job.id,
                rows=heartbeat.rows,
                seconds=time.perf_counter() - started,
                error=message,
                error_code=code,
            )
        except Exception:
            log.exception("batch job %s failed and its failure could not be recorded", job.id)
        raise
    backend.call(
        None,
        finish_job,
        project=project,
        id=job.id,
        rows=result.rows,
        seconds=result.seconds,
        output_version=result.output.ref,
    )
    return result


def submit_job(caller: Caller, request: s.BatchJobCreate) -> s.BatchJobInfo:
    """The server side of ``POST /api/v1/batch-jobs``: plan as the caller (refusals write nothing),
    record the job, score it in a background thread as the caller: at most ``MAX_RUNNING`` at
    once per server process, the others wait ``queued``."""
    from plinth.client.backend import CallerBackend, bound_backend
    from plinth.serving.batch import plan_batch

    caller.call(check_submission, executor=request.executor, trust=request.trust)
    slots = _job_slots()  # a bad PLINTH_BATCH_JOBS_MAX_RUNNING is refused before anything is written
    backend = CallerBackend(caller)
    with bound_backend(backend):
        plan = plan_batch(**request.model_dump())
        try:
            job = backend.call(None, record_job, project=None, **plan.record())
        except BaseException:
            plan.close()
            raise

    def work() -> None:
        with bound_backend(backend):
            while not slots.acquire(timeout=HEARTBEAT_S):  # queued behind running jobs: still alive
                try:
                    backend.call(None, job_progress, project=None, id=job.id, rows=0)
                except Exception:
                    log.warning("batch job %s: the heartbeat could not be written", job.id, exc_info=True)
            try:
                run_job(plan, job)
            except Exception as exc:  # recorded on the job; the server goes on
                log.info("batch job %s failed: %s", job.id, exc)
            finally:
                slots.release()

    threading.Thread(target=work, name=f"plinth-batch-{job.id}", daemon=True).start()
    return job


def follow_job(backend: Any, job: s.BatchJobInfo, project: str | None, progress: Any = None) -> s.BatchJobInfo:
    """Poll a submitted job until it is done (the remote SDK's side)."""
    delay = 0.05
    while not job.done:
        if job.stale:
            from plinth.core.errors import Unavailable

            raise Unavailable(
                f"batch job {job.id} stopped reporting (its runner {job.runner} last wrote at {job.heartbeat_at})"
            )
        time.sleep(delay)
        delay = min(delay * 2, POLL_MAX_S)
        job = backend.call(s.GET_JOB, get_job, project=project, id=job.id)
        if progress is not None and job.rows:
            progress(job.rows)
    return job
