"""Datasets: names, versions, tags, reads, diffs, profiles and quality results.

A dataset is a Delta table in the table store plus its rows here: one
:class:`DatasetVersion` per Delta commit that Plinth made (ingest lives in
:mod:`plinth.data.ingestion`). References resolve here, once: ``datasets:/churn`` (the
latest), ``datasets:/churn/3`` and ``datasets:/churn@3`` (version 3),
``datasets:/churn@train-2026-11`` (a tag); the bare ``churn``, ``churn@3`` work too.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pyarrow as pa
from sqlalchemy import func, select

from plinth.core.context import Context
from plinth.core.errors import Conflict, InvalidInput, NotFound
from plinth.core.ids import new_id
from plinth.core.names import validate_name
from plinth.core.uris import parse_reference
from plinth.data import delta
from plinth.data.evolution import compare
from plinth.data.schemas import (
    ColumnSchema,
    DatasetDetail,
    DatasetDiff,
    DatasetInfo,
    ExpectationSuite,
    Profile,
    SchemaChange,
    ValidationResult,
    VersionInfo,
)
from plinth.data.tables import Dataset, DatasetTag, DatasetVersion, QualityResult

__all__ = [
    "dataset_detail",
    "diff",
    "get_version",
    "list_datasets",
    "list_versions",
    "open_quarantine",
    "open_read",
    "profile",
    "quality_results",
    "resolve",
    "tag_version",
    "untag",
    "validate",
]

FILTER_OPS = ("=", "==", "!=", "<", "<=", ">", ">=", "in", "not in", "is null", "is not null")


# --- references ---------------------------------------------------------------------------
def parse_dataset_ref(ref: str) -> tuple[str, str | None]:
    """(name, version-or-tag or None) of ``datasets:/x``, ``datasets:/x/3``, ``x@tag``…"""
    if not isinstance(ref, str) or not ref:
        raise InvalidInput(
            "a dataset reference must be a non-empty string such as datasets:/churn@3", field="ref"
        )
    text = ref if ":/" in ref else f"datasets:/{ref}"
    parsed = parse_reference(text, kinds={"datasets"})
    return parsed.name, parsed.alias if parsed.alias is not None else parsed.version


def get_dataset_row(ctx: Context, name: str) -> Dataset:
    validate_name(name, "dataset")
    row = ctx.session.execute(
        select(Dataset).where(Dataset.project_id == ctx.project_id(), Dataset.name == name)
    ).scalar()
    if row is None:
        raise NotFound(f"dataset {name!r} does not exist in project {ctx.project!r}", dataset=name)
    return row


def resolve(
    ctx: Context, ref: str, as_of: datetime | None = None
) -> tuple[Dataset, DatasetVersion]:
    """The dataset and version a reference names; NotFound says which part is unknown."""
    name, pin = parse_dataset_ref(ref)
    dataset = get_dataset_row(ctx, name)
    q = select(DatasetVersion).where(DatasetVersion.dataset_id == dataset.id)
    if pin is not None and as_of is not None:
        raise InvalidInput("give either a version/tag or as_of, not both", field="as_of")
    if pin is None:
        if as_of is not None:
            if as_of.tzinfo is None:
                raise InvalidInput(
                    "as_of must carry a time zone (e.g. 2026-11-27T10:00:00Z)", field="as_of"
                )
            q = q.where(DatasetVersion.created_at <= as_of)
        version = ctx.session.execute(q.order_by(DatasetVersion.version.desc()).limit(1)).scalar()
        if version is None:
            raise NotFound(f"dataset {name!r} had no version at {as_of}", dataset=name)
        return dataset, version
    if pin.isdigit():
        version = ctx.session.execute(q.where(DatasetVersion.version == int(pin))).scalar()
        if version is None:
            raise NotFound(
                f"dataset {name!r} has no version {pin} (latest is {dataset.latest_version})",
                dataset=name,
                version=int(pin),
            )
        return dataset, version
    tag = ctx.session.execute(
        select(DatasetTag).where(DatasetTag.dataset_id == dataset.id, DatasetTag.tag == pin)
    ).scalar()
    if tag is None:
        known = (
            ctx.session.execute(select(DatasetTag.tag).where(DatasetTag.dataset_id == dataset.id))
            .scalars()
            .all()
        )
        have = f"tags: {', '.join(sorted(known))}" if known else "it has no tags"
        raise NotFound(f"dataset {name!r} has no tag {pin!r} ({have})", dataset=name, tag=pin)
    return dataset, ctx.session.get_one(DatasetVersion, tag.version_id)


# --- info -------------------------------------------------------------------------------
def _version_infos(
    ctx: Context, dataset: Dataset, versions: list[DatasetVersion]
) -> list[VersionInfo]:
    ids = [v.id for v in versions]
    tags: dict[str, list[str]] = {}
    verdict: dict[str, bool] = {}
    if ids:
        for t in ctx.session.execute(
            select(DatasetTag).where(DatasetTag.version_id.in_(ids)).order_by(DatasetTag.tag)
        ).scalars():
            tags.setdefault(t.version_id, []).append(t.tag)
        for r in ctx.session.execute(
            select(QualityResult)
            .where(QualityResult.version_id.in_(ids))
            .order_by(QualityResult.created_at, QualityResult.id)
        ).scalars():
            verdict[r.version_id] = r.success  # the latest validation wins
    return [
        VersionInfo(
            dataset=dataset.name,
            version=v.version,
            ref=f"datasets:/{dataset.name}/{v.version}",
            delta_version=v.delta_version,
            mode=v.mode,
            columns=[ColumnSchema.model_validate(c) for c in v.table_schema],
            schema_changes=[SchemaChange.model_validate(c) for c in v.schema_changes or []],
            row_count=v.row_count,
            rows_written=v.rows_written,
            rows_quarantined=v.rows_quarantined,
            source=v.source,
            tags=tags.get(v.id, []),
            quality=verdict.get(v.id),
            has_profile=v.profile is not None,
            created_at=v.created_at,
            created_by=v.created_by,
        )
        for v in versions
    ]


def version_info(ctx: Context, dataset: Dataset, version: DatasetVersion) -> VersionInfo:
    return _version_infos(ctx, dataset, [version])[0]


def list_datasets(ctx: Context) -> list[DatasetInfo]:
    ctx.require("read")
    rows = ctx.session.execute(
        select(Dataset).where(Dataset.project_id == ctx.project_id()).order_by(Dataset.name)
    ).scalars()
    return [DatasetInfo.model_validate(r) for r in rows]


def dataset_detail(ctx: Context, name: str) -> DatasetDetail:
    ctx.require("read")
    dataset = get_dataset_row(ctx, name)
    latest = ctx.session.execute(
        select(DatasetVersion)
        .where(DatasetVersion.dataset_id == dataset.id)
        .order_by(DatasetVersion.version.desc())
        .limit(1)
    ).scalar()
    tags = {
        t: v
        for t, v in ctx.session.execute(
            select(DatasetTag.tag, DatasetVersion.version)
            .join(DatasetVersion, DatasetVersion.id == DatasetTag.version_id)
            .where(DatasetTag.dataset_id == dataset.id)
            .order_by(DatasetTag.tag)
        ).all()
    }
    return DatasetDetail(
        dataset=DatasetInfo.model_validate(dataset),
        latest=version_info(ctx, dataset, latest) if latest else None,
        tags=tags,
    )


def list_versions(ctx: Context, name: str, limit: int = 1000) -> list[VersionInfo]:
    """Versions, newest first."""
    ctx.require("read")
    dataset = get_dataset_row(ctx, name)
    rows = (
        ctx.session.execute(
            select(DatasetVersion)
            .where(DatasetVersion.dataset_id == dataset.id)
            .order_by(DatasetVersion.version.desc())
            .limit(max(1, min(limit, 10_000)))
        )
        .scalars()
        .all()
    )
    return _version_infos(ctx, dataset, list(rows))


def get_version(ctx: Context, ref: str, as_of: datetime | None = None) -> VersionInfo:
    ctx.require("read")
    dataset, version = resolve(ctx, ref, as_of)
    return version_info(ctx, dataset, version)


# --- tags ---------------------------------------------------------------------------------
def tag_version(
    ctx: Context, name: str, tag: str, version: int | None = None, force: bool = False
) -> VersionInfo:
    """Pin ``tag`` to a version (the latest when omitted). Moving a tag needs ``force``."""
    ctx.require("write")
    validate_name(tag, "tag")
    if tag.isdigit():
        raise InvalidInput(
            f"tag {tag!r} would read as a version number; use a name with a letter", field="tag"
        )
    dataset = get_dataset_row(ctx, name)
    ref = f"datasets:/{name}/{version}" if version is not None else f"datasets:/{name}"
    dataset, target = resolve(ctx, ref)
    existing = ctx.session.execute(
        select(DatasetTag).where(DatasetTag.dataset_id == dataset.id, DatasetTag.tag == tag)
    ).scalar()
    if existing is not None:
        if existing.version_id == target.id:
            return version_info(ctx, dataset, target)
        if not force:
            pinned = ctx.session.get_one(DatasetVersion, existing.version_id).version
            raise Conflict(
                f"tag {tag!r} of dataset {name!r} pins version {pinned}; pass force=True to "
                "move it",
                dataset=name,
                tag=tag,
            )
        before = ctx.session.get_one(DatasetVersion, existing.version_id).version
        existing.version_id = target.id
        existing.created_at, existing.created_by = ctx.now(), ctx.actor.name
        ctx.emit(
            "dataset.tag",
            f"datasets:/{name}@{tag}",
            {"version": target.version, "moved_from": before},
        )
    else:
        ctx.session.add(
            DatasetTag(
                id=new_id(),
                dataset_id=dataset.id,
                version_id=target.id,
                tag=tag,
                created_at=ctx.now(),
                created_by=ctx.actor.name,
            )
        )
        ctx.emit("dataset.tag", f"datasets:/{name}@{tag}", {"version": target.version})
    ctx.session.flush()
    return version_info(ctx, dataset, target)


def untag(ctx: Context, name: str, tag: str) -> None:
    ctx.require("write")
    dataset = get_dataset_row(ctx, name)
    row = ctx.session.execute(
        select(DatasetTag).where(DatasetTag.dataset_id == dataset.id, DatasetTag.tag == tag)
    ).scalar()
    if row is None:
        raise NotFound(f"dataset {name!r} has no tag {tag!r}", dataset=name, tag=tag)
    ctx.session.delete(row)
    ctx.emit("dataset.untag", f"datasets:/{name}@{tag}", {})


# --- reads ----------------------------------------------------------------------------------
def _filter_expression(spec: Any, schema: pa.Schema) -> Any:
    """``[(column, op, value), ...]`` (all must hold) as a pyarrow expression pushed down."""
    import pyarrow.compute as pc

    if spec is None:
        return None
    if isinstance(spec, tuple) and spec and isinstance(spec[0], str):
        spec = [spec]
    if not isinstance(spec, list | tuple):
        raise InvalidInput("filter must be a list of (column, op, value) triples", field="filter")
    expr = None
    for item in spec:
        if not isinstance(item, list | tuple) or len(item) not in (2, 3):
            raise InvalidInput(f"filter item {item!r} is not (column, op, value)", field="filter")
        column, op = item[0], str(item[1]).lower()
        value = item[2] if len(item) == 3 else None
        if column not in schema.names:
            raise InvalidInput(
                f"filter column {column!r} is not in the dataset ({', '.join(schema.names)})",
                field="filter",
            )
        if op not in FILTER_OPS:
            raise InvalidInput(
                f"filter op {op!r} is not one of {', '.join(FILTER_OPS)}", field="filter"
            )
        field = pc.field(column)
        typ = schema.field(column).type
        if op in {"in", "not in"}:
            if not isinstance(value, list | tuple | set):
                raise InvalidInput(f"filter {op!r} needs a list of values", field="filter")
            values = _typed_array(list(value), typ)
            cond = field.isin(values) if op == "in" else ~field.isin(values)
        elif op == "is null":
            cond = field.is_null()
        elif op == "is not null":
            cond = field.is_valid()
        else:
            v = _typed_scalar(value, typ)
            cond = {
                "=": field == v,
                "==": field == v,
                "!=": field != v,
                "<": field < v,
                "<=": field <= v,
                ">": field > v,
                ">=": field >= v,
            }[op]
        expr = cond if expr is None else expr & cond
    return expr


def _typed_scalar(value: Any, typ: pa.DataType) -> Any:
    try:
        return pa.scalar(value).cast(typ)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        raise InvalidInput(
            f"filter value {value!r} does not fit the column type {typ}", field="filter"
        ) from None


def _typed_array(values: list[Any], typ: pa.DataType) -> pa.Array:
    try:
        return pa.array(values).cast(typ)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        raise InvalidInput(
            f"filter values {values!r} do not fit the column type {typ}", field="filter"
        ) from None


def open_read(
    ctx: Context,
    ref: str,
    columns: list[str] | None = None,
    filter: Any = None,  # noqa: A002 - the name users know from pyarrow and deltalake
    as_of: datetime | None = None,
    run_id: str | None = None,
    split_key: str | None = None,
    split_from: float = 0.0,
    split_to: float = 1.0,
    split_salt: str = "",
    batch_size: int = 131_072,
) -> tuple[VersionInfo, pa.RecordBatchReader]:
    """The version a reference names and a stream of its rows (columns and filter pushed down).

    With ``run_id`` the read is recorded as lineage (dataset version -> run). With
    ``split_key`` only rows whose key hashes into ``[split_from, split_to)`` come back
    (see :mod:`plinth.data.splitting`).
    """
    ctx.require("read")
    dataset, version = resolve(ctx, ref, as_of)
    info = version_info(ctx, dataset, version)
    dt = delta.open_table(ctx.stores.tables, dataset.location, version.delta_version)
    ds = dt.to_pyarrow_dataset()
    if columns is not None:
        if isinstance(columns, str):
            columns = [columns]
        missing = [c for c in columns if c not in ds.schema.names]
        if missing:
            raise InvalidInput(
                f"columns {missing} are not in {info.ref} ({', '.join(ds.schema.names)})",
                field="columns",
            )
    expr = _filter_expression(filter, ds.schema)
    if split_key is not None:
        from plinth.data.splitting import check_bounds, filter_split

        check_bounds(split_from, split_to)
        if split_key not in ds.schema.names:
            raise InvalidInput(
                f"split key {split_key!r} is not a column of {info.ref}", field="key"
            )
        needed = None if columns is None else list(dict.fromkeys([*columns, split_key]))
        inner = ds.scanner(columns=needed, filter=expr, batch_size=batch_size).to_reader()
        reader = filter_split(inner, split_key, split_from, split_to, split_salt, keep=columns)
    else:
        reader = ds.scanner(columns=columns, filter=expr, batch_size=batch_size).to_reader()
    if run_id is not None:
        from plinth.data.lineage_graph import add_edge, ensure_run

        add_edge(ctx, info.ref, ensure_run(ctx, run_id), "input")
    return info, reader


def open_quarantine(ctx: Context, name: str) -> tuple[DatasetInfo, pa.RecordBatchReader]:
    """Rows that ingests set aside (``on_bad_lines="quarantine"``): file, line, error, raw."""
    ctx.require("read")
    dataset = get_dataset_row(ctx, name)
    location = quarantine_location(ctx, dataset)
    if delta.latest_delta_version(ctx.stores.tables, location) is None:
        empty = pa.schema(
            [
                ("version", pa.int64()),
                ("file", pa.string()),
                ("line", pa.int64()),
                ("error", pa.string()),
                ("raw", pa.string()),
            ]
        )
        return DatasetInfo.model_validate(dataset), pa.RecordBatchReader.from_batches(
            empty, iter(())
        )
    reader = (
        delta.open_table(ctx.stores.tables, location).to_pyarrow_dataset().scanner().to_reader()
    )
    return DatasetInfo.model_validate(dataset), reader


def quarantine_location(ctx: Context, dataset: Dataset) -> str:
    return ctx.stores.tables.location(
        dataset.project_id, "datasets", dataset.id, suffix="quarantine"
    )


def ipc_stream(reader: pa.RecordBatchReader) -> Iterator[bytes]:
    """An Arrow IPC stream of the reader's batches, in chunks (for the REST door)."""
    sink = _ChunkSink()
    with pa.ipc.new_stream(sink, reader.schema) as writer:
        yield from sink.take()
        for batch in reader:
            writer.write_batch(batch)
            yield from sink.take()
    yield from sink.take()


