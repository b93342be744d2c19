"""The offline engine: point-in-time correct joins of an entity frame with feature views.

For each entity row and each view, the value is the view's newest row with the same join
keys and ``event_timestamp <= entity timestamp`` and ``event_timestamp >= entity
timestamp - ttl`` (both boundaries inside); rows with the same event timestamp are
decided by the newest ``created`` value; every entity row comes back, in the order given,
with nulls where a view has nothing in the window. These are Feast's documented
semantics.

How: each view's source is turned once into an *index*, an Arrow table deduplicated per
(join keys, event timestamp) by newest ``created`` and sorted, cached in memory and on disk
and keyed by the source's version (a new dataset version, Delta commit or Parquet file
makes a new index; :mod:`plinth.features.index`). For a single join key a query is a
vectorized binary search of each index, one sort of the entity rows shared by the views;
otherwise one DuckDB statement: the entity frame ``ASOF LEFT JOIN`` each index, the ttl
applied as a condition on the matched row (DuckDB runs under a memory limit and spills to
disk beyond it).

Timestamps: timezone-naive values, in the entity frame or in a source, are UTC; aware
values are converted to UTC; the output's timestamps are UTC (aware). A pandas column
that mixes naive and aware values is refused.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pyarrow as pa

from plinth.core.context import Context
from plinth.core.errors import InvalidInput
from plinth.features.index import TS, ViewIndex, probe, take_rows, view_indexes
from plinth.features.naming import closest
from plinth.features.service import OdfvPlan, Resolution, ViewPlan
from plinth.features.sources import type_label

__all__ = ["as_arrow", "join", "prepare_entities"]

DUCKDB_MEMORY_LIMIT = "1GB"
CHUNK_ROWS = 1 << 20  # entity rows probed at a time: memory stays bounded for big frames
FORCE_DUCKDB = False  # tests run every case through both engines
SQL_TYPES = {
    "float64": "DOUBLE",
    "float32": "FLOAT",
    "int64": "BIGINT",
    "int32": "INTEGER",
    "string": "VARCHAR",
    "bool": "BOOLEAN",
    "timestamp": "TIMESTAMP",
    "bytes": "BLOB",
}
ROW, ETS = "__plinth_row", "__plinth_ets"


def q(name: str) -> str:
    """A quoted SQL identifier (names are data, never SQL)."""
    return '"' + name.replace('"', '""') + '"'


_duckdb: Any = None
_duckdb_lock = threading.Lock()


def connect() -> Any:
    """A DuckDB connection of its own (what it registers is its own), in UTC; close it after use.

    Connections are cursors of one in-memory database per process: opening a database
    costs about 30 ms, a cursor about 2 ms.
    """
    global _duckdb
    import duckdb

    with _duckdb_lock:
        if _duckdb is None:
            _duckdb = duckdb.connect(config={"memory_limit": DUCKDB_MEMORY_LIMIT})
        con = _duckdb.cursor()
    con.execute("SET TimeZone = 'UTC'")
    return con


# --- entity frames --------------------------------------------------------------------------------
def as_arrow(data: Any, what: str = "entity frame") -> pa.Table:
    """A pandas or polars DataFrame, Arrow table/batches, dict of lists or list of dicts as Arrow."""
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    if isinstance(data, pa.RecordBatchReader):
        return data.read_all()
    if isinstance(data, dict):
        try:
            return pa.table(data)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError) as exc:
            raise InvalidInput(f"{what}: {exc}", field="entity_df") from None
    if isinstance(data, list):
        try:
            return pa.Table.from_pylist(data)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, AttributeError) as exc:
            raise InvalidInput(f"{what}: expected a list of mappings ({exc})", field="entity_df") from None
    module = type(data).__module__.split(".")[0]
    if module == "pandas":
        _refuse_mixed_zones(data, what)
        try:
            return pa.Table.from_pandas(data, preserve_index=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as exc:
            raise InvalidInput(f"{what}: {exc}", field="entity_df") from None
    if module == "polars":
        return data.to_arrow()  # type: ignore[no-any-return]
    raise InvalidInput(
        f"{what} must be a pandas or polars DataFrame, an Arrow table or a list of rows, not {type(data).__name__}",
        field="entity_df",
    )


def _refuse_mixed_zones(df: Any, what: str) -> None:
    import datetime as dt

    for col in df.columns:
        if str(df[col].dtype) != "object":
            continue
        zones = {v.tzinfo is not None for v in df[col].head(10_000) if isinstance(v, dt.datetime)}
        if len(zones) > 1:
            raise InvalidInput(
                f"{what}: column {col!r} mixes timezone-naive and timezone-aware timestamps; convert it with "
                "pd.to_datetime(column, utc=True) (naive values are taken as UTC)",
                field="entity_df",
                column=str(col),
            )


def utc_timestamps(col: Any, name: str, what: str) -> tuple[Any, Any]:
    """(aware UTC, naive UTC) microsecond versions of a timestamp or date column."""
    t = col.type
    if pa.types.is_date(t):
        col = col.cast(pa.timestamp("s"))
        t = col.type
    if not pa.types.is_timestamp(t):
        raise InvalidInput(
            f"{what}: column {name!r} is {type_label(t)}, not timestamps; "
            "convert it (e.g. pd.to_datetime(column, utc=True))",
            field="entity_df",
            column=name,
        )
    if t.tz is None:
        naive = col.cast(pa.timestamp("us"), safe=False)
    else:
        naive = col.cast(pa.timestamp("us", tz="UTC"), safe=False).cast(pa.timestamp("us"))
    return naive.cast(pa.timestamp("us", tz="UTC")), naive


def prepare_entities(table: pa.Table, timestamp_column: str, res: Resolution, what: str = "entity frame") -> pa.Table:
    """The entity frame checked and made ready to join: UTC timestamps, keys in the source's types."""
    names = table.column_names
    if timestamp_column not in names:
        raise InvalidInput(
            f"{what} has no timestamp column {timestamp_column!r}{closest(timestamp_column, names)}; it has: "
            f"{', '.join(names) or 'no columns'} (name it with timestamp_column=)",
            field="entity_df",
            column=timestamp_column,
        )
    for reserved in (ROW, ETS):
        if reserved in names:
            raise InvalidInput(f"{what}: column name {reserved!r} is reserved", field="entity_df")
    aware, naive = utc_timestamps(table.column(timestamp_column), timestamp_column, what)
    table = table.set_column(names.index(timestamp_column), timestamp_column, aware)
    for view in res.views:
        for key in view.join_keys:
            if key not in names:
                raise InvalidInput(
                    f"{what} has no column {key!r}, the join key of feature view {view.name!r}"
                    f"{closest(key, names)}; it has: {', '.join(names)}",
                    field="entity_df",
                    column=key,
                )
            table = _cast_key(table, key, view, what)
    for odfv in res.odfvs:
        for field in odfv.request_fields:
            if field not in names:
                raise InvalidInput(
                    f"{what} has no column {field!r}, request data of on-demand feature view {odfv.name!r}",
                    field="entity_df",
                    column=field,
                )
    table = table.append_column(ETS, naive)
    return table.append_column(ROW, pa.array(np.arange(table.num_rows, dtype=np.int64)))


