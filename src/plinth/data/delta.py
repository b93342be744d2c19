"""The Delta Lake side of datasets: open, write, restore, and query with DuckDB.

Also the per-dataset write lock. Writing a version takes minutes for large data, so it
runs outside the metadata transaction; the lock keeps two writers of one dataset from
interleaving their Delta commits: a PostgreSQL advisory lock when the metadata lives in
PostgreSQL, else a file lock beside the SQLite database.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa

from plinth.core.errors import Unavailable
from plinth.store.table_store import TableStore

__all__ = ["dataset_lock", "duckdb_over", "latest_delta_version", "open_table", "restore", "write"]

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


def duckdb_over(dt: Any, name: str = "__t", extra: pa.RecordBatchReader | Any = None) -> Any:
    """A DuckDB connection with the table (optionally unioned with staged data) as ``name``."""
    import duckdb

    con = duckdb.connect(
        config={"memory_limit": DUCKDB_MEMORY_LIMIT, "preserve_insertion_order": False}
    )
    if dt is None and extra is None:
        raise ValueError("nothing to query")
    if extra is None:
        con.register(name, dt.to_pyarrow_dataset())
    elif dt is None:
        con.register(name, extra)
    else:
        con.register("__old", dt.to_pyarrow_dataset())
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
