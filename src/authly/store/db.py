"""The store's database: the ``Database`` interface, and the embedded SQLite engine
behind one dedicated worker thread (the PostgreSQL engine is in store/postgres.py).

Why one thread: sqlite3 connections are not shareable across threads, and a thread per
query (``trio.to_thread`` each time) costs more than handing work to a thread that is
already running (DESIGN §1: ≈ 10k/28k lookups/s at concurrency 1/32 vs ≈ 7k/s). The
thread is itself started through ``trio.to_thread.run_sync`` and lives as long as the
``serve`` task, which owns it: cancelling ``serve`` tells the thread to stop.

Callers submit ``fn(conn, *args)``; the thread runs it and hands the outcome back to
the Trio loop with ``TrioToken.run_sync_soon``. A caller that is cancelled while its
query runs leaves the query to finish (a write is never half done) and drops the result.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import sqlite3
import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import outcome
import trio

from authly.errors import StoreError
from authly.store.conn import SqliteConn
from authly.store.migrations import SchemaTooNew, migrate

T = TypeVar("T")
log = logging.getLogger("authly.store")

_STOP = object()


def connect(path: str) -> sqlite3.Connection:
    if path != ":memory:":
        parent = os.path.dirname(os.path.abspath(path))
        os.makedirs(parent, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10.0)
    conn.row_factory = sqlite3.Row
    _enable_wal(conn)
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=10000")
    return conn


def _enable_wal(conn: sqlite3.Connection, attempts: int = 200) -> None:
    """Switch to WAL. Several processes opening a new file at once race for this switch,
    and SQLite answers the loser "database is locked" at once (the busy timeout does
    not cover it), so retry for up to ≈ 10 s. Runs in the store's own thread."""
    for attempt in range(attempts):
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == attempts - 1:
                raise
            time.sleep(0.05)


class Database(Protocol):
    """A running store: repository functions ``fn(conn, *args)`` run through ``run``."""

    @property
    def is_open(self) -> bool: ...

    @property
    def backend(self) -> str: ...  # "sqlite" | "postgresql"

    # Told the seconds of every call (metrics); None: not timed.
    observe: Callable[[float], None] | None

    async def run(self, fn: Callable[..., T], *args: Any) -> T: ...

    def close(self) -> None: ...

    def stats(self) -> dict[str, int]:
        """Pool use: ``{"size": connections it may open, "in_use": lent right now}``."""
        ...

    def masked_url(self) -> str: ...


class SqliteDatabase:
    """One SQLite file, one worker thread. Use ``open_database`` to get a running one."""

    backend = "sqlite"

    def __init__(self, path: str) -> None:
        self.path = path
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._token: trio.lowlevel.TrioToken | None = None
        self._closed = False
        self._pending = 0
        self.observe: Callable[[float], None] | None = None

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(conn, *args)`` in the worker thread and return its result.

        Error handling: sqlite3 errors become StoreError; errors ``fn`` raises on
        purpose (repository-level types) pass through unchanged.
        """
        if self._closed or self._token is None:
            raise StoreError("the store is not open")
        done = trio.Event()
        box: list[outcome.Outcome[T]] = []
        token = self._token

        def deliver(result: outcome.Outcome[T]) -> None:
            box.append(result)
            done.set()

        start = time.perf_counter()
        self._queue.put((fn, args, token, deliver))
        self._pending += 1
        try:
            await done.wait()
        finally:
            self._pending -= 1
        if self.observe is not None:
            self.observe(time.perf_counter() - start)
        return box[0].unwrap()

    @property
    def is_open(self) -> bool:
        return self._token is not None and not self._closed

    def stats(self) -> dict[str, int]:
        """SQLite has one connection, in one thread; it is in use while calls wait."""
        return {"size": 1, "in_use": 1 if self._pending else 0}

    def masked_url(self) -> str:
        return f"sqlite:///{self.path}"

    def close(self) -> None:
        """Ask the worker thread to stop after the queries already queued."""
        if not self._closed:
            self._closed = True
            self._queue.put(_STOP)

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Open the file, migrate, and run the worker thread until closed or cancelled."""
        self._token = trio.lowlevel.current_trio_token()
        ready: list[BaseException | None] = []
        started = trio.Event()
        token = self._token

        def signal_ready(error: BaseException | None) -> None:
            ready.append(error)
            started.set()

        async def thread_owner() -> None:
            try:
                await trio.to_thread.run_sync(
                    self._thread_main, token, signal_ready, abandon_on_cancel=True
                )
            finally:
                self.close()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(thread_owner)
            await started.wait()
            if ready[0] is None:
                task_status.started()
        # Raised outside the nursery (whose thread has already returned), so callers
        # get a plain StoreError rather than an exception group.
        if ready[0] is not None:
            raise StoreError(f"cannot open {self.path}: {ready[0]}") from ready[0]

    def _thread_main(
        self, token: trio.lowlevel.TrioToken, signal_ready: Callable[[BaseException | None], None]
    ) -> None:
        try:
            conn = SqliteConn(connect(self.path))
            migrate(conn)
        except (sqlite3.Error, OSError, SchemaTooNew) as exc:
            token.run_sync_soon(signal_ready, exc)
            return
        token.run_sync_soon(signal_ready, None)
        try:
            while True:
                item = self._queue.get()
                if item is _STOP:
                    break
                fn, args, caller_token, deliver = item
                result = outcome.capture(_translated, fn, conn, *args)
                with contextlib.suppress(trio.RunFinishedError):
                    caller_token.run_sync_soon(deliver, result)
        finally:
            conn.raw.close()
            # Fail anything that raced in after the stop marker.
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is not _STOP:
                    _, _, caller_token, deliver = item
                    with contextlib.suppress(trio.RunFinishedError):
                        caller_token.run_sync_soon(
                            deliver, outcome.Error(StoreError("the store is closed"))
                        )


def _translated(fn: Callable[..., T], conn: SqliteConn, *args: Any) -> T:
    try:
        return fn(conn, *args)
    except sqlite3.Error as exc:
        log.error("store query %s failed: %s", getattr(fn, "__name__", fn), exc)
        raise StoreError(f"store query failed: {exc.__class__.__name__}") from exc


async def open_database(nursery: trio.Nursery, url: str, *, pool_size: int = 10) -> Database:
    """Start the database of ``url`` (``sqlite:///path`` or ``postgresql://...``) in
    ``nursery`` and return it once migrated. Raises StoreError when it cannot be opened."""
    if url.startswith(("postgresql://", "postgres://")):
        from authly.store.postgres import PostgresDatabase

        pg = PostgresDatabase(url, pool_size)
        await nursery.start(pg.serve)
        return pg
    db = SqliteDatabase(url.removeprefix("sqlite:///"))
    await nursery.start(db.serve)
    return db