def _cast_key(table: pa.Table, key: str, view: ViewPlan, what: str) -> pa.Table:
    wanted = view.key_types.get(key)
    if not wanted:
        return table
    target = _arrow_type(wanted)
    col = table.column(key)
    if target is None or col.type == target:
        return table
    try:
        cast = col.cast(target, safe=True)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        raise InvalidInput(
            f"{what}: join key {key!r} is {type_label(col.type)} but feature view {view.name!r} keys it as "
            f"{wanted}; the values do not convert",
            field="entity_df",
            column=key,
        ) from None
    return table.set_column(table.column_names.index(key), key, cast)


def _arrow_type(text: str) -> pa.DataType | None:
    simple = {
        "int64": pa.int64(),
        "int32": pa.int32(),
        "int16": pa.int16(),
        "int8": pa.int8(),
        "uint64": pa.uint64(),
        "uint32": pa.uint32(),
        "string": pa.string(),
        "large_string": pa.large_string(),
        "double": pa.float64(),
        "float": pa.float32(),
        "bool": pa.bool_(),
    }
    return simple.get(text)


# --- the join -------------------------------------------------------------------------------------
def output_columns(res: Resolution, full_feature_names: bool, entity_names: list[str]) -> list[tuple[str, str, str]]:
    """(view, feature, output column) for every requested feature; clashes are refused."""
    out = []
    for ref in res.refs:
        view, feat = ref.split(":", 1)
        out.append((view, feat, res.column(view, feat, full_feature_names)))
    seen: dict[str, str] = {}
    for view, feat, col in out:
        other = seen.get(col)
        if other is not None or col in entity_names:
            clash = other or "the entity frame"
            raise InvalidInput(
                f"two columns would be named {col!r} ({clash} and {view}:{feat}); pass full_feature_names=True",
                field="features",
            )
        seen[col] = f"{view}:{feat}"
    return out


