"""Experiment tracking: experiments, runs, params, tags and metrics — the rules, in one place.

* A run lives in one project; calls that name a run act in the run's project, and the
  caller needs ``read`` there to look, ``write`` to change it.
* Params are immutable once logged (the same value again is fine). Tags may change.
* Metric points arrive in batches: one bulk insert into the history and one upsert of
  ``latest_metrics`` per batch, and one ``run.log`` event per batch (never one per point).
* Only a running run takes params, metrics, tags and artifacts.
* A batch is checked whole before anything is written; a bad item writes nothing.
"""

from __future__ import annotations

import numbers
import re
import time
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import IO, Any

from sqlalchemy import (
    and_,
    bindparam,
    func,
    insert,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite

from plinth.artifacts import service as artifacts_service
from plinth.artifacts.schemas import ArtifactInfo
from plinth.core.context import Context
from plinth.core.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from plinth.core.ids import new_id
from plinth.core.names import validate_name
from plinth.governance.tables import Project
from plinth.store.db import reads_only
from plinth.tracking import schemas as s
from plinth.tracking.history import chunk_row, downsample, merge_chunks
from plinth.tracking.search import parse_filter, parse_order_by
from plinth.tracking.search_plan import PLANS, cached_statement, find_page, page_values
from plinth.tracking.tables import (
    KEY_LENGTH,
    Experiment,
    LatestMetric,
    MetricChunk,
    Run,
    RunParam,
    RunTag,
)

DEFAULT_EXPERIMENT = "default"
MAX_PARAM_VALUE = 6000
MAX_TAG_VALUE = 8000
MAX_BATCH_METRICS = 100_000
MAX_BATCH_PARAMS = 1000
MAX_BATCH_TAGS = 1000
MAX_ERROR_LENGTH = 20_000
MAX_COMPARE = 100
_INT64 = 2**63 - 1
_KEY_RE = re.compile(r"^[A-Za-z0-9_\-. /:]+$")
_NON_FINITE = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}
_IN_CHUNK = 5000


# --- validation -------------------------------------------------------------------------
def validate_key(key: object, what: str) -> str:
    """A param, tag or metric key: up to 250 letters, digits, ``_ - . / :`` and spaces."""
    if not isinstance(key, str) or not key or len(key) > KEY_LENGTH or not _KEY_RE.match(key):
        raise InvalidInput(
            f"{what} key {key!r} is not valid: use 1-{KEY_LENGTH} letters, digits, spaces or '_-./:'",
            field=what,
        )
    if key != key.strip() or key.startswith("/") or ".." in key.split("/"):
        raise InvalidInput(
            f"{what} key {key!r} may not start or end with spaces, start with '/' or hold '..'", field=what
        )
    return key


def metric_value(key: str, value: object) -> float:
    """A metric value as a float; NaN and ±inf are kept. Anything not a real number is refused."""
    if type(value) is float:
        return value
    if type(value) is int:
        return float(value)
    if isinstance(value, str) and value in _NON_FINITE:  # the JSON spelling of non-finite numbers
        return _NON_FINITE[value]
    if not isinstance(value, bool) and not isinstance(value, str):
        if isinstance(value, numbers.Real):
            return float(value)
        item = getattr(value, "item", None)  # numpy and torch scalars, one-element arrays
        if callable(item) and getattr(value, "size", 1) in (1, None) and getattr(value, "dtype", None) is not None:
            try:
                inner = item()
            except (ValueError, RuntimeError, TypeError):
                inner = None
            if isinstance(inner, numbers.Real) and not isinstance(inner, bool):
                return float(inner)
    raise InvalidInput(
        f"metric {key!r} must be a number, got {value!r} ({type(value).__name__})", field=f"metrics.{key}"
    )


def _text(value: object, what: str, key: str, limit: int) -> str:
    text = value if isinstance(value, str) else str(value)
    if len(text) > limit:
        raise InvalidInput(
            f"{what} {key!r} is {len(text)} characters long; the limit is {limit}", field=f"{what}s.{key}"
        )
    return text


def int_value(value: object, what: str, key: str, default: int) -> int:
    """A metric's step or timestamp as an int64 (``default`` when None); floats must be whole."""
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise InvalidInput(f"{what} of metric {key!r} must be an integer, got {value!r}", field=f"metrics.{key}")
    value = int(value)
    if not -_INT64 <= value <= _INT64:
        raise InvalidInput(f"{what} of metric {key!r} is out of range: {value}", field=f"metrics.{key}")
    return value


