"""SDK functions of the tracking area; embedded or remote by ``PLINTH_URI``.

>>> import plinth
>>> plinth.set_experiment("churn")                                  # doctest: +SKIP
>>> with plinth.start_run(name="rf-baseline", tags={"team": "risk"}) as run:  # doctest: +SKIP
...     plinth.log_params({"model": "rf", "n_estimators": 200})
...     for step in range(100):
...         plinth.log_metric("loss", 1 / (step + 1), step=step)
>>> plinth.search_runs("churn", filter="params.model = 'rf'", order_by=["metrics.loss"])  # doctest: +SKIP

Metric calls are buffered: they return at once and a background thread stores them in
batches (see :mod:`plinth.tracking.buffer`). Params and tags are stored by the call, so
a conflicting param raises right there.
"""

from __future__ import annotations

import atexit
import io
import json
import os
import sys
import threading
import time
import traceback
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from plinth.artifacts.schemas import ArtifactInfo
from plinth.client.backend import current_backend
from plinth.core.errors import Conflict, InvalidInput
from plinth.core.ops import call
from plinth.tracking import schemas as s
from plinth.tracking import service as svc
from plinth.tracking.buffer import MetricBuffer

__all__ = [
    "ActiveRun",
    "active_run",
    "compare_runs",
    "create_experiment",
    "delete_run",
    "end_run",
    "flush",
    "get_experiment",
    "get_metric_history",
    "get_run",
    "list_experiments",
    "log_artifact",
    "log_artifacts",
    "log_batch",
    "log_dict",
    "log_figure",
    "log_image",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "log_table",
    "log_text",
    "search_runs",
    "set_experiment",
    "set_tag",
    "set_tags",
    "start_run",
]


def _env_flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() not in {"0", "false", "no", "off"}


def _env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, "") or default)
    except ValueError:
        raise InvalidInput(f"{name} must be a number of seconds", variable=name) from None


# --- the buffer ---------------------------------------------------------------------------
def _send(run_id: str, project: str | None, rows: list[tuple[str, Any, int, int]]) -> None:
    call(s.LOG_BATCH, svc.log_batch, project=project, run_id=run_id, series=_metric_series(rows))


_buffer_lock = threading.Lock()
_buffer: MetricBuffer | None = None


def _metric_buffer() -> MetricBuffer:
    global _buffer
    if _buffer is None:
        with _buffer_lock:
            if _buffer is None:
                _buffer = MetricBuffer(
                    _send,
                    batch_size=int(_env_float("PLINTH_METRICS_BATCH", 1000)),
                    interval=_env_float("PLINTH_METRICS_FLUSH_INTERVAL", 1.0),
                )
                atexit.register(_at_exit)
    return _buffer


def flush(run_id: str | None = None) -> None:
    """Wait until every metric logged so far is stored; raise if a batch could not be."""
    if _buffer is not None:
        _buffer.flush(run_id)


def _at_exit() -> None:
    failed = getattr(sys, "last_value", None) is not None
    for run in reversed(list(_stack)):
        try:
            run.end("failed" if failed else "finished", error="the process exited with an error" if failed else None)
        except Exception as exc:  # the interpreter is going away; say so and go on
            sys.stderr.write(f"plinth: could not end run {run.id}: {exc}\n")
    if _buffer is not None:
        _buffer.close()


# --- runs -----------------------------------------------------------------------------------
_state_lock = threading.Lock()
_stack: list[ActiveRun] = []
_experiment: dict[str, str | None] = {"name": None, "project": None}


