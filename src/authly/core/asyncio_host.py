"""The public helpers under asyncio: a Trio run in a thread of its own, one per asyncio loop.

The backends (slots, Redis actor, supervisor) are Trio code. Called from a coroutine that
runs under ``asyncio.run(...)``, the helpers in ``backend_factory`` start one ``TrioHost``
for the running asyncio loop: a thread named ``authly-backends`` whose ``trio.run`` builds
the backends exactly as a plain ``trio.run`` would (same AUTHLY_* settings, same Redis
failover) and keeps them until the loop ends. The objects handed to asyncio code forward
each call to that run and return its result, or raise its exception, in the caller's
loop. Cancelling the asyncio caller cancels the call on the Trio side.

Why a thread rather than Trio's guest mode on the asyncio loop: importing Authly imports
trio-asyncio (through the Redis actor), whose event-loop policy makes ``asyncio.run`` use
its own loop, itself a Trio run (in a greenlet); a guest run cannot start inside it
("Attempted to call run() from inside a run()"). A thread works with any asyncio loop
(docs/decisions.md, "Redis at scale and in operation").

Shutdown: a keeper task on the asyncio loop stops the Trio run when it is cancelled,
which ``asyncio.run`` (and ``asyncio.Runner``) do to every task before closing the loop;
it waits for the thread to finish. A loop closed without cancelling its tasks is swept
when another loop starts a host, and at interpreter exit (``atexit``); the thread is a
daemon, so it never holds the interpreter up.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import threading
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import trio

from authly.backends.protocols import Decision
from authly.errors import AuthlyError

log = logging.getLogger("authly")

B = TypeVar("B")
R = TypeVar("R")

STOP_SECONDS = 10.0
THREAD_NAME = "authly-backends"


class BackendsClosed(AuthlyError):
    """Raised by a call on the helpers' backends after their asyncio loop shut them down."""


@dataclass
class _Call:
    scope: trio.CancelScope | None = None
    cancelled: bool = False


class TrioHost(Generic[B]):
    """One ``trio.run`` in a daemon thread, holding what ``build`` returned until stopped."""

    def __init__(self, build: Callable[[], Awaitable[B]], loop: asyncio.AbstractEventLoop) -> None:
        self._build = build
        self._loop_ref = weakref.ref(loop)
        self._ready: asyncio.Future[B] = loop.create_future()
        self._exited: asyncio.Future[None] = loop.create_future()
        self._token: trio.lowlevel.TrioToken | None = None
        self._nursery: trio.Nursery | None = None
        self._stop = threading.Event()
        self._stop_event: trio.Event | None = None
        self.stopping = False
        self._thread = threading.Thread(target=self._thread_main, name=THREAD_NAME, daemon=True)
        self._keeper: asyncio.Task[None] | None = None

    # ---------------------------------------------------------------- life

    def start(self) -> None:
        loop = self._loop_ref()
        assert loop is not None
        self._thread.start()
        self._keeper = keeper = loop.create_task(self._keep(), name="authly-backends-keeper")
        # A loop closed without cancelling its tasks drops the keeper silently: the
        # thread is stopped then (GeneratorExit below), or at exit.
        keeper._log_destroy_pending = False  # type: ignore[attr-defined]

    async def ready(self) -> B:
        """The backends, once built (shared by every caller; a cancelled caller leaves the
        build going for the others)."""
        return await asyncio.shield(self._ready)

    def request_stop(self) -> None:
        """Ask the Trio run to end (from any thread); in-flight calls are cancelled."""
        self.stopping = True
        self._stop.set()
        token = self._token
        if token is not None:
            with contextlib.suppress(trio.RunFinishedError):
                token.run_sync_soon(self._stop_now)

    def join(self, timeout: float) -> bool:
        """Wait for the thread (blocking); True when it has ended."""
        if self._thread.ident is not None:
            self._thread.join(timeout)
        return not self._thread.is_alive()

    async def aclose(self) -> None:
        """Stop the Trio run and wait (without blocking the loop) for the thread to end."""
        self.request_stop()
        try:
            await asyncio.wait_for(asyncio.shield(self._exited), STOP_SECONDS)
        except TimeoutError:
            log.warning("Authly backends did not stop within %g s", STOP_SECONDS)
            return
        self.join(1.0)

    async def _keep(self) -> None:
        try:
            await asyncio.get_running_loop().create_future()  # until cancelled
        except asyncio.CancelledError:
            _forget(self)
            await self.aclose()
            raise
        except GeneratorExit:  # the loop was dropped with this task pending
            _forget(self)
            self.request_stop()
            raise

    def _stop_now(self) -> None:
        if self._stop_event is not None:
            self._stop_event.set()

    def _thread_main(self) -> None:
        try:
            trio.run(self._main)
        except BaseException as exc:  # reported to the waiting callers
            self._settle(self._ready, None, exc)
        finally:
            self._settle(self._exited, None, None)

    async def _main(self) -> None:
        self._stop_event = trio.Event()
        self._token = trio.lowlevel.current_trio_token()
        try:
            backends = await self._build()
        except Exception as exc:
            self._settle(self._ready, None, exc)
            return
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            self._settle(self._ready, backends, None)
            if not self._stop.is_set():
                await self._stop_event.wait()
            self._nursery = None
            nursery.cancel_scope.cancel()
        # Leaving trio.run cancels the system task that holds the actor and supervisor.

    def _settle(self, future: asyncio.Future[Any], value: Any, error: BaseException | None) -> None:
        """Resolve an asyncio future from the Trio thread (nothing if the loop is gone)."""

        def settle() -> None:
            if future.done():
                return
            if error is None:
                future.set_result(value)
            else:
                future.set_exception(error)

        loop = self._loop_ref()
        if loop is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
            loop.call_soon_threadsafe(settle)

    # ---------------------------------------------------------------- calls

    async def call(self, fn: Callable[..., Awaitable[R]], *args: Any, **kwargs: Any) -> R:
        """Run ``fn(*args, **kwargs)`` in the Trio run; its result or exception, here."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        state = _Call()
        token = self._token

        async def run() -> None:
            value: Any = None
            error: BaseException | None = BackendsClosed("Authly backends were shut down")
            try:
                with trio.CancelScope() as scope:
                    state.scope = scope
                    if state.cancelled:
                        scope.cancel()
                    try:
                        value, error = await fn(*args, **kwargs), None
                    except Exception as exc:
                        error = exc
            finally:
                self._settle(future, value, error)

        def begin() -> None:
            nursery = self._nursery
            if nursery is None:
                self._settle(future, None, BackendsClosed("Authly backends were shut down"))
            else:
                nursery.start_soon(run)

        def cancel() -> None:
            state.cancelled = True
            if state.scope is not None:
                state.scope.cancel()

        if token is None or self.stopping:
            raise BackendsClosed("Authly backends were shut down")
        try:
            token.run_sync_soon(begin)
        except trio.RunFinishedError:
            raise BackendsClosed("Authly backends were shut down") from None
        try:
            return await future
        except asyncio.CancelledError:
            with contextlib.suppress(trio.RunFinishedError):
                token.run_sync_soon(cancel)
            raise


# -------------------------------------------------------------- one host per loop

_HOSTS: dict[asyncio.AbstractEventLoop, TrioHost[Any]] = {}
_HOSTS_LOCK = threading.Lock()
_ATEXIT_REGISTERED = False


async def host_for_running_loop(build: Callable[[], Awaitable[B]]) -> tuple[TrioHost[B], B]:
    """The running loop's host (started on first use) and its backends."""
    global _ATEXIT_REGISTERED
    loop = asyncio.get_running_loop()
    stale: list[TrioHost[Any]] = []
    with _HOSTS_LOCK:
        host = _HOSTS.get(loop)
        if host is None or host.stopping:
            for other in [o for o in _HOSTS if o.is_closed()]:
                stale.append(_HOSTS.pop(other))
            host = TrioHost(build, loop)
            _HOSTS[loop] = host
            host.start()
            if not _ATEXIT_REGISTERED:
                atexit.register(stop_all)
                _ATEXIT_REGISTERED = True
    for old in stale:  # loops closed without cancelling their tasks
        old.request_stop()
    try:
        return host, await host.ready()
    except asyncio.CancelledError:
        raise
    except BaseException:
        host.request_stop()
        _forget(host)
        raise


