"""The shared store on PostgreSQL: psycopg 3's sync pool, reached from Trio through a
bounded set of worker threads (``trio.to_thread`` under a CapacityLimiter the size of the
pool; DESIGN §1 records why not an asyncio driver through a bridge).

Each ``run(fn, *args)`` borrows one pooled connection (autocommit), hands it to ``fn``
wrapped as a ``Conn`` (store/conn.py), and returns it. ``write_transaction`` groups run
SERIALIZABLE; when PostgreSQL reports a serialization conflict or a deadlock, the whole
``fn`` runs again on a fresh transaction (nothing of the failed attempt was committed),
so read-then-write groups keep the meaning they have on SQLite's single writer.

A lost database is ``StoreUnavailable`` (HTTP 503): the pool's wait is bounded, a broken
connection is dropped, and after a failure the idle connections are checked so the
first requests after the database returns do not meet dead sockets. Nothing restarts:
the pool reconnects in the background as the database answers again.
"""

from __future__ import annotations

import functools
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

import psycopg
import psycopg.errors
import trio
from psycopg.rows import RowMaker
from psycopg_pool import ConnectionPool, PoolTimeout

from authly.errors import StoreError, StoreUnavailable
from authly.store.conn import Cursor, IntegrityError, Params
from authly.store.migrations import SchemaTooNew, migrate
from authly.store.urls import masked_database_url

T = TypeVar("T")
log = logging.getLogger("authly.store")

ACQUIRE_TIMEOUT = 3.0  # seconds a query waits for a pooled connection
CONNECT_TIMEOUT = 5  # seconds to open one connection
STATEMENT_TIMEOUT_MS = 30_000
RETRIES = 12  # serialization conflicts retried before giving up

_PLACEHOLDER = re.compile(r"\?|(?<![:\w]):([A-Za-z_]\w*)")


@functools.lru_cache(maxsize=2048)
def translate(sql: str) -> str:
    """``?`` and ``:name`` placeholders to psycopg's ``%s`` and ``%(name)s``."""
    escaped = sql.replace("%", "%%")
    return _PLACEHOLDER.sub(lambda m: "%s" if m.group(0) == "?" else f"%({m.group(1)})s", escaped)


def _adapt(params: Params) -> Params:
    """Booleans as 0/1: the schema keeps SQLite's INTEGER flags on both engines."""
    if isinstance(params, Mapping):
        return {k: int(v) if v is True or v is False else v for k, v in params.items()}
    return [int(v) if v is True or v is False else v for v in params]


class PgRow:
    """A row readable by column name or position, like sqlite3.Row."""

    __slots__ = ("_index", "_values")

    def __init__(self, values: Sequence[Any], index: dict[str, int]) -> None:
        self._values = values
        self._index = index

    def __getitem__(self, key: str | int) -> Any:
        if isinstance(key, str):
            return self._values[self._index[key]]
        return self._values[key]

    def keys(self) -> list[str]:
        return list(self._index)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


def row_factory(cursor: Any) -> RowMaker[PgRow]:
    description = cursor.description or ()
    index: dict[str, int] = {}
    for i, column in enumerate(description):
        index.setdefault(column.name, i)
    return lambda values: PgRow(values, index)


class PgConn:
    """``Conn`` over one pooled psycopg connection in autocommit mode."""

    dialect = "postgresql"

    def __init__(self, raw: psycopg.Connection[Any]) -> None:
        self.raw = raw

    def execute(self, sql: str, params: Params = (), /) -> Cursor:
        try:
            if not params:
                return self.raw.execute(sql.encode())
            return self.raw.execute(translate(sql).encode(), _adapt(params))
        except psycopg.errors.IntegrityError as exc:
            raise IntegrityError(str(exc)) from exc

    def executemany(self, sql: str, rows: Sequence[Params], /) -> Cursor:
        cursor = self.raw.cursor()
        if rows:
            try:
                cursor.executemany(translate(sql).encode(), [_adapt(r) for r in rows])
            except psycopg.errors.IntegrityError as exc:
                raise IntegrityError(str(exc)) from exc
        return cursor

    def begin_write(self) -> None:
        self.raw.execute(b"BEGIN ISOLATION LEVEL SERIALIZABLE")

    def commit(self) -> None:
        self.raw.execute(b"COMMIT")

    def rollback(self) -> None:
        if self.raw.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            self.raw.execute(b"ROLLBACK")