class ActiveRun:
    """A running run: a context manager that ends it (finished, failed or killed)."""

    def __init__(self, info: s.RunInfo) -> None:
        self.info = info
        self.id = info.id
        self.project = info.project
        self._steps: dict[str, int] = {}
        self._keys: set[str] = set()
        self._ended = False
        self._sampler: Any = None

    def __repr__(self) -> str:
        return f"ActiveRun(id={self.id!r}, name={self.info.name!r}, experiment={self.info.experiment!r})"

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def uri(self) -> str:
        return f"runs:/{self.id}"

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if self._ended:
            return
        if exc is None:
            self.end("finished")
        elif isinstance(exc, KeyboardInterrupt):
            self.end("killed", error="KeyboardInterrupt")
        else:
            text = "".join(traceback.format_exception(exc_type, exc, tb))
            self.end("failed", error=text)

    def _check_open(self) -> None:
        if self._ended:
            raise Conflict(
                f"run {self.id!r} has ended; only a running run takes params, metrics, tags and artifacts",
                run_id=self.id,
            )

    # metrics: buffered
    def log_metric(self, key: str, value: float, step: int | None = None, timestamp: int | None = None) -> None:
        if self._ended:
            self._check_open()
        if key not in self._keys:
            svc.validate_key(key, "metric")
            self._keys.add(key)
        v = value if type(value) is float else svc.metric_value(key, value)
        if step is None:
            step = self._steps.get(key, 0)
        elif type(step) is not int:
            step = svc.int_value(step, "step", key, 0)
        self._steps[key] = step + 1
        if timestamp is None:
            timestamp = int(time.time() * 1000)
        elif type(timestamp) is not int:
            timestamp = svc.int_value(timestamp, "timestamp", key, 0)
        _metric_buffer().add((self.id, self.project, key, v, step, timestamp))

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None, timestamp: int | None = None) -> None:
        if not isinstance(metrics, Mapping):
            raise InvalidInput("log_metrics takes a mapping of key to number", field="metrics")
        if timestamp is None:
            timestamp = int(time.time() * 1000)
        for key, value in metrics.items():
            self.log_metric(key, value, step, timestamp)

    # params and tags: stored by the call
    def log_params(self, params: Mapping[str, Any]) -> None:
        self._check_open()
        call(s.LOG_BATCH, svc.log_batch, run_id=self.id, params=dict(params))

    def log_param(self, key: str, value: Any) -> None:
        self.log_params({key: value})

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        self._check_open()
        call(s.LOG_BATCH, svc.log_batch, run_id=self.id, tags={k: str(v) for k, v in tags.items()})

    def set_tag(self, key: str, value: Any) -> None:
        self.set_tags({key: value})

    def log_batch(
        self,
        metrics: Sequence[Any] | None = None,
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> s.BatchResult:
        """Store metrics, params and tags now, in one request and one bulk insert.

        ``metrics`` holds ``(key, value, step[, timestamp_ms])`` rows or dicts.
        """
        self._check_open()
        series = _metric_series(metrics) if metrics is not None else None
        return call(s.LOG_BATCH, svc.log_batch, run_id=self.id, series=series, params=params, tags=tags)

    # artifacts
    def log_artifact(self, path: str | os.PathLike[str], name: str | None = None) -> ArtifactInfo:
        """Upload a local file as artifact ``name`` (its file name by default)."""
        self._check_open()
        file = Path(path)
        if file.is_symlink():
            raise InvalidInput(f"{file} is a symbolic link; Plinth stores only regular files", field="path")
        if not file.is_file():
            raise InvalidInput(f"{file} is not a file", field="path")
        with file.open("rb") as fh:
            return self._upload(fh, name or file.name)

    def log_artifacts(self, directory: str | os.PathLike[str], prefix: str | None = None) -> list[ArtifactInfo]:
        """Upload every regular file under ``directory``, named by its path inside it."""
        self._check_open()
        root = Path(directory)
        if not root.is_dir():
            raise InvalidInput(f"{root} is not a folder", field="directory")
        out = []
        for file in sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink()):
            rel = file.relative_to(root).as_posix()
            out.append(self.log_artifact(file, f"{prefix.rstrip('/')}/{rel}" if prefix else rel))
        return out

    def log_text(self, text: str, name: str) -> ArtifactInfo:
        self._check_open()
        return self._upload(text.encode(), name, "text/plain; charset=utf-8")

    def log_dict(self, value: Mapping[str, Any] | list[Any], name: str) -> ArtifactInfo:
        """A dict or list as JSON (or YAML when ``name`` ends in .yaml/.yml)."""
        self._check_open()
        if name.endswith((".yaml", ".yml")):
            import yaml

            return self._upload(yaml.safe_dump(value, sort_keys=False).encode(), name, "application/yaml")
        return self._upload(json.dumps(value, indent=2, default=str).encode(), name, "application/json")

    def log_figure(self, figure: Any, name: str) -> ArtifactInfo:
        """A matplotlib figure, saved in the format ``name`` ends with (png, svg, pdf…)."""
        self._check_open()
        buf = io.BytesIO()
        figure.savefig(buf, format=Path(name).suffix.lstrip(".") or "png")
        return self._upload(buf.getvalue(), name)

    def log_image(self, image: Any, name: str) -> ArtifactInfo:
        """A PIL image or an array (H×W, H×W×3 or H×W×4; floats in [0, 1] or uint8) as PNG."""
        self._check_open()
        buf = io.BytesIO()
        if hasattr(image, "save") and callable(image.save):
            image.save(buf, format="PNG")
        else:
            try:
                import matplotlib.image as mpimg
            except ImportError:
                raise InvalidInput("log_image of an array needs matplotlib: pip install matplotlib") from None
            mpimg.imsave(buf, image, format="png")
        return self._upload(buf.getvalue(), name if name.endswith(".png") else f"{name}.png", "image/png")

    def log_table(self, table: Any, name: str) -> ArtifactInfo:
        """A pandas DataFrame (or Arrow table) as Parquet, previewable in the UI."""
        self._check_open()
        import pyarrow as pa
        import pyarrow.parquet as pq

        arrow = table if isinstance(table, pa.Table) else pa.Table.from_pandas(table, preserve_index=False)
        buf = io.BytesIO()
        pq.write_table(arrow, buf)
        name = name if name.endswith(".parquet") else f"{name}.parquet"
        return self._upload(buf.getvalue(), name, "application/vnd.apache.parquet")

    def _upload(self, content: bytes | IO[bytes], name: str, media_type: str | None = None) -> ArtifactInfo:
        backend = current_backend()
        if backend.remote and not isinstance(content, bytes):
            content = _iter_file(content)
        return backend.upload(  # type: ignore[no-any-return]
            s.PUT_RUN_ARTIFACT,
            svc.put_run_artifact,
            project=None,
            content=content,
            run_id=self.id,
            name=name,
            media_type=media_type,
        )

    # the end
    def end(self, status: str = "finished", error: str | None = None) -> s.RunInfo | None:
        """Store buffered metrics, stop the samplers and mark the run ended."""
        if self._ended:
            return None
        if self._sampler is not None:  # its last sample goes in before the run closes
            self._sampler.stop()
            self._sampler = None
        self._ended = True
        with _state_lock:
            if self in _stack:
                _stack.remove(self)
        flush_error: BaseException | None = None
        try:
            flush(self.id)
        except Exception as exc:
            flush_error = exc
            if status == "finished":
                status, error = "failed", f"metrics could not be stored: {exc}"
        info = call(s.END_RUN, svc.end_run, run_id=self.id, status=status, error=error)
        self.info = info
        if flush_error is not None:
            raise flush_error
        return info


