"""Feature view sources: a Plinth dataset, a Parquet file or folder, or a Delta table.

:func:`open_source` gives an Arrow dataset to scan (DuckDB reads it with projection
pushdown), the reference lineage records (``datasets:/x/3``, ``delta:<path>@<version>``,
``parquet:<path>``) and a key that changes whenever the rows may have changed (the cache
of the offline engine's per-view indexes is keyed by it). :func:`check_schema` says which
declared column a source lacks, or has with the wrong type. :func:`append` adds pushed
rows to the source.

Timestamps: a timezone-naive source column holds UTC (the one rule of the feature store).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from plinth.core.context import Context
from plinth.core.errors import InvalidInput, NotFound
from plinth.features.naming import closest

__all__ = ["OpenedSource", "append", "check_schema", "compatible", "is_path_source", "open_source"]


@dataclass
class OpenedSource:
    uri: str
    kind: str  # dataset | delta | parquet
    dataset: Any  # pyarrow.dataset.Dataset
    ref: str
    cache_key: str
    location: str
    dataset_name: str | None = None

    @property
    def schema(self) -> pa.Schema:
        return self.dataset.schema  # type: ignore[no-any-return]


def is_path_source(uri: str) -> bool:
    return not uri.startswith("datasets:/")


def _local_path(uri: str) -> Path:
    if uri.startswith("file://"):
        uri = uri[len("file://") :]
    if "://" in uri:
        raise InvalidInput(
            f"source {uri!r}: only datasets:/NAME and local Parquet or Delta paths are supported", field="source"
        )
    return Path(uri).expanduser()


def open_source(ctx: Context, uri: str) -> OpenedSource:
    """Open a source for reading (the session of ``ctx`` resolves dataset references)."""
    import pyarrow.dataset as pads

    if uri.startswith("datasets:/"):
        from plinth.data import delta
        from plinth.data.service import resolve

        dataset, version = resolve(ctx, uri)
        dt = delta.open_table(ctx.stores.tables, dataset.location, version.delta_version)
        return OpenedSource(
            uri=uri,
            kind="dataset",
            dataset=dt.to_pyarrow_dataset(),
            ref=f"datasets:/{dataset.name}/{version.version}",
            cache_key=f"dataset:{version.id}",
            location=dataset.location,
            dataset_name=dataset.name,
        )
    path = _local_path(uri)
    if not path.exists():
        raise NotFound(f"source {uri!r} does not exist", source=uri)
    if path.is_dir() and (path / "_delta_log").is_dir():
        from deltalake import DeltaTable

        try:
            dt = DeltaTable(str(path))
        except Exception as exc:
            raise InvalidInput(f"source {uri!r} is not a readable Delta table: {str(exc).splitlines()[0]}") from None
        commit = int(dt.version())
        return OpenedSource(
            uri=uri,
            kind="delta",
            dataset=dt.to_pyarrow_dataset(),
            ref=f"delta:{path.resolve()}@{commit}",
            cache_key=f"delta:{path.resolve()}@{commit}",
            location=str(path.resolve()),
        )
    files = sorted(path.rglob("*.parquet")) if path.is_dir() else [path]
    files = (
        [f for f in files if not any(part.startswith((".", "_")) for part in f.relative_to(path).parts)]
        if path.is_dir()
        else files
    )
    if not files:
        raise InvalidInput(f"source {uri!r} holds no Parquet files", field="source")
    try:
        ds = pads.dataset([str(f) for f in files], format="parquet")
    except (pa.ArrowInvalid, OSError) as exc:
        raise InvalidInput(
            f"source {uri!r} is not readable Parquet: {str(exc).splitlines()[0]}", field="source"
        ) from None
    digest = hashlib.sha256()
    for f in files:
        st = f.stat()
        digest.update(f"{f}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return OpenedSource(
        uri=uri,
        kind="parquet",
        dataset=ds,
        ref=f"parquet:{path.resolve()}",
        cache_key=f"parquet:{digest.hexdigest()}",
        location=str(path.resolve()),
    )


# --- types ---------------------------------------------------------------------------------------
def compatible(actual: pa.DataType, declared: str) -> bool:
    """Whether values of Arrow type ``actual`` can serve as the declared dtype without loss of kind."""
    t = pa.types
    if t.is_dictionary(actual):
        actual = actual.value_type
    if t.is_null(actual):
        return True
    if declared in {"float64", "float32"}:
        return t.is_floating(actual) or t.is_integer(actual) or t.is_decimal(actual)
    if declared in {"int64", "int32"}:
        return t.is_integer(actual)
    if declared == "string":
        return t.is_string(actual) or t.is_large_string(actual) or getattr(t, "is_string_view", lambda _: False)(actual)
    if declared == "bool":
        return t.is_boolean(actual)
    if declared == "timestamp":
        return t.is_timestamp(actual) or t.is_date(actual)
    if declared == "bytes":
        return t.is_binary(actual) or t.is_large_binary(actual)
    return False


def type_label(actual: pa.DataType) -> str:
    from plinth.features.definitions import dtype_name

    try:
        return dtype_name(actual)
    except InvalidInput:
        return str(actual)


def check_schema(
    schema: pa.Schema,
    *,
    what: str,
    fields: dict[str, str],
    keys: list[str],
    timestamp_field: str,
    created_field: str | None = None,
) -> dict[str, str]:
    """Raise InvalidInput naming the first declared column ``schema`` lacks or mistypes.

    Returns the join keys' Arrow types (as strings) for the online store's key encoding.
    """
    names = schema.names

    def missing(col: str, role: str) -> InvalidInput:
        return InvalidInput(
            f"{what} has no column {col!r} ({role}){closest(col, names)}; it has: {', '.join(names)}",
            field=role,
            column=col,
        )

    for col in keys:
        if col not in names:
            raise missing(col, "join key")
    optional: list[tuple[str | None, str]] = [(timestamp_field, "timestamp_field"), (created_field, "created_field")]
    for maybe, role in optional:
        if maybe is None:
            continue
        col = maybe
        if col not in names:
            raise missing(col, role)
        if not compatible(schema.field(col).type, "timestamp"):
            raise InvalidInput(
                f"{what}: column {col!r} ({role}) is {schema.field(col).type}, not a timestamp", field=role, column=col
            )
    for col, dtype in fields.items():
        if col not in names:
            raise missing(col, "feature")
        actual = schema.field(col).type
        if not compatible(actual, dtype):
            raise InvalidInput(
                f"{what}: column {col!r} is {type_label(actual)}, but the feature is declared {dtype}",
                field="schema",
                column=col,
            )
    return {k: str(schema.field(k).type) for k in keys}


# --- appending pushed rows ----------------------------------------------------------------------
def conform(rows: pa.Table, schema: pa.Schema, what: str) -> pa.Table:
    """``rows`` with the source's full schema: missing columns null, each column cast safely."""
    extra = [c for c in rows.column_names if c not in schema.names]
    if extra:
        raise InvalidInput(f"{what} has no column {extra[0]!r}{closest(extra[0], schema.names)}", field="rows")
    columns = []
    for field in schema:
        if field.name in rows.column_names:
            col = rows.column(field.name)
            if pa.types.is_timestamp(field.type) and pa.types.is_timestamp(col.type):
                col = _timestamp_as(col, field.type)
            try:
                col = col.cast(field.type, safe=True)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
                raise InvalidInput(
                    f"column {field.name!r} cannot be stored as {field.type} in {what}: {str(exc).splitlines()[0]}",
                    field="rows",
                    column=field.name,
                ) from None
        else:
            col = pa.nulls(rows.num_rows, field.type)
        columns.append(col)
    return pa.Table.from_arrays(columns, schema=schema)