_RETRYABLE = (psycopg.errors.SerializationFailure, psycopg.errors.DeadlockDetected)


class PostgresDatabase:
    """A psycopg pool of ``pool_size`` connections. Use ``open_database``."""

    backend = "postgresql"

    def __init__(self, url: str, pool_size: int = 10) -> None:
        self.url = url
        self.pool_size = pool_size
        self._limiter = trio.CapacityLimiter(pool_size)
        self._pool: ConnectionPool[psycopg.Connection[Any]] | None = None
        self._closed = False
        self._close_requested = trio.Event()
        self._in_use = 0  # connections lent to a query (worker threads update it)
        self._count_lock = threading.Lock()
        self.observe: Callable[[float], None] | None = None

    @property
    def is_open(self) -> bool:
        return self._pool is not None and not self._closed

    def stats(self) -> dict[str, int]:
        """Pool use for /health and /metrics: connections lent to a query right now."""
        return {"size": self.pool_size, "in_use": self._in_use}

    def masked_url(self) -> str:
        return masked_database_url(self.url)

    def close(self) -> None:
        """Stop taking queries; ``serve`` then closes the pool. Call from Trio."""
        self._closed = True
        self._close_requested.set()

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(conn, *args)`` on a pooled connection in a worker thread.

        Error handling: a database that cannot be reached is StoreUnavailable, any other
        driver error StoreError; errors ``fn`` raises on purpose pass through unchanged.
        """
        if not self.is_open:
            raise StoreError("the store is not open")
        start = time.perf_counter()
        result = await trio.to_thread.run_sync(
            self._call, fn, args, limiter=self._limiter, abandon_on_cancel=True
        )
        if self.observe is not None:
            self.observe(time.perf_counter() - start)
        return result

    def _call(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        pool = self._pool
        if pool is None or self._closed:
            raise StoreError("the store is closed")
        name = getattr(fn, "__name__", "query")
        for attempt in range(RETRIES):
            try:
                with pool.connection(timeout=ACQUIRE_TIMEOUT) as raw:
                    with self._count_lock:
                        self._in_use += 1
                    try:
                        return fn(PgConn(raw), *args)
                    finally:
                        with self._count_lock:
                            self._in_use -= 1
            except _RETRYABLE:
                if attempt == RETRIES - 1:
                    raise StoreError(f"store query {name} kept conflicting") from None
                time.sleep(random.uniform(0, 0.001 * 2**attempt))
            except PoolTimeout as exc:
                raise StoreUnavailable(
                    f"no database connection within {ACQUIRE_TIMEOUT:g} s"
                ) from exc
            except psycopg.OperationalError as exc:
                log.error("store query %s failed: %s", name, _one_line(exc))
                pool.check()  # drop the other dead connections now, not one request each
                raise StoreUnavailable(f"the database is unreachable: {_one_line(exc)}") from exc
            except psycopg.Error as exc:
                log.error("store query %s failed: %s", name, _one_line(exc))
                raise StoreError(f"store query failed: {exc.__class__.__name__}") from exc
        raise AssertionError("unreachable")

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Open the pool, migrate, and hold the pool open until cancelled or closed."""
        pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            self.url,
            min_size=min(2, self.pool_size),
            max_size=self.pool_size,
            open=False,
            timeout=ACQUIRE_TIMEOUT,
            name="authly",
            kwargs={
                "autocommit": True,
                "row_factory": row_factory,
                "connect_timeout": CONNECT_TIMEOUT,
                "options": f"-c statement_timeout={STATEMENT_TIMEOUT_MS}",
            },
        )
        try:
            await trio.to_thread.run_sync(self._open, pool)
        except (psycopg.Error, PoolTimeout, SchemaTooNew) as exc:
            await trio.to_thread.run_sync(functools.partial(pool.close, timeout=1))
            raise StoreError(f"cannot open {self.masked_url()}: {_one_line(exc)}") from None
        self._pool = pool
        try:
            task_status.started()
            await self._close_requested.wait()
        finally:
            self._closed = True
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(functools.partial(pool.close, timeout=5))

    def _open(self, pool: ConnectionPool[psycopg.Connection[Any]]) -> None:
        with psycopg.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT) as probe:
            probe.row_factory = row_factory  # type: ignore[assignment]
            migrate(PgConn(probe))
        pool.open(wait=True, timeout=CONNECT_TIMEOUT * 2)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or exc.__class__.__name__
