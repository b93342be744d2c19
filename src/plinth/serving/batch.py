"""Batch inference: score a dataset version with a model version, written as a new dataset version.

>>> import plinth
>>> result = plinth.serving.predict_batch(                                  # doctest: +SKIP
...     "models:/churn@champion", "datasets:/customers@2026-11", "churn_scores")
>>> result.output.ref                                                       # doctest: +SKIP
'datasets:/churn_scores/1'

The input version streams as Arrow record batches (bounded memory) through the model and
into one Delta commit of the output dataset; lineage records the model version and the
input version as the output version's sources. Every check that can fail on the input
(unknown model or dataset, a column the model needs, an output whose columns differ) runs
on the first batch, before anything is written; an error later in the stream leaves the
output dataset as it was (the Delta commit only becomes visible when it is complete).

Executors: ``local`` scores in this process (``workers=1``) or in ``workers`` processes that
each load the model once; ``ray`` reads the same Parquet files with Ray Data and scores them
in ``workers`` actors that each load the model once.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from plinth.core.errors import Conflict, InvalidInput, NotFound, PlinthError
from plinth.data.schemas import VersionInfo

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["BatchPlan", "BatchPrediction", "plan_batch", "predict_batch"]

EXECUTORS = ("local", "ray")
DEFAULT_BATCH_SIZE = 65_536
PREDICTION = "prediction"


class BatchPrediction(BaseModel):
    """What one batch inference wrote: the output version, from which model and input."""

    output: VersionInfo
    model: str  # the model version, pinned: models:/<name>/<version> or runs:/<id>/<path>
    input: str  # the input version, pinned: datasets:/<name>/<version>
    rows: int
    seconds: float
    rows_per_second: float
    executor: str
    workers: int


# --- scoring: the same code in this process, in worker processes and in Ray actors -------------
class Scorer:
    """Loads the model once; ``__call__`` turns a batch of input rows into output rows."""

    def __init__(
        self, folder: str, trust: bool, features: list[str], keep: list[str], where: str, model: Any = None
    ) -> None:
        from plinth.models.packaging import load_folder

        self.model = model if model is not None else load_folder(Path(folder), trust=trust, where=where, verify=False)
        self.features = features
        self.keep = keep
        self.where = where

    def __call__(self, batch: pa.RecordBatch | pa.Table) -> pa.Table:
        import pyarrow as pa

        frame = batch.select(self.features).to_pandas()
        try:
            result = self.model.predict(frame)
        except PlinthError:
            raise
        except Exception as exc:
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise InvalidInput(f"model {self.where} failed on a batch of the input: {message}", field="input") from None
        names, arrays = prediction_columns(result, batch.num_rows)
        clash = sorted(set(names) & set(self.keep))
        if clash:
            raise InvalidInput(
                f"the model's output column {clash[0]!r} is also an input column kept in the output: "
                "choose other keep_columns",
                field="keep_columns",
            )
        kept = [batch.column(name) for name in self.keep]
        return pa.Table.from_arrays([*kept, *arrays], names=[*self.keep, *names])


def prediction_columns(result: Any, rows: int) -> tuple[list[str], list[Any]]:
    """The output columns of a ``predict()`` result: ``prediction`` for one value per row,
    ``prediction_0..k`` for k values per row, a DataFrame's own columns."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    if isinstance(result, pd.DataFrame):
        table = pa.Table.from_pandas(result, preserve_index=False)
        names, arrays = [str(n) for n in table.column_names], list(table.columns)
    else:
        values = np.asarray(result)
        if values.ndim == 1:
            names, arrays = [PREDICTION], [pa.array(values)]
        elif values.ndim == 2:
            names = [f"{PREDICTION}_{i}" for i in range(values.shape[1])]
            arrays = [pa.array(values[:, i]) for i in range(values.shape[1])]
        else:
            raise InvalidInput(
                f"the model returned a {values.ndim}-dimensional result: batch inference writes one or two dimensions",
                field="model",
            )
    if any(len(a) != rows for a in arrays):
        raise InvalidInput(f"the model returned {len(arrays[0])} predictions for {rows} rows", field="model")
    return names, arrays