def _run_name(name: object) -> str:
    if not isinstance(name, str) or not name.strip() or len(name) > KEY_LENGTH:
        raise InvalidInput(f"run name {name!r} is not valid: use 1-{KEY_LENGTH} characters", field="name")
    if any(unicodedata.category(c) in {"Cc", "Cf"} for c in name):
        raise InvalidInput(f"run name {name!r} contains control characters", field="name")
    return name


def _strings(values: Mapping[str, Any] | None, what: str, limit: int, max_items: int) -> dict[str, str]:
    if values is None:
        return {}
    if not isinstance(values, Mapping):
        raise InvalidInput(f"{what}s must be a mapping of key to value", field=f"{what}s")
    if len(values) > max_items:
        raise InvalidInput(f"at most {max_items} {what}s per call, got {len(values)}", field=f"{what}s")
    return {validate_key(k, what): _text(v, what, k, limit) for k, v in values.items()}


# --- lookups ----------------------------------------------------------------------------
def _in_project(ctx: Context, project: str) -> Context:
    """The same transaction and actor, acting in ``project`` (where the run lives)."""
    if project == ctx.project:
        return ctx
    return Context(
        actor=ctx.actor,
        project=project,
        session=ctx.session,
        stores=ctx.stores,
        settings=ctx.settings,
        clock=ctx.clock,
        request_id=ctx.request_id,
    )


def _run(ctx: Context, run_id: object, permission: str) -> tuple[Run, str, Context]:
    """The run, its project's name and a context in that project; checks ``permission``."""
    if not isinstance(run_id, str) or not run_id:
        raise InvalidInput(f"run id {run_id!r} is not valid", field="run_id")
    row = ctx.session.execute(
        select(Run, Project.name).join(Project, Project.id == Run.project_id).where(Run.id == run_id)
    ).first()
    if row is None:
        raise NotFound(f"run {run_id!r} does not exist", run_id=run_id)
    run, project = row
    rctx = _in_project(ctx, project)
    rctx.require(permission)
    return run, project, rctx


def _writable(run: Run) -> None:
    if run.deleted_at is not None:
        raise Conflict(f"run {run.id!r} is deleted; it takes no more data", run_id=run.id)
    if run.status != "running":
        raise Conflict(
            f"run {run.id!r} is {run.status}; only a running run takes params, metrics, tags and artifacts",
            run_id=run.id,
            status=run.status,
        )


def _experiment(ctx: Context, name_or_id: str, create: bool = False) -> Experiment:
    pid = ctx.project_id()
    exp = ctx.session.execute(
        select(Experiment).where(Experiment.project_id == pid, Experiment.name == name_or_id)
    ).scalar()
    if exp is None:
        exp = ctx.session.execute(
            select(Experiment).where(Experiment.project_id == pid, Experiment.id == name_or_id)
        ).scalar()
    if exp is None:
        if not create:
            raise NotFound(
                f"experiment {name_or_id!r} does not exist in project {ctx.project!r}",
                experiment=name_or_id,
                project=ctx.project,
            )
        exp = _create_experiment(ctx, name_or_id, "")
    return exp


def _run_info(run: Run, project: str, experiment: str) -> s.RunInfo:
    return s.RunInfo(
        id=run.id,
        project=project,
        experiment_id=run.experiment_id,
        experiment=experiment,
        name=run.name,
        status=run.status,  # type: ignore[arg-type]
        parent_id=run.parent_id,
        start_time=run.start_time,
        end_time=run.end_time,
        created_by=run.created_by,
        error=run.error,
        deleted=run.deleted_at is not None,
    )


def _experiment_name(ctx: Context, experiment_id: str) -> str:
    return str(ctx.session.execute(select(Experiment.name).where(Experiment.id == experiment_id)).scalar_one())


def _chunks(ids: Sequence[str]) -> Iterable[Sequence[str]]:
    for i in range(0, len(ids), _IN_CHUNK):
        yield ids[i : i + _IN_CHUNK]


def _upsert(ctx: Context, table: Any, rows: list[dict[str, Any]], keys: list[str], where: Any = None) -> None:
    """Insert rows, or update the non-key columns of those that exist (SQLite and PostgreSQL)."""
    if not rows:
        return
    dialect = ctx.session.get_bind().dialect.name
    ins: Any = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table).values(rows)
    columns = [c for c in rows[0] if c not in keys]
    set_ = {c: ins.excluded[c] for c in columns}
    ctx.session.execute(ins.on_conflict_do_update(index_elements=keys, set_=set_, where=where))


