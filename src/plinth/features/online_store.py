"""The online store: the newest value of each entity, per feature view, for fast lookups.

Two backends behind one interface, both passing one contract test suite: SQLite (the
embedded default, a file under ``PLINTH_HOME``) and Redis (production), chosen by
``PLINTH_ONLINE_STORE_URL`` (``sqlite:///PATH`` or ``redis://HOST:PORT/DB``).

A *table* is one feature view of one project; a row is one entity key with the event
timestamp and ``created`` time (microseconds since the epoch, UTC) and the view's values
as JSON. A write keeps whichever of the stored and the new row is newer by (event
timestamp, created): materializing an old range after a fresher push never goes back in
time. Building a store does no I/O; it connects on first use.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from operator import itemgetter
from pathlib import Path
from urllib.parse import urlsplit

from plinth.core.errors import InvalidInput, Unavailable

__all__ = ["OnlineStore", "Row", "SQLiteOnlineStore", "masked_url", "open_online_store"]

# (entity key, event timestamp us, created us, values as JSON)
Row = tuple[str, int, int, str]
READ_CHUNK = 500


def masked_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@")
    return url


class OnlineStore(ABC):
    """The contract: ``write`` keeps the newer row per key, ``read`` answers in key order."""

    url: str
    concurrent_writes = False  # whether writes to several tables gain from running side by side

    def __repr__(self) -> str:
        return f"{type(self).__name__}({masked_url(self.url)!r})"

    @abstractmethod
    def write(self, table: str, rows: Sequence[Row]) -> int:
        """Store rows; a row older than the stored one (event ts, then created) is ignored.
        Returns how many rows were stored."""

    @abstractmethod
    def read(self, table: str, keys: Sequence[str]) -> list[tuple[int, str] | None]:
        """(event ts us, values JSON) for each key, None where the key has no row."""

    def read_many(self, requests: Sequence[tuple[str, Sequence[str]]]) -> list[list[tuple[int, str] | None]]:
        """``read`` for several tables at once (Redis answers them in one round trip)."""
        return [self.read(table, keys) for table, keys in requests]

    @abstractmethod
    def count(self, table: str) -> int:
        """How many entity keys the table holds."""

    @abstractmethod
    def drop(self, table: str) -> None:
        """Forget every row of the table."""

    @abstractmethod
    def close(self) -> None: ...


class SQLiteOnlineStore(OnlineStore):
    """One SQLite file (WAL), one connection per thread."""

    def __init__(self, url: str) -> None:
        self.url = url
        path = url[len("sqlite:///") :] if url.startswith("sqlite:///") else ""
        if not path or path == ":memory:":
            raise InvalidInput(
                f"PLINTH_ONLINE_STORE_URL {url!r}: expected sqlite:///PATH to a file", field="online_store_url"
            )
        self.path = Path(path)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._ready = False

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            return conn  # type: ignore[no-any-return]
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=60, check_same_thread=False, isolation_level=None)
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            with self._lock:
                if not self._ready:
                    conn.execute(
                        "CREATE TABLE IF NOT EXISTS online_features (tbl TEXT NOT NULL, k TEXT NOT NULL, "
                        "ts INTEGER NOT NULL, created INTEGER NOT NULL, v TEXT NOT NULL, PRIMARY KEY (tbl, k)) "
                        "WITHOUT ROWID"
                    )
                    self._ready = True
                self._all.append(conn)
        except (sqlite3.Error, OSError) as exc:
            raise Unavailable(f"cannot open the SQLite online store at {self.path}: {exc}") from None
        self._local.conn = conn
        return conn

    def write(self, table: str, rows: Sequence[Row]) -> int:
        if not rows:
            return 0
        conn = self._conn()
        try:
            conn.execute("BEGIN IMMEDIATE")
            cur = conn.executemany(
                "INSERT INTO online_features (tbl, k, ts, created, v) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (tbl, k) DO UPDATE SET ts = excluded.ts, created = excluded.created, v = excluded.v "
                "WHERE excluded.ts > online_features.ts OR "
                "(excluded.ts = online_features.ts AND excluded.created >= online_features.created)",
                # in key order (a stable sort keeps a key's rows as given): B-tree inserts a third cheaper
                [(table, k, ts, cr, v) for k, ts, cr, v in sorted(rows, key=itemgetter(0))],
            )
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise Unavailable(f"the SQLite online store at {self.path} failed a write: {exc}") from None
        return int(cur.rowcount)

    def read(self, table: str, keys: Sequence[str]) -> list[tuple[int, str] | None]:
        conn = self._conn()
        if len(keys) == 1:
            row = conn.execute("SELECT ts, v FROM online_features WHERE tbl = ? AND k = ?", (table, keys[0])).fetchone()
            return [row]
        found: dict[str, tuple[int, str]] = {}
        unique = list(dict.fromkeys(keys))
        for i in range(0, len(unique), READ_CHUNK):
            chunk = unique[i : i + READ_CHUNK]
            marks = ",".join("?" * len(chunk))  # placeholders only; the keys are parameters
            for k, ts, v in conn.execute(
                f"SELECT k, ts, v FROM online_features WHERE tbl = ? AND k IN ({marks})", (table, *chunk)
            ):
                found[k] = (ts, v)
        return [found.get(k) for k in keys]

    def count(self, table: str) -> int:
        return int(self._conn().execute("SELECT count(*) FROM online_features WHERE tbl = ?", (table,)).fetchone()[0])

    def drop(self, table: str) -> None:
        self._conn().execute("DELETE FROM online_features WHERE tbl = ?", (table,))

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
            self._all.clear()
        self._local = threading.local()


_stores: dict[str, OnlineStore] = {}
_stores_lock = threading.Lock()


def open_online_store(url: str) -> OnlineStore:
    """The store for a URL, one per process (connections are opened on first use)."""
    with _stores_lock:
        store = _stores.get(url)
        if store is None:
            if url.startswith("sqlite:"):
                store = SQLiteOnlineStore(url)
            elif url.startswith(("redis://", "rediss://")):
                from plinth.features.redis_store import RedisOnlineStore

                store = RedisOnlineStore(url)
            else:
                raise InvalidInput(
                    f"PLINTH_ONLINE_STORE_URL {masked_url(url)!r}: expected sqlite:///PATH or redis://HOST:PORT/DB",
                    field="online_store_url",
                )
            _stores[url] = store
        return store


def close_online_stores() -> None:
    with _stores_lock:
        for store in _stores.values():
            store.close()
        _stores.clear()
