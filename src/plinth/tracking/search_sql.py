"""Cached search statements, run on SQLite as SQL text compiled once.

Over a page of a few thousand runs SQLAlchemy's work per execution (looking the compiled
form up, processing and expanding parameters, building result rows) costs about as much
as SQLite's. A :class:`Prepared` statement keeps the SQLAlchemy statement (what runs on
PostgreSQL) and, for SQLite, its SQL text with named parameters, compiled on first use,
which runs on the driver's connection inside the session's transaction. Values stay bound
parameters, never text in the SQL; an ``IN`` list parameter (``expanding``) becomes one
named parameter per item. Where the engine has cursor listeners or echo on, or the driver
raises, the text runs through ``exec_driver_sql`` instead, so listeners, logging and
SQLAlchemy's error translation still see it.
"""

from __future__ import annotations

import re
import sqlite3
from typing import Any

from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite

__all__ = ["Prepared"]

# The SQLite dialect with parameters written :name (sqlite3 binds them from a dict).
_NAMED = SQLiteDialect_pysqlite(paramstyle="named")
_POSTCOMPILE = re.compile(r"__\[POSTCOMPILE_(\w+)\]")


class Prepared:
    """A read statement built once per process; ``fetch`` runs it with a search's values.

    Reads only: a statement the driver refuses is run again through SQLAlchemy.
    """

    __slots__ = ("_defaults", "_expanding", "_parts", "_processors", "statement")

    def __init__(self, statement: Any) -> None:
        self.statement = statement
        self._parts: list[str] | None = None  # SQLite text, split around the expanding parameters
        self._expanding: list[str] = []
        self._defaults: dict[str, Any] = {}
        self._processors: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"Prepared({type(self.statement).__name__})"

    def _compile(self) -> list[str]:
        compiled = self.statement.compile(dialect=_NAMED, compile_kwargs={"render_postcompile": False})
        required = {name: None for name, bind in compiled.binds.items() if bind.required}
        # parameters with a value of their own (a LIMIT constant, the "" of a concat)
        self._defaults = {k: v for k, v in compiled.construct_params(required).items() if k not in required}
        for name, bind in compiled.binds.items():
            processor = bind.type.bind_processor(_NAMED)  # e.g. an aware datetime to SQLite's text
            if processor is not None:
                self._processors[name] = processor
        parts = _POSTCOMPILE.split(str(compiled))
        self._expanding = parts[1::2]
        self._parts = parts
        return parts

    def fetch(self, conn: Any, params: dict[str, Any]) -> list[Any]:
        """The rows of the statement with ``params``: tuples (SQLite) or rows (elsewhere)."""
        if conn.dialect.name != "sqlite":
            return list(conn.execute(self.statement, params).all())
        parts = self._parts or self._compile()
        values = dict(self._defaults)
        values.update(params)
        for name, process in self._processors.items():
            if name in values and name not in self._expanding:
                values[name] = process(values[name])
        if not self._expanding:
            return _run(conn, parts[0], values)
        lists: dict[str, str] = {}
        for name in dict.fromkeys(self._expanding):
            items = values.pop(name)
            if not isinstance(items, list | tuple):  # a literal-rendered single value
                items = [items]
            if not items:  # SQLAlchemy writes the empty set its own way
                return list(conn.execute(self.statement, params).all())
            process = self._processors.get(name)
            names = [f"{name}__{j}" for j in range(len(items))]
            values.update(zip(names, items if process is None else map(process, items), strict=True))
            lists[name] = ", ".join(f":{n}" for n in names)
        text = [lists[part] if i % 2 else part for i, part in enumerate(parts)]
        return _run(conn, "".join(text), values)


def _run(conn: Any, sql: str, values: dict[str, Any]) -> list[Any]:
    dispatch = conn.dispatch
    if not (dispatch.before_cursor_execute or dispatch.after_cursor_execute or conn.engine.echo):
        try:
            return conn.connection.driver_connection.execute(sql, values).fetchall()  # type: ignore[no-any-return]
        except sqlite3.Error:
            pass  # run again below: SQLAlchemy raises its translated error (a read may also succeed now)
    return conn.exec_driver_sql(sql, values).all()  # type: ignore[no-any-return]