# --- experiments ------------------------------------------------------------------------
def _create_experiment(ctx: Context, name: str, description: str) -> Experiment:
    validate_name(name, "experiment")
    exp = Experiment(
        id=new_id(),
        project_id=ctx.project_id(),
        name=name,
        description=description or "",
        created_at=ctx.now(),
        created_by=ctx.actor.name,
    )
    ctx.session.add(exp)
    ctx.session.flush()
    ctx.emit("experiment.create", f"experiments:/{name}", {"description": description or ""})
    return exp


def _experiment_info(ctx: Context, exp: Experiment, count: int = 0, last: Any = None) -> s.ExperimentInfo:
    return s.ExperimentInfo(
        id=exp.id,
        project=ctx.project,
        name=exp.name,
        description=exp.description,
        created_at=exp.created_at,
        created_by=exp.created_by,
        run_count=count,
        last_run_at=last,
    )


def create_experiment(ctx: Context, name: str, description: str = "") -> s.ExperimentInfo:
    """Create an experiment; AlreadyExists if the project has one by that name."""
    ctx.require("write")
    validate_name(name, "experiment")
    pid = ctx.project_id()
    if ctx.session.execute(select(Experiment.id).where(Experiment.project_id == pid, Experiment.name == name)).scalar():
        raise AlreadyExists(f"experiment {name!r} already exists in project {ctx.project!r}", experiment=name)
    return _experiment_info(ctx, _create_experiment(ctx, name, description))


def set_experiment(ctx: Context, name: str) -> s.ExperimentInfo:
    """The experiment by that name, created if it does not exist yet."""
    validate_name(name, "experiment")
    ctx.require("read")
    pid = ctx.project_id()
    exp = ctx.session.execute(select(Experiment).where(Experiment.project_id == pid, Experiment.name == name)).scalar()
    if exp is None:
        ctx.require("write")
        exp = _create_experiment(ctx, name, "")
    return _experiment_info(ctx, exp)


def _experiments_with_counts(ctx: Context, where: Any = None) -> list[s.ExperimentInfo]:
    ctx.require("read")
    q = (
        select(Experiment, func.count(Run.id), func.max(Run.start_time))
        .outerjoin(Run, and_(Run.experiment_id == Experiment.id, Run.deleted_at.is_(None)))
        .where(Experiment.project_id == ctx.project_id())
        .group_by(Experiment.id)
        .order_by(Experiment.name)
    )
    if where is not None:
        q = q.where(where)
    out = []
    for exp, count, last in ctx.session.execute(q):
        if last is not None:  # an aggregate skips the column type: text on SQLite, naive on PostgreSQL
            last = _utc_times([last])[0]
        out.append(_experiment_info(ctx, exp, count, last))
    return out


def list_experiments(ctx: Context) -> list[s.ExperimentInfo]:
    """The project's experiments with their run counts (one query)."""
    return _experiments_with_counts(ctx)


def get_experiment(ctx: Context, name: str) -> s.ExperimentInfo:
    found = _experiments_with_counts(ctx, (Experiment.name == name) | (Experiment.id == name))
    if not found:
        raise NotFound(f"experiment {name!r} does not exist in project {ctx.project!r}", experiment=name)
    return found[0]


# --- runs -------------------------------------------------------------------------------
_ADJECTIVES = [
    *("amber", "bold", "brisk", "calm", "clever", "eager", "fair", "gentle"),
    *("keen", "lively", "merry", "noble", "proud", "quick", "sunny", "swift"),
]
_NOUNS = [
    *("badger", "crane", "dolphin", "falcon", "fox", "heron", "ibis", "lark"),
    *("lynx", "otter", "owl", "panda", "raven", "seal", "tiger", "wren"),
]


def _generated_name(run_id: str) -> str:
    n = int.from_bytes(run_id.encode()[-6:], "big")
    return f"{_ADJECTIVES[n % 16]}-{_NOUNS[(n // 16) % 16]}-{n % 1000:03d}"