class _ChunkSink:
    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self.closed = False

    def write(self, data: Any) -> int:
        b = bytes(data)
        self._chunks.append(b)
        return len(b)

    def flush(self) -> None:
        return None

    def close(self) -> None:
        self.closed = True

    def take(self) -> Iterator[bytes]:
        chunks, self._chunks = self._chunks, []
        yield from chunks


# --- diff, profile, quality --------------------------------------------------------------------
def diff(ctx: Context, a: str, b: str) -> DatasetDiff:
    """Schema and row-count changes from ``a`` to ``b`` (versions of one or two datasets)."""
    ctx.require("read")
    da, va = resolve(ctx, a)
    db_, vb = resolve(ctx, b)
    old = [ColumnSchema.model_validate(c) for c in va.table_schema]
    new = [ColumnSchema.model_validate(c) for c in vb.table_schema]
    return DatasetDiff(
        a=f"datasets:/{da.name}/{va.version}",
        b=f"datasets:/{db_.name}/{vb.version}",
        schema_changes=compare(old, new),
        row_count_a=va.row_count,
        row_count_b=vb.row_count,
        row_count_change=vb.row_count - va.row_count,
    )


def compute_version_profile(ctx: Context, dataset: Dataset, version: DatasetVersion) -> Profile:
    from plinth.data.profiling import compute_profile

    dt = delta.open_table(ctx.stores.tables, dataset.location, version.delta_version)
    con = delta.duckdb_over(dt)
    try:
        columns = [ColumnSchema.model_validate(c) for c in version.table_schema]
        rows, profiles, seconds = compute_profile(
            con, columns, bounds=delta.numeric_bounds(dt)
        )
    finally:
        con.close()
    return Profile(
        dataset=dataset.name,
        version=version.version,
        row_count=rows,
        columns=profiles,
        computed_at=ctx.now(),
        seconds=seconds,
    )


