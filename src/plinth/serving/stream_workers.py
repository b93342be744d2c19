"""Streaming workers made visible: each ``plinth stream`` consumer registers itself when it starts,
reports its counts (consumed, acknowledged, predicted, dead-lettered, reclaimed) and a heartbeat
while it runs, and its end (stopped, or failed with the reason). REST and the serving page show
them; a running worker that stopped reporting shows as ``stale``.

A consumer is one (source stream, group, consumer name) in a project: a worker restarted under
the same name takes its record over, with fresh counts.

>>> import plinth
>>> [(w.consumer, w.state, w.acked) for w in plinth.serving.list_stream_workers()]   # doctest: +SKIP
[('scorer-1', 'running', 1200)]
"""

from __future__ import annotations

import os
import socket
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import select

from plinth.core.context import Context
from plinth.core.errors import InvalidInput
from plinth.core.ids import new_id
from plinth.serving import schemas as s
from plinth.serving.tables import StreamWorkerRecord, project_row

HEARTBEAT_S = 5.0
STALE_AFTER = timedelta(seconds=60)


def public_url(url: str) -> str:
    """A stream URL without its credentials (they never reach the metadata store)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _name(value: object, what: str, limit: int) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise InvalidInput(f"{what} must be a non-empty name of at most {limit} characters", field=what)
    return value


def register_worker(ctx: Context, source: str, group: str, consumer: str, sink: str, model: str) -> s.StreamWorkerInfo:
    """A worker starts: its record (new, or taken over by a restart under the same name), running."""
    ctx.require("write")
    source, sink = public_url(_name(source, "source", 1000)), public_url(_name(sink, "sink", 1000))
    group, consumer = _name(group, "group", 200), _name(consumer, "consumer", 200)
    now = ctx.now()
    row = ctx.session.execute(
        select(StreamWorkerRecord).where(
            StreamWorkerRecord.project_id == ctx.project_id(),
            StreamWorkerRecord.source == source,
            StreamWorkerRecord.group == group,
            StreamWorkerRecord.consumer == consumer,
        )
    ).scalar()
    if row is None:
        row = StreamWorkerRecord(
            id=new_id(), project_id=ctx.project_id(), source=source, group=group, consumer=consumer
        )
        ctx.session.add(row)
    row.sink, row.model = sink, _name(model, "model", 1100)
    row.state, row.error = "running", ""
    row.runner = f"{socket.gethostname()}:{os.getpid()}"[:200]
    row.counts = dict.fromkeys(s.COUNTS, 0)
    row.created_by = ctx.actor.name
    row.started_at = row.heartbeat_at = now
    row.stopped_at = None
    ctx.session.flush()
    ctx.emit(
        "stream_worker.start",
        _resource(row),
        {"source": source, "group": group, "consumer": consumer, "sink": sink, "model": row.model},
    )
    return _info(ctx, row)


def report_worker(
    ctx: Context,
    id: str,  # noqa: A002 - the route's word
    counts: dict[str, int],
    state: str = "running",
    error: str | None = None,
) -> s.StreamWorkerInfo:
    """Counts and a heartbeat; ``state`` stopped or failed ends the run (an event)."""
    ctx.require("write")
    row = _get(ctx, id)
    if row.created_by != ctx.actor.name:
        raise InvalidInput(f"stream worker {id} was registered by {row.created_by!r}; only it reports", field="id")
    if state not in s.WORKER_STATES:
        raise InvalidInput(f"state must be one of {', '.join(s.WORKER_STATES)}, not {state!r}", field="state")
    unknown = sorted(set(counts) - set(s.COUNTS))
    if unknown or any(not isinstance(v, int) or isinstance(v, bool) or v < 0 for v in counts.values()):
        raise InvalidInput(
            f"counts must be whole numbers of {', '.join(s.COUNTS)}" + (f", not {unknown[0]!r}" if unknown else ""),
            field="counts",
        )
    if row.state != "running":
        raise InvalidInput(f"stream worker {id} is {row.state}: it registers again when it restarts", field="id")
    now = ctx.now()
    row.counts = {**dict.fromkeys(s.COUNTS, 0), **counts}
    row.heartbeat_at = now
    if state != "running":
        row.state, row.error, row.stopped_at = state, (error or "")[:5000], now
        summary: dict[str, Any] = dict(row.counts)
        if error:
            summary["error"] = row.error[:500]
        ctx.emit(f"stream_worker.{'stop' if state == 'stopped' else 'fail'}", _resource(row), summary)
    return _info(ctx, row)


def list_workers(ctx: Context) -> list[s.StreamWorkerInfo]:
    """The project's streaming workers, the most recently started first."""
    ctx.require("read")
    rows = ctx.session.execute(
        select(StreamWorkerRecord)
        .where(StreamWorkerRecord.project_id == ctx.project_id())
        .order_by(StreamWorkerRecord.started_at.desc(), StreamWorkerRecord.id.desc())
    ).scalars()
    return [_info(ctx, row) for row in rows]


def get_worker(ctx: Context, id: str) -> s.StreamWorkerInfo:  # noqa: A002
    ctx.require("read")
    return _info(ctx, _get(ctx, id))


def _get(ctx: Context, id: str) -> StreamWorkerRecord:  # noqa: A002
    return project_row(ctx, StreamWorkerRecord, "stream worker", "id", id)


def _resource(row: StreamWorkerRecord) -> str:
    return f"stream-workers:/{row.id}"


def _info(ctx: Context, row: StreamWorkerRecord) -> s.StreamWorkerInfo:
    counts = {**dict.fromkeys(s.COUNTS, 0), **(row.counts or {})}
    return s.StreamWorkerInfo(
        id=row.id,
        project=ctx.project,
        source=row.source,
        group=row.group,
        consumer=row.consumer,
        sink=row.sink,
        model=row.model,
        state=row.state,  # type: ignore[arg-type]
        stale=row.state == "running" and ctx.now() - row.heartbeat_at > STALE_AFTER,
        runner=row.runner,
        error=row.error,
        created_by=row.created_by,
        started_at=row.started_at,
        heartbeat_at=row.heartbeat_at,
        stopped_at=row.stopped_at,
        **counts,
    )