def start_run(
    ctx: Context,
    experiment: str | None = None,
    name: str | None = None,
    tags: Mapping[str, Any] | None = None,
    parent_id: str | None = None,
) -> s.RunInfo:
    """Start a run (status ``running``) in an experiment, created if needed."""
    ctx.require("write")
    tag_values = _strings(tags, "tag", MAX_TAG_VALUE, MAX_BATCH_TAGS)
    if name is not None:
        _run_name(name)
    exp = _experiment(ctx, experiment or DEFAULT_EXPERIMENT, create=True)
    if parent_id is not None:
        parent, parent_project, _ = _run(ctx, parent_id, "read")
        if parent_project != ctx.project:
            raise InvalidInput(
                f"parent run {parent_id!r} is in project {parent_project!r}, not {ctx.project!r}", field="parent_id"
            )
        if parent.deleted_at is not None:
            raise Conflict(f"parent run {parent_id!r} is deleted", run_id=parent_id)
    run_id = new_id()
    run = Run(
        id=run_id,
        project_id=ctx.project_id(),
        experiment_id=exp.id,
        parent_id=parent_id,
        name=name or _generated_name(run_id),
        status="running",
        start_time=ctx.now(),
        created_by=ctx.actor.name,
    )
    ctx.session.add(run)
    ctx.session.flush()
    if tag_values:
        ctx.session.execute(
            insert(RunTag.__table__), [{"run_id": run_id, "key": k, "value": v} for k, v in tag_values.items()]
        )
    ctx.emit(
        "run.start",
        f"runs:/{run_id}",
        {"experiment": exp.name, "name": run.name, "parent_id": parent_id, "tags": sorted(tag_values)},
    )
    return _run_info(run, ctx.project, exp.name)


def get_run(ctx: Context, run_id: str) -> s.RunDetail:
    """A run with its params, tags and latest metrics."""
    run, project, rctx = _run(ctx, run_id, "read")
    params = dict(ctx.session.execute(select(RunParam.key, RunParam.value).where(RunParam.run_id == run_id)).all())
    tags = dict(ctx.session.execute(select(RunTag.key, RunTag.value).where(RunTag.run_id == run_id)).all())
    metrics = {
        key: s.LatestMetricInfo(value=float("nan") if value is None else value, step=step, timestamp=ts)
        for key, value, step, ts in ctx.session.execute(
            select(LatestMetric.key, LatestMetric.value, LatestMetric.step, LatestMetric.timestamp).where(
                LatestMetric.run_id == run_id
            )
        )
    }
    info = _run_info(run, project, _experiment_name(ctx, run.experiment_id))
    return s.RunDetail(**info.model_dump(), params=params, tags=tags, metrics=metrics)


def end_run(ctx: Context, run_id: str, status: str = "finished", error: str | None = None) -> s.RunInfo:
    """Mark a running run finished, failed or killed (with the error, if any)."""
    if status not in {"finished", "failed", "killed"}:
        raise InvalidInput(f"status {status!r} is not one of finished, failed, killed", field="status")
    run, project, rctx = _run(ctx, run_id, "write")
    if run.status != "running":
        raise Conflict(f"run {run_id!r} is already {run.status}", run_id=run_id, status=run.status)
    run.status = status
    run.end_time = ctx.now()
    if error is not None:
        run.error = str(error)[:MAX_ERROR_LENGTH]
    rctx.emit("run.end", f"runs:/{run_id}", {"status": status, "error": (error or "")[:500] or None})
    return _run_info(run, project, _experiment_name(ctx, run.experiment_id))


def delete_run(ctx: Context, run_id: str) -> None:
    """Hide a run from searches and lists (its data stays; deleting again does nothing)."""
    run, _project, rctx = _run(ctx, run_id, "write")
    if run.deleted_at is not None:
        return
    run.deleted_at = ctx.now()
    rctx.emit("run.delete", f"runs:/{run_id}", {"status": run.status})


# --- logging ----------------------------------------------------------------------------
_Columns = tuple[list[int], list[int], list[float]]


def _metric_columns(metrics: Iterable[Any], now_ms: int, series: dict[str, _Columns]) -> int:
    """Add ``(key, value, step, timestamp_ms)`` rows to the per-key columns; returns the count."""
    count = 0
    for item in metrics:
        kind = type(item)
        if (kind is tuple or kind is list) and len(item) == 4:
            key, value, step, ts = item
        elif isinstance(item, Mapping):
            key, value, step, ts = item.get("key"), item.get("value"), item.get("step"), item.get("timestamp")
        else:
            raise InvalidInput(f"a metric must be [key, value, step, timestamp_ms], got {item!r}", field="metrics")
        columns = series.get(key)
        if columns is None:
            validate_key(key, "metric")
            columns = series[key] = ([], [], [])
        columns[0].append(step if type(step) is int else int_value(step, "step", key, 0))
        columns[1].append(ts if type(ts) is int else int_value(ts, "timestamp", key, now_ms))
        columns[2].append(value if type(value) is float else metric_value(key, value))
        count += 1
    return count


