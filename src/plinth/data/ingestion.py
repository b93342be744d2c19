"""Ingest: write a source as a new version of a dataset.

The order of events is what keeps a failed or interrupted ingest invisible:

1. Under the dataset's write lock, read the dataset's state (its own short transaction,
   so no database lock is held while data moves).
2. Open the source (sniffed, parsed by DuckDB for CSV and JSON lines), compare its schema
   with the table's (:mod:`plinth.data.evolution`), refuse breaking changes unless
   ``allow_breaking``. With a suite and ``on_failure="reject"``, stage the rows locally
   and validate table + new rows before anything is written.
3. Write one Delta commit. A bad row or an interruption before the commit leaves the
   table at its previous version: Delta makes a commit visible only when it is complete.
4. Profile and (``on_failure="warn"``) validate the new version, set bad CSV rows aside.
5. Record the version, tags, results, lineage and events in one metadata transaction,
   committed before the lock is released. If anything after step 3 fails, the Delta table
   is restored to its previous version (a first ingest's table is removed), so the
   metadata and the table never disagree. A crash between 3 and 5 leaves an orphan Delta
   commit that the next ingest notices and rolls back.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from plinth.core.context import Context
from plinth.core.errors import Conflict, InvalidInput, PlinthError, Unavailable
from plinth.core.ids import new_id
from plinth.core.names import validate_name
from plinth.data import delta
from plinth.data.evolution import arrow_columns, compare, conform, delta_columns, describe
from plinth.data.profile_stream import StreamProfiler
from plinth.data.profiling import FirstPass
from plinth.data.schemas import (
    ColumnSchema,
    ExpectationSuite,
    IngestResult,
    SchemaChange,
    ValidationResult,
)
from plinth.data.sources import open_source
from plinth.data.tables import Dataset, DatasetTag, DatasetVersion

__all__ = ["ingest", "ingest_stream"]

Progress = Callable[[int], None]


@dataclass
class _State:
    project_id: str
    dataset_id: str | None = None
    location: str | None = None
    version: int = 0
    delta_version: int | None = None
    row_count: int = 0
    columns: list[ColumnSchema] = field(default_factory=list)
    tags: dict[str, int] = field(default_factory=dict)


def _read_state(ctx: Context, name: str) -> _State:
    with ctx.stores.db.session() as session:
        sub = ctx.with_session(session)
        state = _State(project_id=sub.project_id())
        dataset = session.execute(
            select(Dataset).where(Dataset.project_id == state.project_id, Dataset.name == name)
        ).scalar()
        if dataset is None:
            return state
        latest = session.execute(
            select(DatasetVersion).where(
                DatasetVersion.dataset_id == dataset.id,
                DatasetVersion.version == dataset.latest_version,
            )
        ).scalar_one()
        state.dataset_id, state.location, state.version = (
            dataset.id,
            dataset.location,
            latest.version,
        )
        state.delta_version, state.row_count = latest.delta_version, latest.row_count
        state.columns = [ColumnSchema.model_validate(c) for c in latest.table_schema]
        state.tags = {
            t: v
            for t, v in session.execute(
                select(DatasetTag.tag, DatasetVersion.version)
                .join(DatasetVersion, DatasetVersion.id == DatasetTag.version_id)
                .where(DatasetTag.dataset_id == dataset.id)
            ).all()
        }
        return state


def _check_options(name: str, mode: str, on_failure: str, tags: list[str]) -> None:
    validate_name(name, "dataset")
    if mode not in {"append", "overwrite"}:
        raise InvalidInput(f"mode must be 'append' or 'overwrite', not {mode!r}", field="mode")
    if on_failure not in {"reject", "warn"}:
        raise InvalidInput(
            f"on_failure must be 'reject' or 'warn', not {on_failure!r}", field="on_failure"
        )
    for tag in tags:
        validate_name(tag, "tag")
        if tag.isdigit():
            raise InvalidInput(
                f"tag {tag!r} would read as a version number; use a name with a letter",
                field="tags",
            )


def _counting(reader: pa.RecordBatchReader, progress: Progress) -> pa.RecordBatchReader:
    def batches() -> Iterator[pa.RecordBatch]:
        rows = 0
        for batch in reader:
            rows += batch.num_rows
            progress(rows)
            yield batch

    return pa.RecordBatchReader.from_batches(reader.schema, batches())


def _guard(reader: pa.RecordBatchReader, errors: list[BaseException]) -> pa.RecordBatchReader:
    """Remember an error raised inside the stream: deltalake wraps it in its own."""

    def batches() -> Iterator[pa.RecordBatch]:
        try:
            yield from reader
        except BaseException as exc:
            errors.append(exc)
            raise

    return pa.RecordBatchReader.from_batches(reader.schema, batches())


def ingest(
    ctx: Context,
    name: str,
    source: Any,
    mode: str = "append",
    tags: list[str] | None = None,
    allow_breaking: bool = False,
    on_bad_lines: str = "error",
    expectations: Any = None,
    on_failure: str = "reject",
    description: str | None = None,
    format: str | None = None,  # noqa: A002 - the word users know
    display_name: str | None = None,
    run_id: str | None = None,
    profile: bool = True,
    progress: Progress | None = None,
) -> IngestResult:
    """Write ``source`` as the next version of dataset ``name`` (created on first ingest)."""
    from plinth.data.lineage_graph import ensure_run
    from plinth.data.quality import as_suite, check_suite

    started = time.perf_counter()
    ctx.require("write")
    tags = list(dict.fromkeys(tags or []))
    _check_options(name, mode, on_failure, tags)
    suite = as_suite(expectations) if expectations is not None else None
    tables = ctx.stores.tables
    project_id = _read_state(ctx, name).project_id
    run = None
    if run_id is not None:
        with ctx.stores.db.session() as session:
            run = ensure_run(ctx.with_session(session), run_id)

    with delta.dataset_lock(ctx.stores.db, ctx.settings, f"{project_id}:{name}"):
        state = _read_state(ctx, name)
        for tag in tags:
            if tag in state.tags:
                raise Conflict(
                    f"tag {tag!r} of dataset {name!r} pins version {state.tags[tag]}; tag the "
                    "new version "
                    "afterwards with force=True to move it",
                    dataset=name,
                    tag=tag,
                )
        is_new = state.dataset_id is None
        dataset_id = state.dataset_id or new_id()
        location = state.location or tables.location(project_id, "datasets", dataset_id)
        if not is_new:
            _roll_back_orphans(tables, location, state)

        src = open_source(
            source,
            format=format,
            display_name=display_name,
            on_bad_lines=on_bad_lines,
            table_types={c.name: c.type for c in state.columns} or None,
        )
        staging: str | None = None
        errors = src.errors
        precheck: list[Any] | None = None
        profiler: StreamProfiler | None = None
        try:
            _check_columns(src.reader.schema.names)
            incoming = arrow_columns(src.reader.schema)
            changes = compare(state.columns, incoming) if not is_new else []
            breaking = [c for c in changes if c.breaking]
            if breaking and not allow_breaking:
                raise Conflict(
                    f"the source would change the schema of dataset {name!r}: "
                    f"{describe(changes)}; "
                    "pass allow_breaking=True to accept (nothing was written)",
                    dataset=name,
                    changes=[c.model_dump() for c in changes],
                )
            if mode == "append" and any(c.kind == "type_changed" for c in breaking):
                raise InvalidInput(
                    "an append cannot change a column's type "
                    f"({describe([c for c in breaking if c.kind == 'type_changed'])}); "
                    "use mode='overwrite' with allow_breaking=True",
                    field="mode",
                )
            reader, schema_mode = _plan_write(
                tables, location, state, src.reader, mode, is_new, changes, errors
            )
            if progress is not None:
                reader = _counting(reader, progress)
            reader = _guard(reader, errors)
            after = _columns_after(state.columns, incoming, mode, is_new, changes)
            if suite is not None:
                check_suite(suite, {c.name: c.type for c in after})
                if on_failure == "reject":
                    staging = tempfile.mkdtemp(prefix="plinth-stage-")
                    reader, precheck = _validate_staged(
                        ctx,
                        tables,
                        location,
                        state,
                        reader,
                        suite,
                        after,
                        mode,
                        is_new,
                        staging,
                        name,
                    )
            if profile and (is_new or mode == "overwrite"):
                # the new version holds exactly these rows: profile them on the way
                profiler = StreamProfiler(reader.schema, arrow_columns(reader.schema))
                reader = profiler.wrap(reader)
            new_delta = delta.write(
                tables,
                location,
                reader,
                mode="overwrite" if (mode == "overwrite" and not is_new) else "append",
                schema_mode=schema_mode,
                description=src.description,
            )
        except BaseException as exc:
            if profiler is not None:
                profiler.close()
            if is_new:
                delta.remove_table(tables, location)
            raise _translate_write_error(exc, errors, name) from None
        finally:
            src.close()
            if staging:
                shutil.rmtree(staging, ignore_errors=True)

        try:
            first = profiler.result() if profiler is not None else None
            return _record(
                ctx,
                name,
                state,
                is_new,
                dataset_id,
                location,
                new_delta,
                mode,
                changes,
                src,
                suite,
                precheck,
                on_failure,
                tags,
                description,
                run,
                profile,
                started,
                first,
            )
        except BaseException:
            if is_new:
                delta.remove_table(tables, location)
            elif state.delta_version is not None:
                delta.restore(tables, location, state.delta_version)
            raise


def _roll_back_orphans(tables: Any, location: str, state: _State) -> None:
    """A Delta commit newer than the recorded version is a crashed ingest's: undo it."""
    actual = delta.latest_delta_version(tables, location)
    if actual is not None and state.delta_version is not None and actual != state.delta_version:
        delta.restore(tables, location, state.delta_version)