def _timestamp_as(col: Any, target: pa.DataType) -> Any:
    """A timestamp column in the target's unit and zone (naive targets hold UTC)."""
    import pyarrow.compute as pc

    if col.type.tz is None and target.tz is not None:
        col = col.cast(pa.timestamp(col.type.unit, tz="UTC"))
    elif col.type.tz is not None and target.tz is None:
        col = pc.cast(col, pa.timestamp(col.type.unit, tz="UTC")).cast(pa.timestamp(col.type.unit))
    return col


def append(ctx: Context, opened: OpenedSource, rows: pa.Table) -> str:
    """Append ``rows`` (already conformed) to the source; returns what was written."""
    if opened.kind == "dataset":
        from plinth.data.ingestion import ingest

        assert opened.dataset_name is not None
        result = ingest(ctx, opened.dataset_name, rows, mode="append", profile=False)
        return result.version.ref
    if opened.kind == "delta":
        from deltalake import write_deltalake

        write_deltalake(opened.location, rows, mode="append")
        return opened.location
    folder = Path(opened.location)
    if not folder.is_dir():
        raise InvalidInput(
            f"cannot push to {opened.uri!r}: a single Parquet file is not appendable; use a folder, a Delta "
            "table or a dataset as the source",
            field="source",
        )
    import pyarrow.parquet as pq

    from plinth.core.ids import new_id

    target = folder / f"push-{new_id()}.parquet"
    tmp = folder / f".{target.name}.tmp"
    pq.write_table(rows, tmp)
    os.replace(tmp, target)
    return str(target)