def _int_column(values: object, what: str, key: str, default: int) -> list[int]:
    if not isinstance(values, list):
        raise InvalidInput(f"{what}s of metric {key!r} must be a list, got {values!r}", field=f"series.{key}")
    if all(type(v) is int and -_INT64 <= v <= _INT64 for v in values):
        return values
    return [int_value(v, what, key, default) for v in values]


def _series_columns(series: object, now_ms: int, into: dict[str, _Columns]) -> int:
    """Add columnar points ``{key: {"steps": [...], "values": [...], "timestamps": [...] | null}}``
    to the per-key columns; returns the count. Plain ints and floats pass a type check per column
    instead of one per point."""
    if not isinstance(series, Mapping):
        raise InvalidInput(f"series must be an object of metric key to columns, got {series!r}", field="series")
    count = 0
    for key, columns in series.items():
        validate_key(key, "metric")
        if not isinstance(columns, Mapping):
            raise InvalidInput(
                f"series {key!r} must be an object with steps, values and timestamps, got {columns!r}",
                field=f"series.{key}",
            )
        unknown = sorted(set(columns) - {"steps", "values", "timestamps"})
        if unknown:
            raise InvalidInput(
                f"series {key!r} has unknown field(s) {', '.join(map(repr, unknown))}; "
                "expected steps, values, timestamps",
                field=f"series.{key}",
            )
        values = columns.get("values")
        if not isinstance(values, list):
            raise InvalidInput(f"values of metric {key!r} must be a list, got {values!r}", field=f"series.{key}")
        n = len(values)
        if not all(type(v) is float for v in values):
            values = [metric_value(key, v) for v in values]
        steps = columns.get("steps")
        steps = [0] * n if steps is None else _int_column(steps, "step", key, 0)
        stamps = columns.get("timestamps")
        stamps = [now_ms] * n if stamps is None else _int_column(stamps, "timestamp", key, now_ms)
        if len(steps) != n or len(stamps) != n:
            raise InvalidInput(
                f"series {key!r} has {n} values, {len(steps)} steps and {len(stamps)} timestamps; "
                "the columns must be the same length",
                field=f"series.{key}",
            )
        if not n:
            continue
        cols = into.get(key)
        if cols is None:
            into[key] = (steps, stamps, values)
        else:
            cols[0].extend(steps)
            cols[1].extend(stamps)
            cols[2].extend(values)
        count += n
    return count


def _metric_chunks(
    run_id: str, metrics: Iterable[Any], now_ms: int, series: object = None
) -> tuple[list[dict[str, Any]], list[tuple[int, int, float]], int]:
    """Validated history rows (one chunk per key), each key's newest point, and the count."""
    columns: dict[str, _Columns] = {}
    count = _metric_columns(metrics, now_ms, columns)
    if series is not None:
        count += _series_columns(series, now_ms, columns)
    if count > MAX_BATCH_METRICS:
        raise InvalidInput(f"at most {MAX_BATCH_METRICS} metric points per call, got {count}", field="metrics")
    built = [chunk_row(run_id, key, *cols) for key, cols in columns.items()]
    return [row for row, _ in built], [last for _, last in built], count


_LATEST_UPSERT: dict[str, Any] = {}


def _latest_upsert(dialect: str) -> Any:
    """INSERT … ON CONFLICT that keeps the newest point (by step, then timestamp); built once."""
    stmt = _LATEST_UPSERT.get(dialect)
    if stmt is None:
        ins: Any = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(LatestMetric.__table__)
        excluded = ins.excluded
        table = LatestMetric.__table__.c
        newer = (excluded.step > table.step) | ((excluded.step == table.step) & (excluded.timestamp >= table.timestamp))
        stmt = _LATEST_UPSERT[dialect] = ins.on_conflict_do_update(
            index_elements=["run_id", "key"],
            set_={"step": excluded.step, "timestamp": excluded.timestamp, "value": excluded.value},
            where=newer,
        )
    return stmt