def _forget(host: TrioHost[Any]) -> None:
    with _HOSTS_LOCK:
        for loop, known in list(_HOSTS.items()):
            if known is host:
                del _HOSTS[loop]


def stop_all(timeout: float = STOP_SECONDS) -> None:
    """Stop every host and wait for its thread (at interpreter exit; blocking)."""
    with _HOSTS_LOCK:
        hosts = list(_HOSTS.values())
        _HOSTS.clear()
    for host in hosts:
        host.request_stop()
    for host in hosts:
        host.join(timeout)


# -------------------------------------------------------------- what asyncio code holds


class RemoteRateLimiter:
    """A rate-limiter slot in a TrioHost, called from asyncio."""

    def __init__(self, host: TrioHost[Any], slot: Any) -> None:
        self._host = host
        self._slot = slot

    @property
    def backend_name(self) -> str:
        return str(self._slot.backend_name)

    async def check_rate_limit(
        self, key: str, max_requests: int, window_seconds: float
    ) -> Decision:
        return await self._host.call(self._slot.check_rate_limit, key, max_requests, window_seconds)

    async def refund(self, key: str, member: str) -> None:
        await self._host.call(self._slot.refund, key, member)


class RemoteCache:
    """The cache slot in a TrioHost, called from asyncio: get/set(ttl)/delete/exists."""

    def __init__(self, host: TrioHost[Any], slot: Any) -> None:
        self._host = host
        self._slot = slot

    @property
    def backend_name(self) -> str:
        return str(self._slot.backend_name)

    async def get(self, key: str) -> str | None:
        return await self._host.call(self._slot.get, key)

    async def set(self, key: str, value: str, ttl: float) -> None:
        await self._host.call(self._slot.set, key, value, ttl)

    async def delete(self, key: str) -> None:
        await self._host.call(self._slot.delete, key)

    async def exists(self, key: str) -> bool:
        return await self._host.call(self._slot.exists, key)


class RemoteSessions:
    """The session slot in a TrioHost, called from asyncio."""

    def __init__(self, host: TrioHost[Any], slot: Any) -> None:
        self._host = host
        self._slot = slot

    @property
    def backend_name(self) -> str:
        return str(self._slot.backend_name)

    async def get(self, session_id: str) -> dict[str, str] | None:
        return await self._host.call(self._slot.get, session_id)

    async def set(self, session_id: str, data: dict[str, str], ttl: float) -> None:
        await self._host.call(self._slot.set, session_id, dict(data), ttl)

    async def add(
        self, session_id: str, data: dict[str, str], ttl: float, *, pool: str, max_entries: int
    ) -> int:
        return await self._host.call(
            self._slot.add, session_id, dict(data), ttl, pool=pool, max_entries=max_entries
        )

    async def delete(self, session_id: str) -> None:
        await self._host.call(self._slot.delete, session_id)

    async def take(self, session_id: str, *, pool: str | None = None) -> dict[str, str] | None:
        return await self._host.call(self._slot.take, session_id, pool=pool)

    async def touch(self, session_id: str, ttl: float) -> bool:
        return await self._host.call(self._slot.touch, session_id, ttl)
