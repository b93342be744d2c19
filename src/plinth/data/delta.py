"""The Delta Lake side of datasets: open, write, restore, and query with DuckDB.

Also the per-dataset write lock. Writing a version takes minutes for large data, so it
runs outside the metadata transaction; the lock keeps two writers of one dataset from
interleaving their Delta commits: a PostgreSQL advisory lock when the metadata lives in
PostgreSQL, else a file lock beside the SQLite database.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute  # noqa: F401 - pa.compute

from plinth.core.errors import Unavailable
from plinth.store.table_store import TableStore

__all__ = [
    "dataset_lock",
    "duckdb_over",
    "LogFacts",
    "latest_delta_version",
    "log_facts",
    "new_duckdb",
    "open_table",
    "restore",
    "write",
]

DUCKDB_MEMORY_LIMIT = "1GB"


def open_table(tables: TableStore, location: str, version: int | None = None) -> Any:
    from deltalake import DeltaTable

    try:
        return DeltaTable(location, version=version, storage_options=tables.storage_options)
    except Exception as exc:
        raise Unavailable(
            f"cannot open the Delta table at {location}: {str(exc).splitlines()[0]}"
        ) from None


def latest_delta_version(tables: TableStore, location: str) -> int | None:
    from deltalake import DeltaTable

    if not DeltaTable.is_deltatable(location, storage_options=tables.storage_options):
        return None
    return int(open_table(tables, location).version())


def table_arrow_schema(dt: Any) -> pa.Schema:
    return pa.schema(dt.schema().to_arrow())


def write(
    tables: TableStore,
    location: str,
    reader: pa.RecordBatchReader,
    *,
    mode: str,
    schema_mode: str | None,
    description: str,
) -> int:
    """Write one Delta commit; returns its version. Raises whatever deltalake raises."""
    from deltalake import CommitProperties, write_deltalake

    tables.prepare(location)
    write_deltalake(
        location,
        reader,
        mode=mode,  # type: ignore[arg-type]
        schema_mode=schema_mode,  # type: ignore[arg-type]
        storage_options=tables.storage_options,
        commit_properties=CommitProperties(custom_metadata={"plinth.source": description[:500]}),
    )
    return int(open_table(tables, location).version())


def restore(tables: TableStore, location: str, delta_version: int) -> None:
    """Put the table back to ``delta_version`` (a new commit with that content)."""
    dt = open_table(tables, location)
    if dt.version() != delta_version:
        dt.restore(delta_version)


def remove_table(tables: TableStore, location: str) -> None:
    """Remove a table nobody references (a first ingest that failed), local stores only."""
    import shutil

    if tables.is_local:
        shutil.rmtree(location, ignore_errors=True)


def _plain_local_files(dt: Any) -> list[str] | None:
    """The Parquet files of a Delta version when DuckDB can read them as they are: local
    files, no partition columns, no column mapping, no deletion vectors. None otherwise."""
    try:
        protocol = dt.protocol()
        features = set(protocol.reader_features or [])
        if features - {"timestampNtz"}:
            return None
        meta = dt.metadata()
        if meta.partition_columns:
            return None
        if (meta.configuration or {}).get("delta.columnMapping.mode", "none") != "none":
            return None
        files = []
        for uri in dt.file_uris():
            if uri.startswith("file://"):
                uri = uri[len("file://") :]
            if "://" in uri or not Path(uri).is_file():
                return None
            files.append(uri)
    except Exception:
        return None
    return files or None


@dataclass
class LogFacts:
    """What the Delta log's file statistics say of a version, where every file has them:
    the row count, per column the null count, and the (min, max) of integer columns.
    Exact (integers and counts are never truncated), so a check can be decided on them."""

    rows: int
    nulls: dict[str, int]
    int_bounds: dict[str, tuple[int, int]]


def log_facts(dt: Any) -> LogFacts | None:
    """The :class:`LogFacts` of a version, or None where the statistics cannot be trusted
    as they are (deletion vectors, column mapping) or are missing."""
    try:
        protocol = dt.protocol()
        if "deletionVectors" in set(protocol.reader_features or []):
            return None
        meta = dt.metadata()
        if (meta.configuration or {}).get("delta.columnMapping.mode", "none") != "none":
            return None
        actions = pa.table(dt.get_add_actions(flatten=True))
    except Exception:
        return None
    if actions.num_rows == 0 or "num_records" not in actions.column_names:
        return None
    records = actions.column("num_records")
    if records.null_count:
        return None
    facts = LogFacts(rows=int(pa.compute.sum(records).as_py() or 0), nulls={}, int_bounds={})
    for col in actions.column_names:
        if col.startswith("null_count."):
            counts = actions.column(col)
            if not counts.null_count and pa.types.is_integer(counts.type):
                facts.nulls[col[len("null_count.") :]] = int(pa.compute.sum(counts).as_py() or 0)
        elif col.startswith("min.") and "max." + col[4:] in actions.column_names:
            lows, highs = actions.column(col), actions.column("max." + col[4:])
            if (
                pa.types.is_integer(lows.type)
                and pa.types.is_integer(highs.type)
                and not lows.null_count
                and not highs.null_count
            ):
                low = pa.compute.min(lows).as_py()
                high = pa.compute.max(highs).as_py()
                facts.int_bounds[col[4:]] = (int(low), int(high))
    return facts


def numeric_bounds(dt: Any) -> dict[str, tuple[float, float]]:
    """Per column, the (min, max) that the Delta log's file statistics give, where every file
    has both. A hint only: the profile checks it against the min/max it computes."""
    try:
        actions = pa.table(dt.get_add_actions(flatten=True))
    except Exception:
        return {}
    if actions.num_rows == 0:
        return {}
    bounds: dict[str, tuple[float, float]] = {}
    names = set(actions.column_names)
    for col in actions.column_names:
        if not col.startswith("min."):
            continue
        name = col[4:]
        if "max." + name not in names:
            continue
        try:
            lows = actions.column(col).to_pylist()
            highs = actions.column("max." + name).to_pylist()
            if any(v is None for v in lows) or any(v is None for v in highs):
                continue
            if any(isinstance(v, bool | str | bytes) for v in lows + highs):
                continue
            bounds[name] = (float(min(lows)), float(max(highs)))
        except (TypeError, ValueError, pa.ArrowException):
            continue
    return bounds


def _register_table(con: Any, dt: Any, name: str) -> None:
    """``name`` on ``con``: the Delta version's rows.

    Where the version is plain local Parquet (see :func:`_plain_local_files`), DuckDB's own
    multi-threaded Parquet reader scans the files (projection pushdown, row-group
    parallelism); the view has exactly the columns and DuckDB types of the Arrow dataset
    (checked, else the Arrow dataset is used), so queries see the same relation.
    """
    dataset = dt.to_pyarrow_dataset()
    files = _plain_local_files(dt)
    if files is not None:
        arrow_name = name + "__arrow"
        con.register(arrow_name, dataset)
        try:
            want = con.execute(f"DESCRIBE {arrow_name}").fetchall()
            cols = ", ".join('"' + str(r[0]).replace('"', '""') + '"' for r in want)
            listed = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
            con.execute(
                f"CREATE VIEW {name} AS SELECT {cols} FROM read_parquet([{listed}], "
                "union_by_name = true)"
            )
            got = con.execute(f"DESCRIBE {name}").fetchall()
            if [r[:2] for r in got] == [r[:2] for r in want]:
                con.unregister(arrow_name)
                return
            con.execute(f"DROP VIEW {name}")
        except Exception:
            con.execute(f"DROP VIEW IF EXISTS {name}")
        con.unregister(arrow_name)
    con.register(name, dataset)


def new_duckdb() -> Any:
    """A DuckDB connection for queries over datasets: bounded memory, every core."""
    import duckdb

    con = duckdb.connect(
        config={
            "memory_limit": DUCKDB_MEMORY_LIMIT,
            "preserve_insertion_order": False,
            "threads": os.cpu_count() or 1,
        }
    )
    con.execute("SET enable_progress_bar = false")  # else DuckDB draws it on the caller's stdout
    return con


def duckdb_over(dt: Any, name: str = "__t", extra: pa.RecordBatchReader | Any = None) -> Any:
    """A DuckDB connection with the table (optionally unioned with staged data) as ``name``."""
    if dt is None and extra is None:
        raise ValueError("nothing to query")
    con = new_duckdb()
    if extra is None:
        _register_table(con, dt, name)
    elif dt is None:
        con.register(name, extra)
    else:
        _register_table(con, dt, "__old")
        con.register("__new", extra)
        con.execute(
            f"CREATE VIEW {name} AS SELECT * FROM __old UNION ALL BY NAME SELECT * FROM __new"
        )
    return con


# --- the per-dataset write lock --------------------------------------------------------------
@contextmanager
def dataset_lock(db: Any, settings: Any, key: str) -> Iterator[None]:
    """Hold the write lock of one dataset (``key`` = project id + name) while inside."""
    if not db.is_sqlite:
        from sqlalchemy import text

        with db.engine.connect() as conn:
            conn.execute(
                text("SELECT pg_advisory_lock(hashtext(:k))"), {"k": "plinth-dataset:" + key}
            )
            conn.commit()
            try:
                yield
            finally:
                conn.execute(
                    text("SELECT pg_advisory_unlock(hashtext(:k))"), {"k": "plinth-dataset:" + key}
                )
                conn.commit()
        return
    import fcntl

    from sqlalchemy.engine import make_url

    database = make_url(db.url).database
    folder = (
        Path(database).parent
        if database and database != ":memory:"
        else Path(tempfile.gettempdir())
    )
    folder = folder / "plinth-locks"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (hashlib.sha256(key.encode()).hexdigest()[:32] + ".lock")
    with path.open("a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