def log_batch(
    ctx: Context,
    run_id: str,
    metrics: Sequence[Any] | None = None,
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, Any] | None = None,
    series: Mapping[str, Any] | None = None,
) -> s.BatchResult:
    """Log metrics, params and tags to a running run in one transaction.

    ``metrics`` holds ``(key, value, step, timestamp_ms)`` rows (or dicts with those
    keys); step defaults to 0 and timestamp to now. ``series`` holds the same points by
    column, ``{key: {"steps": [...], "values": [...], "timestamps": [...] or None}}``, which
    the SDK sends: cheaper to encode, parse and check. The history takes one bulk insert,
    ``latest_metrics`` one upsert, and the batch one ``run.log`` event.
    """
    param_values = _strings(params, "param", MAX_PARAM_VALUE, MAX_BATCH_PARAMS)
    tag_values = _strings(tags, "tag", MAX_TAG_VALUE, MAX_BATCH_TAGS)
    if metrics is not None and not isinstance(metrics, Sequence):
        metrics = list(metrics)
    if metrics is not None and len(metrics) > MAX_BATCH_METRICS:
        raise InvalidInput(f"at most {MAX_BATCH_METRICS} metric points per call, got {len(metrics)}", field="metrics")
    chunks, newest, points = _metric_chunks(run_id, metrics or (), int(time.time() * 1000), series)
    run, _project, rctx = _run(ctx, run_id, "write")
    _writable(run)
    if param_values:
        existing = dict(
            ctx.session.execute(
                select(RunParam.key, RunParam.value).where(
                    RunParam.run_id == run_id, RunParam.key.in_(list(param_values))
                )
            ).all()
        )
        for key, value in param_values.items():
            if key in existing and existing[key] != value:
                raise Conflict(
                    f"param {key!r} of run {run_id!r} is already {existing[key]!r}; params are immutable "
                    f"once logged (got {value!r}); log a new key or start a new run",
                    run_id=run_id,
                    key=key,
                )
        new = [{"run_id": run_id, "key": k, "value": v} for k, v in param_values.items() if k not in existing]
        if new:
            ctx.session.execute(insert(RunParam.__table__), new)
    if tag_values:
        _upsert(
            ctx, RunTag, [{"run_id": run_id, "key": k, "value": v} for k, v in tag_values.items()], ["run_id", "key"]
        )
    if chunks:
        ctx.session.execute(insert(MetricChunk.__table__), list(chunks))
        latest = [
            # NaN is NULL in latest_metrics, so that filters and sorting agree on every backend
            {"run_id": run_id, "key": row["key"], "step": step, "timestamp": ts, "value": None if v != v else v}
            for row, (step, ts, v) in zip(chunks, newest, strict=True)
        ]
        ctx.session.execute(_latest_upsert(ctx.session.get_bind().dialect.name), latest)
    summary: dict[str, Any] = {}
    if chunks:
        summary["metrics"] = {"points": points, "keys": sorted(c["key"] for c in chunks)[:50]}
    if param_values:
        summary["params"] = {k: v[:200] for k, v in param_values.items()}
    if tag_values:
        summary["tags"] = {k: v[:200] for k, v in tag_values.items()}
    if summary:
        rctx.emit("run.log", f"runs:/{run_id}", summary)
    return s.BatchResult(metrics=points, params=len(param_values), tags=len(tag_values))


def put_run_artifact(
    ctx: Context,
    run_id: str,
    name: str,
    content: IO[bytes] | Iterable[bytes] | bytes,
    media_type: str | None = None,
) -> ArtifactInfo:
    """Store an artifact of a running run (owner ``runs:/<id>``); the name is checked there."""
    run, _project, rctx = _run(ctx, run_id, "write")
    _writable(run)
    return artifacts_service.put_artifact(
        rctx, owner=f"runs:/{run_id}", name=name, content=content, media_type=media_type
    )


# --- reading ----------------------------------------------------------------------------
def _history(run_id: str, key: str, chunks: list[Any], max_points: int | None) -> s.MetricHistory:
    steps, stamps, values = downsample(merge_chunks(chunks), max_points)
    return s.MetricHistory.model_construct(run_id=run_id, key=key, steps=steps, timestamps=stamps, values=values)


_CHUNK_COLUMNS = (
    MetricChunk.first_step,
    MetricChunk.last_step,
    MetricChunk.steps,
    MetricChunk.timestamps,
    MetricChunk.values,
)