def _check_columns(names: list[str]) -> None:
    if not names:
        raise InvalidInput("the source has no columns", field="source")
    seen: set[str] = set()
    for name in names:
        if not name.strip():
            raise InvalidInput("the source has a column without a name", field="source")
        if name.lower() in seen:
            raise InvalidInput(
                f"the source has column {name!r} twice (names are case-insensitive)",
                field="source",
            )
        seen.add(name.lower())


def _plan_write(
    tables: Any,
    location: str,
    state: _State,
    reader: pa.RecordBatchReader,
    mode: str,
    is_new: bool,
    changes: list[SchemaChange],
    errors: list[BaseException],
) -> tuple[pa.RecordBatchReader, str | None]:
    """The batches to write (cast to the table's types where lossless) and the schema mode."""
    if is_new:
        return reader, None
    breaking = any(c.breaking for c in changes)
    if mode == "overwrite" and breaking:
        return reader, "overwrite"
    dt = delta.open_table(tables, location, state.delta_version)
    reader = conform(reader, delta.table_arrow_schema(dt))
    widened = any(c.kind in {"added", "dropped"} for c in changes)
    return reader, ("merge" if widened else None)


def _columns_after(
    old: list[ColumnSchema],
    incoming: list[ColumnSchema],
    mode: str,
    is_new: bool,
    changes: list[SchemaChange],
) -> list[ColumnSchema]:
    if is_new or (mode == "overwrite" and any(c.breaking for c in changes)):
        return incoming
    names = {c.name for c in old}
    return [*old, *[c for c in incoming if c.name not in names]]