def join(
    ctx: Context,
    entities: pa.Table,
    res: Resolution,
    full_feature_names: bool,
    *,
    stream: bool = False,
) -> tuple[Any, list[tuple[ViewPlan, str]]]:
    """Run the point-in-time join; returns (Arrow table or reader, [(view, source ref)])."""
    indexes = list(zip(res.views, view_indexes(ctx, res.views), strict=True))
    user_cols = [c for c in entities.column_names if c not in (ROW, ETS)]
    wanted = output_columns(res, full_feature_names, user_cols)
    used = [(v, idx.source_ref) for v, idx in indexes]
    if FORCE_DUCKDB or any(idx.probe is None for _, idx in indexes):
        return _duckdb_join(entities, res, indexes, wanted, user_cols, stream), used

    def chunks() -> Any:
        for start in range(0, max(entities.num_rows, 1), CHUNK_ROWS):
            part = entities.slice(start, CHUNK_ROWS)
            yield finish(_probe_join(part, indexes, user_cols), res, wanted, user_cols)

    if stream:
        first = finish(_probe_join(entities.slice(0, 0), indexes, user_cols), res, wanted, user_cols)
        batches = (b for t in chunks() for b in t.to_batches())
        return pa.RecordBatchReader.from_batches(first.schema, batches), used
    return pa.concat_tables(list(chunks())), used


def _probe_join(part: pa.Table, indexes: list[tuple[ViewPlan, ViewIndex]], user_cols: list[str]) -> pa.Table:
    """The entity rows with each view's columns, found by the indexes' binary search."""
    ets = part.column(ETS)
    known = ets.is_valid().to_numpy(zero_copy_only=False)
    when = ets.cast(pa.int64()).fill_null(0).to_numpy()
    table = part.select(user_cols)
    orders: dict[str, Any] = {}  # per join key: the entity rows' order by (key, time), sorted once
    for view, index in indexes:
        name = view.join_keys[0]
        key = part.column(name).combine_chunks()
        rows, ok, orders[name] = probe(index, key, when, known, view.ttl_us, orders.get(name))
        for feat, arr in zip(view.features, take_rows(index.data.select(view.features), rows, ok), strict=True):
            table = table.append_column(f"{view.name}__{feat}", arr)
    return table


