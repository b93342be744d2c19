"""Deterministic splits: a row's split depends only on its key, never on the version.

A row goes to the split whose range holds ``u = int(md5(salt + text(key))[:8], 16) / 2**32``
(the key's text form; a missing key counts as the empty text). The same key lands in the
same split in every version of a dataset, and anyone can recompute it without Plinth::

    import hashlib
    u = int(hashlib.md5(f"{salt}{key}".encode()).hexdigest()[:8], 16) / 2**32
"""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa
import pyarrow.compute as pc

from plinth.core.errors import InvalidInput
from plinth.data.profiling import quote

__all__ = ["bucket_of", "check_bounds", "filter_split", "split_ranges"]


def check_bounds(low: float, high: float) -> None:
    if not (0.0 <= low < high <= 1.0):
        raise InvalidInput(
            f"split range [{low}, {high}) must lie within [0, 1] and not be empty", field="split"
        )


def split_ranges(fractions: dict[str, float]) -> dict[str, tuple[float, float]]:
    """Consecutive ranges for named fractions that add up to 1 (within rounding)."""
    if not fractions:
        raise InvalidInput("a split needs at least one named fraction", field="split")
    for name, f in fractions.items():
        if not isinstance(f, int | float) or not 0 < f <= 1:
            raise InvalidInput(f"split fraction {name}={f!r} must be in (0, 1]", field="split")
    total = sum(fractions.values())
    if abs(total - 1.0) > 1e-9:
        raise InvalidInput(f"split fractions add up to {total:g}, not 1", field="split")
    ranges, low = {}, 0.0
    names = list(fractions)
    for i, name in enumerate(names):
        high = 1.0 if i == len(names) - 1 else low + fractions[name]
        ranges[name] = (low, high)
        low = high
    return ranges


def bucket_of(con: object, batch: pa.RecordBatch, key: str, salt: str) -> pa.Array:
    """``u`` in [0, 1) for every row of ``batch`` (see the module docstring)."""
    con.register("__b", batch)  # type: ignore[attr-defined]
    try:
        result = con.sql(  # type: ignore[attr-defined]
            f"SELECT CAST(('0x' || left(md5($salt || coalesce(CAST({quote(key)} AS VARCHAR), "
            "'')), 8)) AS UBIGINT) "
            "/ 4294967296.0 AS u FROM __b",
            params={"salt": salt},
        ).to_arrow_table()
    finally:
        con.unregister("__b")  # type: ignore[attr-defined]
    return result.column("u").combine_chunks()


def filter_split(
    reader: pa.RecordBatchReader,
    key: str,
    low: float,
    high: float,
    salt: str,
    keep: list[str] | None,
) -> pa.RecordBatchReader:
    """Only the rows whose key falls in ``[low, high)``; then only the ``keep`` columns."""
    import duckdb

    schema = reader.schema if keep is None else pa.schema([reader.schema.field(c) for c in keep])

    def batches() -> Iterator[pa.RecordBatch]:
        con = duckdb.connect(config={"preserve_insertion_order": True, "threads": 1})
        try:
            for batch in reader:
                if batch.num_rows == 0:
                    continue
                u = bucket_of(con, batch, key, salt)
                mask = pc.and_(pc.greater_equal(u, low), pc.less(u, high))
                picked = batch.filter(mask)
                if keep is not None:
                    picked = picked.select(keep)
                if picked.num_rows:
                    yield picked
        finally:
            con.close()

    return pa.RecordBatchReader.from_batches(schema, batches())