def profile(ctx: Context, ref: str, refresh: bool = False) -> Profile:
    """The stored profile of a version; computed (and stored) when missing or ``refresh``."""
    ctx.require("read")
    dataset, version = resolve(ctx, ref)
    if version.profile is not None and not refresh:
        return Profile.model_validate(version.profile)
    ctx.require("write")
    result = compute_version_profile(ctx, dataset, version)
    version.profile = result.model_dump(mode="json")
    ctx.emit(
        "dataset.profile",
        f"datasets:/{dataset.name}/{version.version}",
        {"seconds": round(result.seconds, 3)},
    )
    return result


def run_suite(
    ctx: Context, dt: Any, columns: list[ColumnSchema], suite: ExpectationSuite, staged: Any = None
) -> list[Any]:
    """Evaluate ``suite`` on a Delta version (and staged rows about to be added)."""
    from plinth.data.quality import evaluate

    facts = delta.log_facts(dt) if dt is not None and staged is None else None
    con = delta.duckdb_over(dt, extra=staged)
    try:
        return evaluate(con, {c.name: c.type for c in columns}, suite, ctx.now(), facts)
    finally:
        con.close()


def store_validation(
    ctx: Context,
    dataset: Dataset,
    version: DatasetVersion,
    suite: ExpectationSuite,
    results: list[Any],
    trigger: str,
) -> ValidationResult:
    row = QualityResult(
        id=new_id(),
        dataset_id=dataset.id,
        version_id=version.id,
        suite=suite.name[:100],
        success=all(r.success for r in results),
        trigger=trigger,
        results=[r.model_dump(mode="json") for r in results],
        created_at=ctx.now(),
        created_by=ctx.actor.name,
    )
    ctx.session.add(row)
    ctx.session.flush()
    ctx.emit(
        "dataset.validate",
        f"datasets:/{dataset.name}/{version.version}",
        {
            "suite": row.suite,
            "success": row.success,
            "failed": [r.label for r in results if not r.success],
        },
    )
    return _validation_out(dataset, version, row)


