"""SDK functions of the data area; embedded or remote by ``PLINTH_URI``.

Embedded, the calls run the services in-process and reads stream straight from the Delta
tables. Remote, a file is uploaded as it is (streamed; the server parses it, so errors
name the file and line the same way), in-memory data and folders go as an Arrow IPC
stream, and reads come back as an Arrow IPC stream.
"""

from __future__ import annotations

import io
import json
import os
import warnings
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from plinth.client.backend import current_backend
from plinth.core.ops import call
from plinth.data import schemas as s
from plinth.data import service as svc

__all__ = [
    "diff",
    "get_dataset",
    "get_version",
    "ingest",
    "lineage",
    "list_datasets",
    "list_versions",
    "profile",
    "quality_results",
    "quarantine",
    "read",
    "read_batches",
    "record_lineage",
    "split",
    "tag",
    "untag",
    "validate",
]

UPLOAD_CHUNK = 1 << 20


class DataQualityWarning(UserWarning):
    """An ingest with ``on_failure="warn"`` wrote a version that failed expectations."""


def _active_run_id(run_id: str | None) -> str | None:
    """An explicit ``run_id``, else the tracking area's active run when it has one."""
    if run_id is not None:
        return run_id
    try:
        import plinth.tracking as tracking
    except ImportError:
        return None
    active = getattr(tracking, "active_run", None)
    if active is None:
        return None
    try:
        run = active()
    except Exception:
        return None
    return getattr(run, "id", None) if run is not None else None