def _validate_staged(
    ctx: Context,
    tables: Any,
    location: str,
    state: _State,
    reader: pa.RecordBatchReader,
    suite: ExpectationSuite,
    after: list[ColumnSchema],
    mode: str,
    is_new: bool,
    staging: str,
    name: str,
) -> tuple[pa.RecordBatchReader, list[Any]]:
    """Stage the rows as local Parquet, validate what the table would become, then hand
    the staged rows on for the Delta write (or refuse, with nothing written)."""
    import pyarrow.dataset as pads

    from plinth.data.service import run_suite

    pads.write_dataset(
        reader, staging, format="parquet", existing_data_behavior="overwrite_or_ignore"
    )
    staged = pads.dataset(staging, format="parquet", schema=reader.schema)
    base = (
        None
        if (is_new or mode == "overwrite")
        else delta.open_table(tables, location, state.delta_version)
    )
    results = run_suite(ctx, base, after, suite, staged=staged)
    failed = [r for r in results if not r.success]
    if failed:
        summary = "; ".join(f"{r.label}: {r.message or 'failed'}" for r in failed)
        raise InvalidInput(
            f"dataset {name!r} was not changed: {len(failed)} of {len(results)} expectations "
            "failed "
            f"(suite {suite.name!r}): {summary}",
            field="expectations",
            results=[r.model_dump(mode="json") for r in results],
        )
    return staged.scanner().to_reader(), results