def _validation_out(
    dataset: Dataset, version: DatasetVersion, row: QualityResult
) -> ValidationResult:
    return ValidationResult.model_validate(
        {
            "id": row.id,
            "dataset": dataset.name,
            "version": version.version,
            "suite": row.suite,
            "success": row.success,
            "trigger": row.trigger,
            "results": row.results,
            "created_at": row.created_at,
            "created_by": row.created_by,
        }
    )


def validate(ctx: Context, ref: str, suite: Any) -> ValidationResult:
    """Validate a version against a suite now; the result is stored with the version."""
    from plinth.data.quality import as_suite

    ctx.require("write")
    suite = as_suite(suite)
    dataset, version = resolve(ctx, ref)
    dt = delta.open_table(ctx.stores.tables, dataset.location, version.delta_version)
    columns = [ColumnSchema.model_validate(c) for c in version.table_schema]
    results = run_suite(ctx, dt, columns, suite)
    return store_validation(ctx, dataset, version, suite, results, "on_demand")


def quality_results(
    ctx: Context, name: str, version: int | None = None, limit: int = 100
) -> list[ValidationResult]:
    """Stored validations of a dataset (of one version when given), newest first."""
    ctx.require("read")
    dataset = get_dataset_row(ctx, name)
    q = (
        select(QualityResult, DatasetVersion)
        .join(DatasetVersion, DatasetVersion.id == QualityResult.version_id)
        .where(QualityResult.dataset_id == dataset.id)
    )
    if version is not None:
        q = q.where(DatasetVersion.version == version)
    rows = ctx.session.execute(
        q.order_by(QualityResult.created_at.desc(), QualityResult.id.desc()).limit(
            max(1, min(limit, 1000))
        )
    ).all()
    return [_validation_out(dataset, v, r) for r, v in rows]


def count_versions(ctx: Context, dataset: Dataset) -> int:
    return int(
        ctx.session.execute(
            select(func.count())
            .select_from(DatasetVersion)
            .where(DatasetVersion.dataset_id == dataset.id)
        ).scalar()
        or 0
    )