def ingest(
    name: str,
    source: Any,
    mode: s.Mode = "append",
    tags: list[str] | None = None,
    allow_breaking: bool = False,
    on_bad_lines: s.OnBadLines = "error",
    expectations: Any = None,
    on_failure: s.OnFailure = "reject",
    description: str | None = None,
    format: str | None = None,  # noqa: A002
    run_id: str | None = None,
    profile: bool = True,
    project: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> s.IngestResult:
    """Write ``source`` as the next version of dataset ``name``.

    ``source`` is a CSV, Parquet, JSON lines or Arrow file, a folder of such files, a
    pandas or polars DataFrame, or an Arrow table / record batch / RecordBatchReader.

    >>> import pandas as pd, plinth
    >>> df = pd.DataFrame({"customer_id": [1, 2, 3], "tenure": [5, 40, 12]})
    >>> plinth.data.ingest("customers", df, tags=["first"]).version.ref
    'datasets:/customers/1'
    """
    from plinth.data.quality import as_suite

    backend = current_backend()
    run_id = _active_run_id(run_id)
    suite = as_suite(expectations) if expectations is not None else None
    options: dict[str, Any] = {
        "mode": mode,
        "tags": tags,
        "allow_breaking": allow_breaking,
        "on_bad_lines": on_bad_lines,
        "on_failure": on_failure,
        "description": description,
        "run_id": run_id,
        "profile": profile,
    }
    if not backend.remote:
        from plinth.data.ingestion import ingest as ingest_service

        result = backend.call(
            s.INGEST,
            ingest_service,
            project=project,
            name=name,
            source=source,
            expectations=suite,
            format=format,
            progress=progress,
            **options,
        )
    else:
        result = _remote_ingest(backend, name, source, format, suite, options, project, progress)
    if result.validation is not None and not result.validation.success:
        failed = ", ".join(r.label for r in result.validation.failed)
        warnings.warn(
            f"{result.version.ref} failed expectations: {failed}", DataQualityWarning, stacklevel=2
        )
    return result  # type: ignore[no-any-return]


def _remote_ingest(
    backend: Any,
    name: str,
    source: Any,
    format: str | None,  # noqa: A002
    suite: s.ExpectationSuite | None,
    options: dict[str, Any],
    project: str | None,
    progress: Callable[[int], None] | None,
) -> s.IngestResult:
    from plinth.core.errors import InvalidInput
    from plinth.data.ingestion import ingest_stream
    from plinth.data.sources import detect_format, open_source

    params = {k: v for k, v in options.items() if v is not None}
    params["name"] = name
    if suite is not None:
        params["suite"] = suite.model_dump_json(exclude_defaults=True)
    if isinstance(source, str | os.PathLike) and Path(source).is_file():
        path = Path(source)
        params["format"] = format or detect_format(path.name)
        params["filename"] = path.name
        with path.open("rb") as fh:
            return backend.upload(  # type: ignore[no-any-return]
                s.INGEST,
                ingest_stream,
                project=project,
                content=_file_chunks(fh, progress),
                **params,
            )
    if options.get("on_bad_lines") == "quarantine":
        raise InvalidInput(
            "on_bad_lines='quarantine' needs a single CSV file when the SDK is remote",
            field="on_bad_lines",
        )
    opened = open_source(source, format=format)
    params["format"] = "arrow"
    params["filename"] = "stream.arrow"
    try:
        return backend.upload(  # type: ignore[no-any-return]
            s.INGEST,
            ingest_stream,
            project=project,
            content=_ipc_chunks(opened.reader, progress),
            **params,
        )
    finally:
        opened.close()


def _file_chunks(fh: Any, progress: Callable[[int], None] | None) -> Iterator[bytes]:
    sent = 0
    while chunk := fh.read(UPLOAD_CHUNK):
        sent += len(chunk)
        if progress is not None:
            progress(sent)
        yield chunk


def _ipc_chunks(
    reader: pa.RecordBatchReader, progress: Callable[[int], None] | None
) -> Iterator[bytes]:
    rows = 0

    def counted() -> Iterator[pa.RecordBatch]:
        nonlocal rows
        for batch in reader:
            rows += batch.num_rows
            if progress is not None:
                progress(rows)
            yield batch

    return svc.ipc_stream(pa.RecordBatchReader.from_batches(reader.schema, counted()))


class _ChunkReader(io.RawIOBase):
    """A read-only file over an iterator of byte chunks (for pyarrow's IPC reader)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        while not self._buffer:
            try:
                self._buffer = next(self._chunks)
            except StopIteration:
                return 0
        n = min(len(target), len(self._buffer))
        target[:n] = self._buffer[:n]
        self._buffer = self._buffer[n:]
        return n


def _read_params(
    ref: str,
    columns: list[str] | None,
    filter: Any,  # noqa: A002
    as_of: datetime | None,
    run_id: str | None,
    **split: Any,
) -> dict[str, Any]:
    params: dict[str, Any] = {
        "ref": ref,
        "columns": columns,
        "filter": filter,
        "as_of": as_of,
        "run_id": _active_run_id(run_id),
    }
    params.update({k: v for k, v in split.items() if v is not None})
    return params


def _open(
    op: s.Operation, fn: Callable[..., Any], project: str | None, params: dict[str, Any]
) -> pa.RecordBatchReader:
    backend = current_backend()
    if not backend.remote:
        _info, reader = backend.call(op, fn, project=project, **params)
        return reader  # type: ignore[no-any-return]
    wire = {k: v for k, v in params.items() if v is not None}
    if "filter" in wire:
        wire["filter"] = json.dumps(wire["filter"], default=str)
    if isinstance(wire.get("as_of"), datetime):
        wire["as_of"] = wire["as_of"].isoformat()
    return pa.ipc.open_stream(
        io.BufferedReader(_ChunkReader(backend.download(op, fn, project=project, **wire)))
    )


def read_batches(
    ref: str,
    columns: list[str] | None = None,
    filter: Any = None,  # noqa: A002
    as_of: datetime | None = None,
    run_id: str | None = None,
    project: str | None = None,
) -> pa.RecordBatchReader:
    """Stream a dataset version as Arrow record batches (bounded memory).

    ``filter`` is a list of ``(column, op, value)`` that must all hold, ops ``=``, ``!=``,
    ``<``, ``<=``, ``>``, ``>=``, ``in``, ``not in``, ``is null``, ``is not null``; it and
    ``columns`` are pushed down into the Parquet scan.
    """
    return _open(s.READ, svc.open_read, project, _read_params(ref, columns, filter, as_of, run_id))


def read(
    ref: str,
    columns: list[str] | None = None,
    filter: Any = None,  # noqa: A002
    as_of: datetime | None = None,
    run_id: str | None = None,
    project: str | None = None,
) -> pa.Table:
    """A dataset version as an Arrow table (``.to_pandas()``, ``polars.from_arrow``).

    >>> import plinth
    >>> plinth.data.read("datasets:/customers@first", columns=["tenure"]).num_rows
    3
    """
    return read_batches(ref, columns, filter, as_of, run_id, project).read_all()


def split(
    ref: str,
    key: str,
    train: float = 0.8,
    validation: float = 0.0,
    salt: str = "",
    columns: list[str] | None = None,
    filter: Any = None,  # noqa: A002
    run_id: str | None = None,
    project: str | None = None,
) -> dict[str, pa.Table]:
    """Split a version by hashing ``key``: ``{"train", ["validation"], "test"}`` tables.

    A row's split depends only on its key (and ``salt``), so the same customer stays in
    the same split in every version (see :mod:`plinth.data.splitting`).
    """
    from plinth.data.splitting import split_ranges

    fractions = {"train": train}
    if validation:
        fractions["validation"] = validation
    rest = 1.0 - sum(fractions.values())
    if rest > 1e-9:
        fractions["test"] = rest
    out = {}
    for part, (low, high) in split_ranges(fractions).items():
        params = _read_params(
            ref,
            columns,
            filter,
            None,
            run_id,
            split_key=key,
            split_from=low,
            split_to=high,
            split_salt=salt,
        )
        out[part] = _open(s.READ, svc.open_read, project, params).read_all()
    return out


def quarantine(name: str, project: str | None = None) -> pa.Table:
    """Rows that ingests set aside with ``on_bad_lines="quarantine"``."""
    return _open(s.QUARANTINE, svc.open_quarantine, project, {"name": name}).read_all()


def list_datasets(project: str | None = None) -> list[s.DatasetInfo]:
    return call(s.LIST_DATASETS, svc.list_datasets, project=project)


def get_dataset(name: str, project: str | None = None) -> s.DatasetDetail:
    return call(s.GET_DATASET, svc.dataset_detail, project=project, name=name)


def list_versions(name: str, limit: int = 1000, project: str | None = None) -> list[s.VersionInfo]:
    return call(s.LIST_VERSIONS, svc.list_versions, project=project, name=name, limit=limit)


def get_version(
    ref: str, as_of: datetime | None = None, project: str | None = None
) -> s.VersionInfo:
    return call(s.GET_VERSION, svc.get_version, project=project, ref=ref, as_of=as_of)


def tag(
    name: str, tag: str, version: int | None = None, force: bool = False, project: str | None = None
) -> s.VersionInfo:
    """Pin ``tag`` to a version of ``name`` (the latest by default)."""
    return call(
        s.TAG_VERSION,
        svc.tag_version,
        project=project,
        name=name,
        tag=tag,
        version=version,
        force=force,
    )


def untag(name: str, tag: str, project: str | None = None) -> None:
    call(s.DELETE_TAG, svc.untag, project=project, name=name, tag=tag)


def profile(ref: str, refresh: bool = False, project: str | None = None) -> s.Profile:
    return call(s.PROFILE, svc.profile, project=project, ref=ref, refresh=refresh)


def validate(ref: str, suite: Any, project: str | None = None) -> s.ValidationResult:
    """Validate a version against a suite (Python, dict or YAML); the result is stored."""
    from plinth.data.quality import as_suite

    return call(s.VALIDATE, svc.validate, project=project, ref=ref, suite=as_suite(suite))


def quality_results(
    name: str, version: int | None = None, limit: int = 100, project: str | None = None
) -> list[s.ValidationResult]:
    return call(
        s.QUALITY_RESULTS,
        svc.quality_results,
        project=project,
        name=name,
        version=version,
        limit=limit,
    )


def diff(a: str, b: str, project: str | None = None) -> s.DatasetDiff:
    """Schema and row-count changes from version ``a`` to version ``b``."""
    return call(s.DIFF, svc.diff, project=project, a=a, b=b)


def lineage(
    ref: str, direction: s.Direction = "both", depth: int = 20, project: str | None = None
) -> s.LineageGraph:
    """What ``ref`` was made from (upstream) and what used it (downstream)."""
    from plinth.data.lineage_graph import lineage as lineage_service

    return call(
        s.LINEAGE, lineage_service, project=project, ref=ref, direction=direction, depth=depth
    )


def record_lineage(
    src: str, dst: str, kind: str = "derived", project: str | None = None
) -> s.LineageEdgeInfo:
    from plinth.data.lineage_graph import record_lineage as record_service

    return call(s.RECORD_LINEAGE, record_service, project=project, src=src, dst=dst, kind=kind)