def rebatch(batches: Iterator[pa.RecordBatch], size: int) -> Iterator[pa.Table]:
    """The same rows in tables of ``size`` rows (the last one shorter)."""
    import pyarrow as pa

    pending: list[pa.RecordBatch] = []
    count = 0
    for batch in batches:
        while batch.num_rows:
            take = min(size - count, batch.num_rows)
            pending.append(batch.slice(0, take))
            batch = batch.slice(take)
            count += take
            if count == size:
                yield pa.Table.from_batches(pending)
                pending, count = [], 0
    if pending:
        yield pa.Table.from_batches(pending)


_worker_scorer: Scorer | None = None


def _start_worker(*args: Any) -> None:
    global _worker_scorer
    _worker_scorer = Scorer(*args)


def _score_in_worker(payload: bytes) -> pa.Table:
    import pyarrow as pa

    assert _worker_scorer is not None, "the worker was not started"
    return _worker_scorer(pa.ipc.open_stream(payload).read_all())


def _ipc(table: pa.Table) -> bytes:
    """The rows of ``table`` as an Arrow IPC stream: a pickled slice would carry its whole parent buffer."""
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def _score_in_processes(tables: Iterator[pa.Table], workers: int, scorer_args: tuple[Any, ...]) -> Iterator[pa.Table]:
    """Score in ``workers`` processes, in input order, with at most two batches per worker in flight."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context("spawn")  # no fork of a process holding threads and connections
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker, initargs=scorer_args) as pool:
        window: deque[Future[pa.Table]] = deque()
        for table in tables:
            window.append(pool.submit(_score_in_worker, _ipc(table)))
            if len(window) >= 2 * workers:
                yield window.popleft().result()
        while window:
            yield window.popleft().result()


@contextmanager
def _ray_session(workers: int) -> Iterator[None]:
    """Ray as it is (a cluster at RAY_ADDRESS, or one already started); else a local one, on loopback,
    with a CPU for the read tasks beside the ``workers`` actors (else the actors starve the reads)."""
    import ray

    if ray.is_initialized():
        yield
        return
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    if os.environ.get("RAY_ADDRESS"):
        ray.init(log_to_driver=False)
    else:
        ray.init(num_cpus=max(os.cpu_count() or 1, workers + 1), include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


def _score_on_ray(
    files: list[str], columns: list[str], batch_size: int, workers: int, scorer_args: tuple[Any, ...]
) -> Iterator[pa.Table]:
    import pyarrow as pa

    try:
        import ray.data
    except ImportError:
        raise InvalidInput("executor 'ray' needs Ray Data: pip install 'plinth-ml[ray]'", field="executor") from None
    with _ray_session(workers):
        options = ray.data.DataContext.get_current()
        options.execution_options.preserve_order = True
        options.enable_progress_bars = False  # the caller shows progress
        dataset = (
            ray.data.read_parquet(files)
            .select_columns(columns)
            .map_batches(
                Scorer,
                fn_constructor_args=scorer_args,
                batch_size=batch_size,
                batch_format="pyarrow",
                compute=ray.data.ActorPoolStrategy(size=workers),
            )
        )
        for batch in dataset.iter_batches(batch_size=None, batch_format="pyarrow"):
            yield batch if isinstance(batch, pa.Table) else pa.Table.from_pandas(batch, preserve_index=False)


# --- planning: everything checked before a row is written ---------------------------------------
def _resolve_model(uri: str, project: str | None) -> tuple[str, str, Path]:
    """(pinned reference, its lineage node, the verified local folder) of a model reference."""
    from plinth.models.sdk import fetch, resolve_reference

    if not isinstance(uri, str) or ":/" not in uri:
        raise InvalidInput(
            f"model {uri!r}: give a models:/<name>/<version>, models:/<name>@<alias> or runs:/<id>/<path> "
            "reference (lineage needs one)",
            field="model",
        )
    ref, version = resolve_reference(uri, project, field="model")
    if version is not None:
        pinned = f"models:/{version.name}/{version.version}"
        return pinned, pinned, fetch(pinned, project)
    return uri, f"runs:/{ref.name}", fetch(uri, project)


def _output_name(output: str) -> str:
    from plinth.core.names import validate_name
    from plinth.core.uris import parse_reference

    if isinstance(output, str) and ":/" in output:
        ref = parse_reference(output, {"datasets"})
        if ref.version is not None or ref.alias is not None:
            raise InvalidInput(
                f"output {output!r} names a version: give a dataset name, the output becomes its next version",
                field="output",
            )
        output = ref.name
    return validate_name(output, "dataset")


def _columns(
    names: list[str], signature: Any, keep_columns: list[str] | str | None, where: str
) -> tuple[list[str], list[str]]:
    """(the model's input columns, the input columns kept in the output), checked against ``names``."""
    if isinstance(keep_columns, str) and keep_columns not in {"all", "none"}:
        keep_columns = [c.strip() for c in keep_columns.split(",") if c.strip()]
    if isinstance(keep_columns, list):
        for name in keep_columns:
            if name not in names:
                raise InvalidInput(
                    f"keep column {name!r} is not a column of {where} ({', '.join(names)})", field="keep_columns"
                )
    if signature is not None and signature.is_columns:
        features = signature.column_names
        for spec in signature.inputs:
            if spec.name not in names:
                raise InvalidInput(
                    f"{where} has no column {spec.name!r} that the model needs (expected {spec.type})",
                    field=spec.name,
                    expected=spec.type,
                )
    else:  # a tensor model, or one without a signature: every column that is not kept goes in
        kept = keep_columns if isinstance(keep_columns, list) else []
        features = [n for n in names if n not in kept]
    if keep_columns == "all":
        keep = list(names)
    elif keep_columns == "none":
        keep = []
    elif keep_columns is None:  # what is not a feature: keys, labels, timestamps
        keep = [n for n in names if n not in set(features)]
    else:
        keep = list(keep_columns)
    if not features:
        raise InvalidInput(f"no input column of {where} is left for the model", field="keep_columns")
    return features, keep


def _check_output(name: str, schema: pa.Schema, project: str | None) -> bool:
    """Whether dataset ``name`` exists; Conflict when its columns are not the ones we would write."""
    import plinth.data
    from plinth.data.evolution import arrow_columns

    try:
        detail = plinth.data.get_dataset(name, project=project)
    except NotFound:
        return False
    if detail.latest is None:
        return True
    have = {c.name: c.type for c in detail.latest.columns}
    want = {c.name: c.type for c in arrow_columns(schema)}
    if have != want:
        differences = [
            f"{n}: {have.get(n, 'absent')} -> {want.get(n, 'absent')}"
            for n in dict.fromkeys([*have, *want])
            if have.get(n) != want.get(n)
        ]
        raise Conflict(
            f"output dataset {name!r} exists with other columns ({'; '.join(differences)}): "
            "write to a new dataset name (nothing was written)",
            dataset=name,
        )
    return True


def _version_files(ctx: Any, ref: str) -> list[str] | None:
    """The plain Parquet files of a dataset version on a local table store (None otherwise)."""
    from plinth.data import delta
    from plinth.data.service import resolve

    ctx.require("read")
    dataset, version = resolve(ctx, ref)
    dt = delta.open_table(ctx.stores.tables, dataset.location, version.delta_version)
    return delta._plain_local_files(dt)


def _ray_files(ref: str, project: str | None) -> list[str]:
    from plinth.client.backend import current_backend

    backend = current_backend()
    if backend.remote:
        raise InvalidInput(
            "executor 'ray' reads the table files itself: run it embedded (PLINTH_URI unset) where the table store is",
            field="executor",
        )
    files = backend.call(None, _version_files, project=project, ref=ref)  # type: ignore[arg-type]
    if not files:
        raise InvalidInput(
            f"executor 'ray' reads plain Parquet files, and {ref} is not stored as such (remote store, "
            "partitions or deletion vectors): use executor 'local'",
            field="executor",
        )
    return list(files)


def _check_options(executor: str, batch_size: int, workers: int) -> None:
    if executor not in EXECUTORS:
        raise InvalidInput(f"executor must be one of {', '.join(EXECUTORS)}, not {executor!r}", field="executor")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidInput(f"batch_size must be a positive number of rows, not {batch_size!r}", field="batch_size")
    if not isinstance(workers, int) or workers < 1:
        raise InvalidInput(f"workers must be a positive number, not {workers!r}", field="workers")


# --- the plan: every check done, the first batch scored, nothing written yet --------------------
@dataclass(repr=False, eq=False)
class BatchPlan:
    """A checked batch inference, ready to run: :func:`plan_batch` makes it, :meth:`run` writes."""

    started: float  # perf_counter when planning began: the job's time includes the checks
    name: str  # the output dataset
    pinned: str  # the model version
    node: str  # the model's lineage node
    where: str  # the input version, pinned
    total_rows: int | None
    needed: list[str]  # the input columns read
    scorer_args: tuple[Any, ...]
    executor: str
    batch_size: int
    workers: int
    keep_columns: list[str] | str | None
    trust: bool
    tags: list[str] | None
    project: str | None
    reader: Any  # the input's record batches, the first one read
    tables: Iterator[pa.Table]
    first: pa.Table
    scorer: Scorer
    schema: pa.Schema  # of the output
    exists: bool  # whether the output dataset exists

    def __repr__(self) -> str:
        return f"BatchPlan(model={self.pinned!r}, input={self.where!r}, output={self.name!r})"

    def record(self) -> dict[str, Any]:
        """The job record of this plan (see :func:`plinth.serving.jobs.record_job`)."""
        options = {
            "executor": self.executor,
            "workers": self.workers,
            "batch_size": self.batch_size,
            "keep_columns": self.keep_columns,
            "tags": self.tags,
        }
        return {
            "model": self.pinned,
            "input": self.where,
            "output": self.name,
            "options": options,
            "total_rows": self.total_rows,
            "trust": self.trust,
        }

    def close(self) -> None:
        self.reader.close()

    def run(self, progress: Callable[[int], None] | None = None) -> BatchPrediction:
        """Score every row and write the output version, with lineage."""
        import pyarrow as pa

        import plinth.data

        schema, project = self.schema, self.project
        if self.executor == "ray":
            self.reader.close()
            scored = _score_on_ray(
                _ray_files(self.where, project), self.needed, self.batch_size, self.workers, self.scorer_args
            )
        elif self.workers > 1:
            scored = _score_in_processes(_chain(self.first, self.tables), self.workers, self.scorer_args)
        else:
            scored = (self.scorer(t) for t in _chain(self.first, self.tables))

        counted = {"rows": 0}

        def batches() -> Iterator[pa.RecordBatch]:
            for table in scored:
                if table.schema != schema:
                    try:
                        table = table.cast(schema)
                    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                        raise InvalidInput(
                            f"the model's output changed type within the input: {table.schema} after {schema}",
                            field="model",
                        ) from None
                counted["rows"] += table.num_rows
                if progress is not None:
                    progress(counted["rows"])
                yield from table.to_batches()

        result = plinth.data.ingest(
            self.name,
            pa.RecordBatchReader.from_batches(schema, batches()),
            mode="overwrite" if self.exists else "append",
            tags=self.tags,
            description=f"predictions of {self.pinned} on {self.where}",
            project=project,
        )
        out = result.version.ref
        plinth.data.record_lineage(self.node, out, kind="predicted", project=project)
        plinth.data.record_lineage(self.where, out, kind="scored", project=project)
        seconds = time.perf_counter() - self.started
        return BatchPrediction(
            output=result.version,
            model=self.pinned,
            input=self.where,
            rows=counted["rows"],
            seconds=round(seconds, 3),
            rows_per_second=round(counted["rows"] / seconds, 1) if seconds > 0 else 0.0,
            executor=self.executor,
            workers=self.workers,
        )


def plan_batch(
    model: str,
    input: str,  # noqa: A002 - the word of the CLI option
    output: str,
    executor: str = "local",
    batch_size: int = DEFAULT_BATCH_SIZE,
    workers: int = 1,
    keep_columns: list[str] | str | None = None,
    trust: bool = False,
    tags: list[str] | None = None,
    project: str | None = None,
) -> BatchPlan:
    """Check everything that can be checked before a row is written (see :func:`predict_batch`)."""
    import plinth.data
    from plinth.models.packaging import load_folder

    started = time.perf_counter()
    _check_options(executor, batch_size, workers)
    name = _output_name(output)
    pinned, node, folder = _resolve_model(model, project)
    source = plinth.data.get_version(input, project=project)
    where = source.ref
    loaded = load_folder(folder, trust=trust, where=pinned, verify=False)
    features, keep = _columns([c.name for c in source.columns], loaded.signature, keep_columns, where)
    needed = list(dict.fromkeys([*features, *keep]))
    scorer_args = (str(folder), trust, features, keep, pinned)

    # The first batch is scored here: it checks the types against the signature and gives the
    # output's schema, which must match an existing output dataset before anything is written.
    reader = plinth.data.read_batches(where, columns=needed, project=project)
    try:
        tables = rebatch(iter(reader), batch_size)
        first = next(tables, None)
        if first is None:
            raise InvalidInput(f"{where} has no rows to score", field="input")
        scorer = Scorer(*scorer_args, model=loaded)
        head = scorer(first.slice(0, min(first.num_rows, 1000)))
        exists = _check_output(name, head.schema, project)
    except BaseException:
        reader.close()
        raise
    return BatchPlan(
        started=started,
        name=name,
        pinned=pinned,
        node=node,
        where=where,
        total_rows=source.row_count,
        needed=needed,
        scorer_args=scorer_args,
        executor=executor,
        batch_size=batch_size,
        workers=workers,
        keep_columns=keep_columns,
        trust=trust,
        tags=tags,
        project=project,
        reader=reader,
        tables=tables,
        first=first,
        scorer=scorer,
        schema=head.schema,
        exists=exists,
    )


# --- the SDK function ---------------------------------------------------------------------------
def predict_batch(
    model: str,
    input: str,  # noqa: A002 - the word of the CLI option
    output: str,
    executor: str = "local",
    batch_size: int = DEFAULT_BATCH_SIZE,
    workers: int = 1,
    keep_columns: list[str] | str | None = None,
    trust: bool = False,
    tags: list[str] | None = None,
    project: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> BatchPrediction:
    """Score dataset version ``input`` with ``model`` and write the result as the next version of
    dataset ``output``, with lineage from the model version and the input version.

    The output has the kept input columns and the prediction column(s): ``prediction`` when the
    model gives one value per row, ``prediction_0..k`` for several, a DataFrame's own columns.
    ``keep_columns``: ``None`` keeps the input columns the model does not read (keys, labels),
    ``"all"`` every input column, ``"none"`` none, or a list of names. ``progress`` is called
    with the number of rows scored so far.

    Every call is recorded as a batch job (:func:`plinth.serving.list_batch_jobs`). Embedded, it
    runs in this process; with ``PLINTH_URI`` set, the server runs it as the calling user and
    this call follows the job until it is done.

    >>> import plinth
    >>> plinth.serving.predict_batch("models:/iris/1", "datasets:/flowers@spring", "iris_scores",
    ...                              workers=2).rows                          # doctest: +SKIP
    150
    """
    from plinth.client.backend import current_backend
    from plinth.serving import jobs

    options: dict[str, Any] = {
        "executor": executor,
        "batch_size": batch_size,
        "workers": workers,
        "keep_columns": keep_columns,
        "trust": trust,
        "tags": tags,
    }
    backend = current_backend()
    if backend.remote:
        return _predict_on_server(backend, model, input, output, options, project, progress)
    plan = plan_batch(model, input, output, project=project, **options)
    try:
        job = backend.call(None, jobs.record_job, project=project, **plan.record())  # type: ignore[arg-type]
    except BaseException:
        plan.close()
        raise
    return jobs.run_job(plan, job, progress)


def _predict_on_server(
    backend: Any,
    model: str,
    input: str,  # noqa: A002
    output: str,
    options: dict[str, Any],
    project: str | None,
    progress: Callable[[int], None] | None,
) -> BatchPrediction:
    import plinth.data
    from plinth.core.errors import error_from_payload
    from plinth.serving import jobs
    from plinth.serving import schemas as s

    job = backend.call(
        s.SUBMIT_JOB, jobs.submit_job, project=project, model=model, input=input, output=output, **options
    )
    job = jobs.follow_job(backend, job, project, progress)
    if job.state == "failed":
        raise error_from_payload({"error": {"code": job.error_code, "message": job.error}}, 500)
    assert job.output_version is not None
    version = plinth.data.get_version(job.output_version, project=project)
    return BatchPrediction(
        output=version,
        model=job.model,
        input=job.input,
        rows=job.rows,
        seconds=job.seconds or 0.0,
        rows_per_second=job.rows_per_second,
        executor=job.executor,
        workers=job.workers,
    )


def _chain(first: pa.Table, rest: Iterator[pa.Table]) -> Iterator[pa.Table]:
    yield first
    yield from rest