def _translate_write_error(
    exc: BaseException, errors: list[BaseException], name: str
) -> BaseException:
    if errors:
        first = errors[0]
        if isinstance(first, PlinthError) or not isinstance(first, Exception):
            return first
        return InvalidInput(f"cannot read the source: {first}", field="source")
    if isinstance(exc, PlinthError) or not isinstance(exc, Exception):
        return exc
    kind = type(exc).__name__
    message = str(exc).splitlines()[0] if str(exc) else kind
    if kind == "SchemaMismatchError":
        return Conflict(
            f"the source does not match the schema of dataset {name!r}: {message}", dataset=name
        )
    if kind in {
        "DeltaError",
        "DeltaProtocolError",
        "CommitFailedError",
        "TableNotFoundError",
        "OSError",
    }:
        return Unavailable(
            f"cannot write dataset {name!r} to the table store: {message}", dataset=name
        )
    if isinstance(exc, pa.ArrowException):
        return InvalidInput(f"cannot write the source: {message}", field="source")
    return exc


def _record(
    ctx: Context,
    name: str,
    state: _State,
    is_new: bool,
    dataset_id: str,
    location: str,
    new_delta: int,
    mode: str,
    changes: list[SchemaChange],
    src: Any,
    suite: ExpectationSuite | None,
    precheck: list[Any] | None,
    on_failure: str,
    tags: list[str],
    description: str | None,
    run: str | None,
    want_profile: bool,
    started: float,
    first: FirstPass | None = None,
) -> IngestResult:
    """Steps 4 and 5: profile, validate, quarantine, then the metadata transaction.

    ``first``: the profile's first pass, done on the batches while they were written (a
    version that holds exactly the written rows); else the profile scans the version."""
    from plinth.data import service
    from plinth.data.lineage_graph import add_edge
    from plinth.data.profiling import compute_profile
    from plinth.data.schemas import Profile

    tables = ctx.stores.tables
    version_no = state.version + 1
    dt = delta.open_table(tables, location, new_delta)
    columns = delta_columns(dt.schema())
    row_count = int(dt.count())
    rows_written = row_count if (is_new or mode == "overwrite") else row_count - state.row_count
    profile_json = None
    if want_profile:
        con = delta.duckdb_over(dt)
        try:
            bounds = delta.numeric_bounds(dt) if first is None else None
            rows, profiles, seconds = compute_profile(con, columns, bounds=bounds, first=first)
        finally:
            con.close()
        profile_json = Profile(
            dataset=name,
            version=version_no,
            row_count=rows,
            columns=profiles,
            computed_at=ctx.now(),
            seconds=seconds,
        ).model_dump(mode="json")
    results = precheck
    if suite is not None and results is None:
        results = service.run_suite(ctx, dt, columns, suite)
    rejects = src.rejected_rows()
    quarantined = rejects.num_rows if rejects is not None else 0
    if rejects is not None:
        _quarantine(ctx, state, dataset_id, version_no, rejects)

    mode_label = "create" if is_new else mode
    with ctx.stores.db.session() as session:
        sub = ctx.with_session(session)
        now = sub.now()
        if is_new:
            dataset = Dataset(
                id=dataset_id,
                project_id=state.project_id,
                name=name,
                description=description or "",
                location=location,
                latest_version=version_no,
                created_at=now,
                created_by=ctx.actor.name,
                updated_at=now,
            )
            session.add(dataset)
            try:
                session.flush()
            except IntegrityError:
                raise Conflict(
                    f"dataset {name!r} was created meanwhile; ingest again", dataset=name
                ) from None
            sub.emit("dataset.create", f"datasets:/{name}", {"location": location})
        else:
            dataset = session.get_one(
                Dataset, dataset_id, with_for_update=not ctx.stores.db.is_sqlite
            )
            if dataset.latest_version != state.version:
                raise Conflict(
                    f"dataset {name!r} changed while ingesting; ingest again", dataset=name
                )
            dataset.latest_version = version_no
            dataset.updated_at = now
            if description:
                dataset.description = description
        version = DatasetVersion(
            id=new_id(),
            dataset_id=dataset_id,
            version=version_no,
            delta_version=new_delta,
            mode=mode_label,
            table_schema=[c.model_dump() for c in columns],
            schema_changes=[c.model_dump() for c in changes],
            row_count=row_count,
            rows_written=rows_written,
            rows_quarantined=quarantined,
            source=src.description[:2000],
            profile=profile_json,
            created_at=now,
            created_by=ctx.actor.name,
        )
        session.add(version)
        session.flush()
        ref = f"datasets:/{name}/{version_no}"
        sub.emit(
            "dataset.version",
            ref,
            {
                "delta_version": new_delta,
                "mode": mode_label,
                "rows": row_count,
                "rows_written": rows_written,
                "quarantined": quarantined,
                "schema_changes": [str(c) for c in changes],
            },
        )
        for tag in tags:
            session.add(
                DatasetTag(
                    id=new_id(),
                    dataset_id=dataset_id,
                    version_id=version.id,
                    tag=tag,
                    created_at=now,
                    created_by=ctx.actor.name,
                )
            )
            sub.emit("dataset.tag", f"datasets:/{name}@{tag}", {"version": version_no})
        validation: ValidationResult | None = None
        if suite is not None and results is not None:
            validation = service.store_validation(sub, dataset, version, suite, results, "ingest")
        if run is not None:
            add_edge(sub, run, ref, "output")
        session.flush()
        info = service.version_info(sub, dataset, version)
    return IngestResult(
        version=info,
        validation=validation,
        quarantined=quarantined,
        seconds=round(time.perf_counter() - started, 3),
    )