def _iter_file(fh: IO[bytes], size: int = 1 << 20) -> Iterator[bytes]:
    while chunk := fh.read(size):
        yield chunk


def _metric_series(metrics: Iterable[Any]) -> dict[str, dict[str, Any]]:
    """The points by key and column, as the server takes them: ``{key: {"steps", "values",
    "timestamps"}}`` with plain ints and floats (numpy and torch scalars converted, NaN and
    ±inf kept: the client writes them as JSON's usual NaN/Infinity literals)."""
    grouped: dict[str, tuple[list[int], list[float], list[int | None]]] = {}
    for item in metrics:
        kind = type(item)
        if (kind is tuple or kind is list) and len(item) == 4:
            key, value, step, ts = item
        elif (kind is tuple or kind is list) and len(item) == 3:
            key, value, step = item
            ts = None
        elif isinstance(item, Mapping):
            key, value, step, ts = item.get("key"), item.get("value"), item.get("step"), item.get("timestamp")
        else:
            raise InvalidInput(f"a metric must be (key, value, step[, timestamp_ms]), got {item!r}", field="metrics")
        columns = grouped.get(key)
        if columns is None:
            svc.validate_key(key, "metric")
            columns = grouped[key] = ([], [], [])
        columns[0].append(step if type(step) is int else svc.int_value(step, "step", key, 0))
        columns[1].append(value if type(value) is float else svc.metric_value(key, value))
        columns[2].append(ts if ts is None or type(ts) is int else svc.int_value(ts, "timestamp", key, 0))
    return {
        key: {"steps": steps, "values": values, "timestamps": None if stamps.count(None) == len(stamps) else stamps}
        for key, (steps, values, stamps) in grouped.items()
    }