def metric_history(ctx: Context, run_id: str, key: str, max_points: int | None = None) -> s.MetricHistory:
    """Every point of one metric of a run, by step then time (evenly thinned to ``max_points``)."""
    _run(ctx, run_id, "read")
    validate_key(key, "metric")
    if max_points is not None and (not isinstance(max_points, int) or max_points < 2):
        raise InvalidInput(f"max_points must be at least 2, got {max_points!r}", field="max_points")
    chunks = ctx.session.execute(
        select(*_CHUNK_COLUMNS)
        .where(MetricChunk.run_id == run_id, MetricChunk.key == key)
        .order_by(MetricChunk.first_step, MetricChunk.id)
    ).all()
    if not chunks:
        raise NotFound(f"run {run_id!r} has no metric {key!r}", run_id=run_id, key=key)
    return _history(run_id, key, chunks, max_points)


def metric_histories(
    ctx: Context, run_ids: Sequence[str], keys: Sequence[str] | None = None, max_points: int | None = None
) -> list[s.MetricHistory]:
    """The histories of several runs (and keys) in one query: for charts that overlay runs."""
    for run_id in run_ids:
        _run(ctx, run_id, "read")
    q = select(MetricChunk.run_id, MetricChunk.key, *_CHUNK_COLUMNS).where(MetricChunk.run_id.in_(list(run_ids)))
    if keys:
        q = q.where(MetricChunk.key.in_([validate_key(k, "metric") for k in keys]))
    q = q.order_by(MetricChunk.run_id, MetricChunk.key, MetricChunk.first_step, MetricChunk.id)
    grouped: dict[tuple[str, str], list[Any]] = {}
    for row in ctx.session.execute(q).all():
        grouped.setdefault((row[0], row[1]), []).append(row[2:])
    return [_history(run_id, key, chunks, max_points) for (run_id, key), chunks in grouped.items()]


def compare_runs(ctx: Context, run_ids: Sequence[str]) -> s.RunComparison:
    """Params side by side (and which differ), latest metrics side by side."""
    ids = list(dict.fromkeys(run_ids))
    if not ids or len(ids) > MAX_COMPARE:
        raise InvalidInput(f"compare 1 to {MAX_COMPARE} runs, got {len(ids)}", field="run_ids")
    infos = []
    for run_id in ids:
        run, project, _ = _run(ctx, run_id, "read")
        infos.append(_run_info(run, project, _experiment_name(ctx, run.experiment_id)))
    params: dict[str, dict[str, str | None]] = {}
    for run_id, key, value in ctx.session.execute(
        select(RunParam.run_id, RunParam.key, RunParam.value).where(RunParam.run_id.in_(ids))
    ):
        params.setdefault(key, dict.fromkeys(ids))[run_id] = value
    metrics: dict[str, dict[str, float | None]] = {}
    for run_id, key, value in ctx.session.execute(
        select(LatestMetric.run_id, LatestMetric.key, LatestMetric.value).where(LatestMetric.run_id.in_(ids))
    ):
        metrics.setdefault(key, dict.fromkeys(ids))[run_id] = float("nan") if value is None else value
    differ = sorted(k for k, by_run in params.items() if len(set(by_run.values())) > 1)
    return s.RunComparison(
        runs=infos,
        params=dict(sorted(params.items())),
        params_differ=differ,
        metrics=dict(sorted(metrics.items())),
    )


def _experiments_by_name() -> Any:
    """(name, id) of a project's experiments named or numbered in ``names``, built once."""

    def build() -> Any:
        names = bindparam("names", expanding=True)
        return (
            select(Experiment.name, Experiment.id)
            .join(Project, Project.id == Experiment.project_id)
            .where(Project.name == bindparam("project"), Experiment.name.in_(names) | Experiment.id.in_(names))
        )

    return cached_statement(("experiments-by-name",), build)


def _utc_times(values: list[Any]) -> list[Any]:
    """Stored naive UTC (text on SQLite, timestamps on PostgreSQL) as aware datetimes."""
    return [
        None if v is None else datetime.fromisoformat(v + "+00:00") if isinstance(v, str) else v.replace(tzinfo=UTC)
        for v in values
    ]


def _page_offset(token: str | None) -> int:
    if token is None or token == "":
        return 0
    if not token.isdigit() or len(token) > 12:
        raise InvalidInput(f"page_token {token!r} is not one this server handed out", field="page_token")
    return int(token)