def _duckdb_join(
    entities: pa.Table,
    res: Resolution,
    indexes: list[tuple[ViewPlan, ViewIndex]],
    wanted: list[tuple[str, str, str]],
    user_cols: list[str],
    stream: bool,
) -> Any:
    """The same join as one DuckDB statement: the entity frame ASOF LEFT JOIN each index."""
    con = connect()
    con.register("ent", entities)
    select = [f"e.{q(c)}" for c in user_cols]
    joins = []
    for i, (view, index) in enumerate(indexes):
        alias, table = f"v{i}", f"idx{i}"
        con.register(table, index.table)
        cond = " AND ".join(f"e.{q(k)} = {alias}.{q(k)}" for k in view.join_keys)
        joins.append(f"ASOF LEFT JOIN {table} {alias} ON {cond} AND e.{q(ETS)} >= {alias}.{q(TS)}")
        ttl = view.ttl_us
        for feat in view.features:
            expr = f"{alias}.{q(feat)}"
            if ttl is not None:
                expr = f"CASE WHEN {alias}.{q(TS)} >= e.{q(ETS)} - to_microseconds({int(ttl)}) THEN {expr} END"
            select.append(f"{expr} AS {q(f'{view.name}__{feat}')}")
    sql = f"SELECT {', '.join(select)} FROM ent e {' '.join(joins)} ORDER BY e.{q(ROW)}"
    if stream and not res.odfvs:
        return _finish_reader(con.sql(sql).arrow(), con, res, wanted, user_cols)
    try:
        table = con.sql(sql).to_arrow_table()
    finally:
        con.close()
    return finish(table, res, wanted, user_cols)


def finish(table: pa.Table, res: Resolution, wanted: list[tuple[str, str, str]], user_cols: list[str]) -> pa.Table:
    """Apply on-demand views, name the columns, give timestamps their zone, drop helpers."""
    if res.odfvs:
        table = apply_on_demand(table, res, user_cols)
    dtypes = {(v.name, f["name"]): f["dtype"] for v in res.views for f in v.spec["schema"]}
    dtypes.update({(o.name, f["name"]): f["dtype"] for o in res.odfvs for f in o.spec["schema"]})
    arrays, names = [table.column(c) for c in user_cols], list(user_cols)
    for view, feat, col in wanted:
        arr = table.column(f"{view}__{feat}")
        if dtypes.get((view, feat)) == "timestamp" and arr.type.tz is None:
            arr = arr.cast(pa.timestamp("us", tz="UTC"))
        arrays.append(arr)
        names.append(col)
    return pa.Table.from_arrays(arrays, names=names)


def _finish_reader(
    reader: Any, con: Any, res: Resolution, wanted: list[tuple[str, str, str]], user_cols: list[str]
) -> pa.RecordBatchReader:
    schema = finish(pa.Table.from_batches([], schema=reader.schema), res, wanted, user_cols).schema

    def batches() -> Any:
        try:
            for batch in reader:
                yield from finish(pa.Table.from_batches([batch]), res, wanted, user_cols).to_batches()
        finally:
            con.close()

    return pa.RecordBatchReader.from_batches(schema, batches())


# --- on-demand views --------------------------------------------------------------------------
def apply_on_demand(table: pa.Table, res: Resolution, user_cols: list[str]) -> pa.Table:
    """Run each on-demand view's function (loaded in this process) and add its columns."""
    from plinth.features.ondemand import run_odfv

    for odfv in res.odfvs:
        inputs = _odfv_inputs(table, odfv, user_cols)
        out = run_odfv(odfv, inputs)
        for feat in odfv.features:
            table = table.append_column(f"{odfv.name}__{feat}", out.column(feat))
    return table


def _odfv_inputs(table: pa.Table, odfv: OdfvPlan, user_cols: list[str]) -> pa.Table:
    arrays: dict[str, Any] = {}
    counts: dict[str, int] = {}
    for _view, feat in odfv.inputs:
        counts[feat] = counts.get(feat, 0) + 1
    for view, feat in odfv.inputs:
        col = table.column(f"{view}__{feat}")
        arrays[f"{view}__{feat}"] = col
        if counts[feat] == 1:
            arrays[feat] = col
    for name in odfv.request_fields:
        if name in user_cols:
            arrays[name] = table.column(name)
    return pa.table(arrays)