def set_experiment(name: str, project: str | None = None) -> s.ExperimentInfo:
    """Use experiment ``name`` (created if needed) for the runs started after this call."""
    info = call(s.SET_EXPERIMENT, svc.set_experiment, project=project, name=name)
    with _state_lock:
        _experiment["name"], _experiment["project"] = info.name, project
    return info


def start_run(
    name: str | None = None,
    tags: Mapping[str, Any] | None = None,
    parent: ActiveRun | str | None = None,
    experiment: str | None = None,
    project: str | None = None,
    capture_environment: bool | None = None,
    system_metrics: bool | None = None,
) -> ActiveRun:
    """Start a run; use it as ``with plinth.start_run() as run:``.

    A run started while another is active is nested under it unless ``parent`` says
    otherwise. The run ends ``finished`` when the block ends, ``failed`` (with the
    traceback as its error) when an exception leaves it, ``killed`` on Ctrl+C.
    Environment capture (``PLINTH_CAPTURE_ENVIRONMENT``) and system metrics
    (``PLINTH_SYSTEM_METRICS``, every ``PLINTH_SYSTEM_METRICS_INTERVAL`` seconds) are on
    unless turned off here or there.
    """
    with _state_lock:
        current = _stack[-1] if _stack else None
        exp_name, exp_project = _experiment["name"], _experiment["project"]
    parent_id = parent.id if isinstance(parent, ActiveRun) else parent
    if parent is None and current is not None:
        parent_id = current.id
    if project is None:
        project = exp_project if experiment is None else None
        if project is None and parent is None and current is not None:
            project = current.project
    experiment = experiment or exp_name
    if experiment is None and current is not None:
        experiment = current.info.experiment
    capture = _env_flag("PLINTH_CAPTURE_ENVIRONMENT", True) if capture_environment is None else capture_environment
    env = None
    all_tags = dict(tags or {})
    if capture:
        from plinth.tracking.environment import capture as capture_env

        env = capture_env()
        all_tags = {**env.tags, **all_tags}
    info = call(
        s.START_RUN,
        svc.start_run,
        project=project,
        experiment=experiment,
        name=name,
        tags={k: str(v) for k, v in all_tags.items()},
        parent_id=parent_id,
    )
    run = ActiveRun(info)
    with _state_lock:
        _stack.append(run)
    try:
        if env is not None:
            for file_name, content in env.files.items():
                run._upload(content, file_name, "text/plain; charset=utf-8")
        if _env_flag("PLINTH_SYSTEM_METRICS", True) if system_metrics is None else system_metrics:
            from plinth.tracking.system_metrics import SystemMetricsSampler

            interval = _env_float("PLINTH_SYSTEM_METRICS_INTERVAL", 10.0)
            run._sampler = SystemMetricsSampler(lambda m, step: run.log_metrics(m, step=step), interval).start()
    except BaseException as exc:
        run.end("failed", error=f"the run could not start: {exc}")
        raise
    return run


def active_run() -> ActiveRun | None:
    """The innermost active run of this process, if any."""
    with _state_lock:
        return _stack[-1] if _stack else None


def _active() -> ActiveRun:
    with _state_lock:
        if _stack:
            return _stack[-1]
    raise InvalidInput("no active run: start one with `with plinth.start_run():`", field="run")


def end_run(status: str = "finished", error: str | None = None) -> s.RunInfo | None:
    """End the innermost active run (``with start_run()`` does this for you)."""
    run = active_run()
    return run.end(status, error) if run is not None else None


def log_metric(key: str, value: float, step: int | None = None, timestamp: int | None = None) -> None:
    """Log one point of a metric of the active run (buffered; returns at once).

    ``step`` defaults to one more than the key's last step in this process (0 first);
    ``timestamp`` (milliseconds since the epoch) to now. NaN and ±inf are kept.
    """
    _active().log_metric(key, value, step, timestamp)


def log_metrics(metrics: Mapping[str, float], step: int | None = None, timestamp: int | None = None) -> None:
    _active().log_metrics(metrics, step, timestamp)


def log_param(key: str, value: Any) -> None:
    """Log a param; logging the same key again with another value raises Conflict."""
    _active().log_param(key, value)


def log_params(params: Mapping[str, Any]) -> None:
    _active().log_params(params)


def set_tag(key: str, value: Any) -> None:
    _active().set_tag(key, value)