@reads_only
def search_runs(
    ctx: Context,
    experiments: Sequence[str] | None = None,
    filter: str | None = None,
    order_by: Sequence[str] | None = None,
    max_results: int = 1000,
    page_token: str | None = None,
    include_deleted: bool = False,
    plan: str = "auto",
) -> s.RunTable:
    """Runs of the project (or of some experiments) that pass ``filter``, as columns.

    A few queries whatever the number of runs: the project and the experiments, the
    index probes of a filter on metrics, the page of runs, then its latest metrics, params
    and tags (one UNION ALL). ``plan`` ("auto", "scan", "index") picks how the page is
    found; every plan gives the same result ("scan" walks the runs in scope, "index"
    starts from a metric comparison's index range where the filter has one).
    """
    ctx.require("read")
    if plan not in PLANS:
        raise InvalidInput(f"plan must be one of {', '.join(PLANS)}, got {plan!r}", field="plan")
    node = parse_filter(filter)
    order = parse_order_by(list(order_by) if order_by else None)
    if not isinstance(max_results, int) or not 1 <= max_results <= 50_000:
        raise InvalidInput(f"max_results must be 1 to 50000, got {max_results!r}", field="max_results")
    offset = _page_offset(page_token)
    sqlite_db = ctx.session.get_bind().dialect.name == "sqlite"
    conn = ctx.session.connection()  # plain Core rows: no ORM loading for thousands of rows
    if experiments:
        names = list(experiments)
        # the project and the experiments in one query (the project's own only if none is found)
        found = dict(_experiments_by_name().fetch(conn, {"project": ctx.project, "names": names}))
        if not found:
            ctx.project_id()  # NotFound for a project that does not exist
        known = set(found) | set(found.values())
        missing = [n for n in names if n not in known]
        if missing:
            raise NotFound(
                f"experiment {missing[0]!r} does not exist in project {ctx.project!r}", experiment=missing[0]
            )
        scope_column, scope_ids = "experiment_id", list(set(found.values()))
    else:
        scope_column, scope_ids = "project_id", [ctx.project_id()]
    page = find_page(
        conn, node, order, scope_column, scope_ids, include_deleted, sqlite_db, plan, offset, max_results + 1
    )
    more = len(page) > max_results
    page = page[:max_results]
    ids = [r[0] for r in page]
    index = {run_id: i for i, run_id in enumerate(ids)}
    n = len(ids)
    columns: dict[str, dict[str, list[Any]]] = {"metrics": {}, "params": {}, "tags": {}}
    if ids:
        whole = offset == 0 and not more and node is None
        stmt, params = page_values(scope_column, scope_ids, include_deleted, whole)
        outs = (columns["metrics"], columns["params"], columns["tags"])
        for chunk in [ids] if whole else _chunks(ids):
            for kind, run_id, key, number, text in stmt.fetch(conn, params if whole else {"ids": list(chunk)}):
                out = outs[kind]
                col = out.get(key)
                if col is None:
                    col = out[key] = [None] * n
                col[index[run_id]] = number if kind == 0 else text
    return s.RunTable.model_construct(
        run_id=ids,
        experiment_id=[r[1] for r in page],
        name=[r[2] for r in page],
        status=[r[3] for r in page],
        parent_id=[r[4] for r in page],
        start_time=_utc_times([r[5] for r in page]),
        end_time=_utc_times([r[6] for r in page]),
        created_by=[r[7] for r in page],
        metrics=columns["metrics"],
        params=columns["params"],
        tags=columns["tags"],
        next_page_token=str(offset + max_results) if more else None,
    )


def list_child_runs(ctx: Context, run_id: str) -> list[s.RunInfo]:
    """The runs started under ``run_id`` (nested runs)."""
    _parent, project, _ = _run(ctx, run_id, "read")
    rows = ctx.session.execute(
        select(Run, Experiment.name)
        .join(Experiment, Experiment.id == Run.experiment_id)
        .where(Run.parent_id == run_id, Run.deleted_at.is_(None))
        .order_by(Run.start_time)
    ).all()
    return [_run_info(r, project, exp) for r, exp in rows]


__all__ = [
    "compare_runs",
    "create_experiment",
    "delete_run",
    "end_run",
    "get_experiment",
    "get_run",
    "int_value",
    "list_child_runs",
    "list_experiments",
    "log_batch",
    "metric_histories",
    "metric_history",
    "metric_value",
    "put_run_artifact",
    "search_runs",
    "set_experiment",
    "start_run",
    "validate_key",
]