def _quarantine(
    ctx: Context, state: _State, dataset_id: str, version_no: int, rejects: pa.Table
) -> None:
    from deltalake import write_deltalake

    tables = ctx.stores.tables
    location = tables.location(state.project_id, "datasets", dataset_id, suffix="quarantine")
    n = rejects.num_rows
    table = pa.table(
        {
            "version": pa.array([version_no] * n, pa.int64()),
            "file": rejects.column("file").cast(pa.string()),
            "line": rejects.column("line").cast(pa.int64()),
            "error": rejects.column("error").cast(pa.string()),
            "raw": rejects.column("raw").cast(pa.string()),
        }
    )
    tables.prepare(location)
    write_deltalake(location, table, mode="append", storage_options=tables.storage_options)


def ingest_stream(
    ctx: Context,
    name: str,
    content: Any,
    format: str,  # noqa: A002
    filename: str | None = None,
    **options: Any,
) -> IngestResult:
    """Ingest uploaded bytes: spooled to a local temporary file, then read like a file."""
    from plinth.data.sources import FORMATS

    ctx.require("write")
    if format not in FORMATS:
        raise InvalidInput(
            f"format must be one of {', '.join(FORMATS)}, not {format!r}", field="format"
        )
    shown = filename or f"upload.{format}"
    if "/" in shown or "\\" in shown or len(shown) > 255:
        raise InvalidInput("filename must be a plain file name", field="filename")
    folder = tempfile.mkdtemp(prefix="plinth-upload-")
    try:
        path = f"{folder}/upload"
        with open(path, "wb") as fh:
            if isinstance(content, bytes | bytearray):
                fh.write(content)
            else:
                read = getattr(content, "read", None)
                chunks = iter(lambda: read(1 << 20), b"") if read else content
                for chunk in chunks:
                    fh.write(chunk)
        return ingest(ctx, name, path, format=format, display_name=shown, **options)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