def set_tags(tags: Mapping[str, Any]) -> None:
    _active().set_tags(tags)


def log_batch(
    metrics: Sequence[Any] | None = None,
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, Any] | None = None,
    run_id: str | None = None,
) -> s.BatchResult:
    """Store metrics, params and tags now (not buffered), in one request and one bulk insert."""
    if run_id is None:
        return _active().log_batch(metrics, params, tags)
    series = _metric_series(metrics) if metrics is not None else None
    return call(s.LOG_BATCH, svc.log_batch, run_id=run_id, series=series, params=params, tags=tags)


def log_artifact(path: str | os.PathLike[str], name: str | None = None) -> ArtifactInfo:
    return _active().log_artifact(path, name)


def log_artifacts(directory: str | os.PathLike[str], prefix: str | None = None) -> list[ArtifactInfo]:
    return _active().log_artifacts(directory, prefix)


def log_text(text: str, name: str) -> ArtifactInfo:
    return _active().log_text(text, name)


def log_dict(value: Mapping[str, Any] | list[Any], name: str) -> ArtifactInfo:
    return _active().log_dict(value, name)


def log_figure(figure: Any, name: str) -> ArtifactInfo:
    return _active().log_figure(figure, name)


def log_image(image: Any, name: str) -> ArtifactInfo:
    return _active().log_image(image, name)


def log_table(table: Any, name: str) -> ArtifactInfo:
    return _active().log_table(table, name)


# --- experiments and queries ---------------------------------------------------------------
def create_experiment(name: str, description: str = "", project: str | None = None) -> s.ExperimentInfo:
    return call(s.CREATE_EXPERIMENT, svc.create_experiment, project=project, name=name, description=description)


def list_experiments(project: str | None = None) -> list[s.ExperimentInfo]:
    return call(s.LIST_EXPERIMENTS, svc.list_experiments, project=project)


def get_experiment(name: str, project: str | None = None) -> s.ExperimentInfo:
    return call(s.GET_EXPERIMENT, svc.get_experiment, project=project, name=name)


def get_run(run_id: str) -> s.RunDetail:
    """A run with its params, tags and latest metrics."""
    return call(s.GET_RUN, svc.get_run, run_id=run_id)


def delete_run(run_id: str) -> None:
    """Hide a run from searches (its data and artifacts stay)."""
    call(s.DELETE_RUN, svc.delete_run, run_id=run_id)


def get_metric_history(run_id: str, key: str, max_points: int | None = None) -> s.MetricHistory:
    """Every point of a metric (``.steps``, ``.timestamps``, ``.values``), by step."""
    return call(s.METRIC_HISTORY, svc.metric_history, run_id=run_id, key=key, max_points=max_points)


def compare_runs(run_ids: Sequence[str]) -> s.RunComparison:
    """Params side by side (``.params_differ`` names those that differ) and latest metrics."""
    return call(s.COMPARE_RUNS, svc.compare_runs, run_ids=list(run_ids))


def search_runs(
    experiments: str | Sequence[str] | None = None,
    filter: str | None = None,
    order_by: str | Sequence[str] | None = None,
    max_results: int = 1000,
    page_token: str | None = None,
    include_deleted: bool = False,
    project: str | None = None,
    output: str = "pandas",
) -> Any:
    """Runs that pass ``filter``, as a pandas DataFrame (``output="table"``: a RunTable).

    >>> plinth.search_runs("churn", "metrics.auc > 0.9 and params.model = 'rf'",
    ...                    order_by=["metrics.auc desc"])  # doctest: +SKIP

    Columns: run_id, experiment_id, name, status, parent_id, start_time, end_time,
    created_by, then ``metrics.<key>`` (latest values), ``params.<key>``, ``tags.<key>``.
    The next page: ``output="table"`` and pass its ``next_page_token`` back.
    """
    if output not in {"pandas", "table"}:
        raise InvalidInput("output must be 'pandas' or 'table'", field="output")
    table = call(
        s.SEARCH_RUNS,
        svc.search_runs,
        project=project,
        experiments=[experiments] if isinstance(experiments, str) else experiments,
        filter=filter,
        order_by=[order_by] if isinstance(order_by, str) else order_by,
        max_results=max_results,
        page_token=page_token,
        include_deleted=include_deleted,
    )
    return table if output == "table" else table.to_pandas()
