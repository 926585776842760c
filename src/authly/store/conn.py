"""What a repository function is given: one connection, whichever engine is behind it.

Repository functions are written ``fn(conn, *args)`` against ``Conn``: ``execute`` and
``executemany`` with ``?`` (positional) or ``:name`` (named) placeholders, rows readable
by column name or position, ``rowcount`` on the cursor. The SQL is the common subset of
SQLite and PostgreSQL (``INSERT ... ON CONFLICT DO NOTHING``, ``CASE`` instead of
summing booleans, primary keys instead of ``rowid``); ``conn.dialect`` is there for the
rare statement that must differ. A unique or foreign-key violation raises
``IntegrityError`` whatever the engine, so repositories translate it into their own
error without importing a driver.

``write_transaction`` is the one way to group statements: SQLite takes the write lock up
front (``BEGIN IMMEDIATE``); PostgreSQL runs the group SERIALIZABLE, and the database
retries the whole function when PostgreSQL reports a serialization conflict, so a
read-then-write group behaves on both engines as if it ran alone.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

Params = Sequence[Any] | Mapping[str, Any]


class IntegrityError(Exception):
    """Raised when a statement would break a unique, foreign-key or not-null rule."""


class Row(Protocol):
    """A result row: ``row["column"]`` or ``row[0]``."""

    def __getitem__(self, key: str | int, /) -> Any: ...

    def keys(self) -> list[str]: ...


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Conn(Protocol):
    """One engine connection, used by one thread at a time."""

    dialect: str  # "sqlite" | "postgresql"

    def execute(self, sql: str, params: Params = (), /) -> Cursor: ...

    def executemany(self, sql: str, rows: Sequence[Params], /) -> Cursor: ...

    def begin_write(self) -> None: ...

    def commit(self) -> None: ...

    def rollback(self) -> None: ...


@contextmanager
def write_transaction(conn: Conn) -> Iterator[Conn]:
    """Run the block as one write transaction: committed whole or not at all, and
    isolated from every other process sharing the store (see the module docstring)."""
    conn.begin_write()
    try:
        yield conn
    except BaseException:
        conn.rollback()
        raise
    else:
        conn.commit()


class SqliteConn:
    """``Conn`` over a sqlite3 connection in autocommit mode (isolation_level=None)."""

    dialect = "sqlite"

    def __init__(self, raw: sqlite3.Connection) -> None:
        self.raw = raw

    def execute(self, sql: str, params: Params = (), /) -> Cursor:
        try:
            return self.raw.execute(sql, params)
        except sqlite3.IntegrityError as exc:
            raise IntegrityError(str(exc)) from exc

    def executemany(self, sql: str, rows: Sequence[Params], /) -> Cursor:
        try:
            return self.raw.executemany(sql, rows)
        except sqlite3.IntegrityError as exc:
            raise IntegrityError(str(exc)) from exc

    def begin_write(self) -> None:
        self.raw.execute("BEGIN IMMEDIATE")

    def commit(self) -> None:
        self.raw.execute("COMMIT")

    def rollback(self) -> None:
        self.raw.execute("ROLLBACK")
