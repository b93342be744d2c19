"""Schema evolution rules: what an append or overwrite may change without ``allow_breaking``.

Adding a nullable column is allowed. Dropping a column (a rename is a drop plus an add)
or changing a column's type is breaking. Widening a number (int -> long, float ->
double, an integer into a floating column) is not a change at all: the incoming values
are cast to the table's type, and a value that does not fit stops the ingest.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pyarrow as pa

from plinth.data.schemas import ColumnSchema, SchemaChange

__all__ = ["arrow_columns", "compare", "conform", "delta_columns", "type_name"]

_INTEGERS = ["byte", "short", "integer", "long"]
_FLOATS = ["float", "double"]


def type_name(t: Any) -> str:
    """A Delta type (from its JSON form) as one short string: long, array<string>…"""
    if isinstance(t, str):
        return t
    kind = t.get("type")
    if kind == "struct":
        inner = ",".join(f"{f['name']}:{type_name(f['type'])}" for f in t.get("fields", []))
        return f"struct<{inner}>"
    if kind == "array":
        return f"array<{type_name(t['elementType'])}>"
    if kind == "map":
        return f"map<{type_name(t['keyType'])},{type_name(t['valueType'])}>"
    return json.dumps(t, sort_keys=True)


def delta_columns(schema: Any) -> list[ColumnSchema]:
    """Columns of a ``deltalake.Schema``."""
    fields = json.loads(schema.to_json())["fields"]
    return [
        ColumnSchema(
            name=f["name"], type=type_name(f["type"]), nullable=bool(f.get("nullable", True))
        )
        for f in fields
    ]


def arrow_columns(schema: pa.Schema) -> list[ColumnSchema]:
    """Columns of an Arrow schema, named by the Delta types they will be stored as."""
    from deltalake import Schema

    try:
        return delta_columns(Schema.from_arrow(schema))
    except Exception as exc:  # deltalake refuses some Arrow types (e.g. unions)
        from plinth.core.errors import InvalidInput

        raise InvalidInput(
            f"the source has columns Delta Lake cannot store: {exc}", field="source"
        ) from None


def _compatible(before: str, after: str) -> bool:
    """``after`` values can be cast into a ``before`` column without changing its type."""
    if before == after:
        return True
    if before in _INTEGERS and after in _INTEGERS:
        return True
    return before in _FLOATS and (after in _FLOATS or after in _INTEGERS)


def compare(old: list[ColumnSchema], new: list[ColumnSchema]) -> list[SchemaChange]:
    """What writing ``new`` onto a table of ``old`` would change."""
    before = {c.name: c for c in old}
    after = {c.name: c for c in new}
    changes: list[SchemaChange] = []
    for c in old:
        if c.name not in after:
            changes.append(
                SchemaChange(kind="dropped", column=c.name, before=c.type, breaking=True)
            )
        elif not _compatible(c.type, after[c.name].type):
            changes.append(
                SchemaChange(
                    kind="type_changed",
                    column=c.name,
                    before=c.type,
                    after=after[c.name].type,
                    breaking=True,
                )
            )
    for c in new:
        if c.name not in before:
            changes.append(
                SchemaChange(kind="added", column=c.name, after=c.type, breaking=not c.nullable)
            )
    return changes


def describe(changes: list[SchemaChange]) -> str:
    """The changes in words; a dropped and an added column of one type may be a rename."""
    text = "; ".join(str(c) for c in changes)
    dropped = {c.before for c in changes if c.kind == "dropped"}
    if any(c.kind == "added" and c.after in dropped for c in changes):
        text += " (a rename is a drop plus an add)"
    return text


def conform(reader: pa.RecordBatchReader, table_schema: pa.Schema) -> pa.RecordBatchReader:
    """Reorder and cast incoming batches to the table's columns; new columns go last."""
    incoming = reader.schema
    fields = [table_schema.field(n) for n in table_schema.names if n in incoming.names]
    fields += [incoming.field(n) for n in incoming.names if n not in table_schema.names]
    target = pa.schema([pa.field(f.name, f.type, nullable=True) for f in fields])
    if target.names == incoming.names and all(
        target.field(n).type == incoming.field(n).type for n in target.names
    ):
        return reader

    def batches() -> Iterator[pa.RecordBatch]:
        for batch in reader:
            columns = []
            for f in target:
                col = batch.column(batch.schema.get_field_index(f.name))
                if col.type != f.type:
                    try:
                        col = col.cast(f.type, safe=True)
                    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                        from plinth.core.errors import InvalidInput

                        raise InvalidInput(
                            f"column {f.name!r}: values do not fit the table's type {f.type}: "
                            f"{exc}",
                            field="source",
                            column=f.name,
                        ) from None
                columns.append(col)
            yield pa.RecordBatch.from_arrays(columns, schema=target)

    return pa.RecordBatchReader.from_batches(target, batches())
