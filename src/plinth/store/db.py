"""The metadata database: engines for SQLite and PostgreSQL, sessions, migrations.

SQLite runs in WAL mode with foreign keys on, a busy timeout, and ``BEGIN IMMEDIATE`` for
every transaction, so two processes writing at once wait for each other instead of
failing with "database is locked" — except a session opened with ``reads_only=True`` (a
service function marked with :func:`reads_only`), which begins deferred: it takes no write
lock, so it neither waits for writers nor holds them up. Mark only functions that never
write: a write in a deferred transaction takes the lock late and can fail with "database
is locked" when another writer got there first. PostgreSQL goes through psycopg 3.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from plinth.core.errors import Unavailable

__all__ = ["Base", "Database", "TABLE_MODULES", "reads_only"]

_READS_ONLY: ContextVar[bool] = ContextVar("plinth_reads_only", default=False)
_MARK = "__plinth_reads_only__"


def reads_only(fn: Any) -> Any:
    """Mark a service function that only reads: ``Caller.call`` runs it in a read-only session."""
    setattr(fn, _MARK, True)
    return fn


def is_reads_only(fn: Any) -> bool:
    return bool(getattr(fn, _MARK, False))


# Every module that defines ORM tables; Alembic and the test fixtures import them all.
TABLE_MODULES = [
    "plinth.store.events",
    "plinth.governance.tables",
    "plinth.artifacts.tables",
    "plinth.tracking.tables",
    "plinth.data.tables",
    "plinth.registry.tables",
    "plinth.features.tables",
    "plinth.serving.tables",
]

SQLITE_BUSY_TIMEOUT_S = 60


class Base(DeclarativeBase):
    pass


def import_table_modules() -> None:
    import importlib

    for name in TABLE_MODULES:
        importlib.import_module(name)


def masked(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


class Database:
    """One metadata database. Building it does no I/O; the engine starts on first use."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine: Engine | None = None
        self._sessions: sessionmaker[Session] | None = None
        self._lock = threading.Lock()
        self._ready = False

    def __repr__(self) -> str:
        return f"Database({masked(self.url)!r})"

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            with self._lock:
                if self._engine is None:
                    self._engine = self._create_engine()
                    self._sessions = sessionmaker(self._engine, expire_on_commit=False)
        return self._engine

    def _create_engine(self) -> Engine:
        if not self.is_sqlite:
            return create_engine(self.url, pool_pre_ping=True, pool_size=10, max_overflow=20)
        database = make_url(self.url).database
        if database and database != ":memory:":
            try:
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise self.unreachable(exc) from None
        engine = create_engine(
            self.url,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False},
        )

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
            cur = dbapi_conn.cursor()
            cur.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_S * 1000}")
            _enable_wal(cur)
            cur.execute("PRAGMA synchronous = NORMAL")
            cur.execute("PRAGMA foreign_keys = ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Any) -> None:
            # a read takes no write lock; ``PRAGMA query_only`` would also refuse a stray write,
            # but switching it re-prepares the connection's statements (+0.25 ms a search)
            conn.exec_driver_sql("BEGIN" if _READS_ONLY.get() else "BEGIN IMMEDIATE")

        return engine

    @contextmanager
    def session(self, reads_only: bool = False) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on any error.
        ``reads_only``: on SQLite the transaction begins deferred and refuses writes."""
        self.engine  # noqa: B018 - start the engine and session factory
        assert self._sessions is not None
        token = _READS_ONLY.set(reads_only)
        try:
            with self._sessions() as session, session.begin():
                yield session
        except OperationalError as exc:
            if _is_connection_error(exc):
                raise self.unreachable(exc) from None
            raise
        finally:
            _READS_ONLY.reset(token)

    def unreachable(self, exc: BaseException) -> Unavailable:
        """The one-line error naming the (password-masked) URL and what went wrong."""
        orig = getattr(exc, "orig", None) or exc
        lines = str(orig).strip().splitlines()
        reason = lines[0] if lines else type(orig).__name__
        if self.is_sqlite:
            return Unavailable(
                f"cannot open the SQLite metadata database at {masked(self.url)}: {reason}; "
                "check that its folder exists and is writable (PLINTH_DB_URL or PLINTH_HOME)",
                database=masked(self.url),
            )
        return Unavailable(
            f"cannot reach the metadata database at {masked(self.url)}: {reason}",
            database=masked(self.url),
        )

    def check(self) -> None:
        """Connect once, raising :class:`Unavailable` with the URL if that fails."""
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except (OperationalError, DBAPIError) as exc:
            raise self.unreachable(exc) from None

    # --- migrations -------------------------------------------------------------------
    def alembic_config(self) -> Any:
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
        cfg.attributes["engine"] = self.engine
        return cfg

    def current_revision(self) -> str | None:
        with self.engine.connect() as conn:
            if not inspect(conn).has_table("alembic_version"):
                return None
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()

    def head_revision(self) -> str | None:
        """The newest migration. Read from the files' ``revision``/``down_revision`` lines:
        importing Alembic to ask it costs about 0.3 s on every process start."""
        head = _head_from_files(Path(__file__).parent / "migrations" / "versions")
        if head is not None:
            return head
        from alembic.script import ScriptDirectory

        return ScriptDirectory.from_config(self.alembic_config()).get_current_head()

    def upgrade(self, revision: str = "head") -> None:
        """Apply the migrations (``plinth db upgrade``)."""
        from alembic import command

        self.check()
        with self._lock, self._migration_lock():
            command.upgrade(self.alembic_config(), revision)
        self._ready = True

    @contextmanager
    def _migration_lock(self) -> Iterator[None]:
        """Serialise migrations across processes that start at once on one database.

        SQLite needs nothing more: Alembic reads the current revision inside its
        ``BEGIN IMMEDIATE`` transaction. PostgreSQL has no such lock, so two servers
        starting on an empty schema would both create the tables; an advisory lock (per
        schema) makes the second wait and then find the schema up to date.
        """
        if self.is_sqlite:
            yield
            return
        with self.engine.connect() as conn:
            key = "plinth-migrations:" + str(conn.execute(text("SELECT current_schema()")).scalar())
            conn.execute(text("SELECT pg_advisory_lock(hashtext(:key))"), {"key": key})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(hashtext(:key))"), {"key": key})
                conn.commit()

    def ensure_ready(self) -> None:
        """Upgrade the schema if it is behind; done once per process on first use."""
        if self._ready:
            return
        self.check()
        if self.current_revision() != self.head_revision():
            self.upgrade()
        self._ready = True

    def dispose(self) -> None:
        if self._engine is not None:
            self._engine.dispose()


def _enable_wal(cur: Any) -> None:
    """Switch a SQLite file to WAL once. Changing the journal mode needs an exclusive lock
    and SQLite answers "database is locked" at once, without waiting the busy timeout,
    when another process holds the file (two processes opening a new database together),
    so wait here the way the busy timeout would."""
    import sqlite3
    import time

    if str(cur.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
        return
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_S
    while True:
        try:
            cur.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


_REVISION_LINE = re.compile(r"^(down_revision|revision)\s*=\s*['\"]?([\w.-]+|None)['\"]?\s*$", re.M)


def _head_from_files(folder: Path) -> str | None:
    """The single revision no other names as its parent; None when that is not clear-cut
    (merges, branches, unusual files), so that the caller asks Alembic instead."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for file in folder.glob("*.py"):
        found = dict((k, v) for k, v in _REVISION_LINE.findall(file.read_text()))
        if "revision" not in found or "down_revision" not in found:
            return None
        revisions.add(found["revision"])
        if found["down_revision"] != "None":
            parents.add(found["down_revision"])
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def _is_connection_error(exc: OperationalError) -> bool:
    text_ = str(exc.orig).lower() if exc.orig else str(exc).lower()
    return any(
        marker in text_
        for marker in ("connection", "could not connect", "unable to open", "timeout expired")
    )
