"""Public helpers from the user guide: the backends Authly itself uses.

Inside a ``trio.run`` where an Authly app is serving (a custom endpoint, a task in the
app's nursery) they return that app's own slots, which the app registers when it starts
(``serve_app_backends``), so custom code shares the server's limits, cache and sessions.
Anywhere else under ``trio.run`` they build the backends once per run from the AUTHLY_*
environment, with the same Redis failover as the server (the actor and supervisor run
as Trio system tasks, stopped when the run ends)::

    async def main() -> None:
        backend = await get_rate_limit_backend()
        await backend.check_rate_limit("user:123", max_requests=10, window_seconds=60)

    trio.run(main)

Under ``asyncio.run`` (the running library is told by sniffio) they work the same way,
with the same Redis-or-memory choice and failover: the backends then live in a Trio run
in a thread of its own, one per asyncio loop, stopped when the loop ends, and the
objects returned forward each call to it (core/asyncio_host.py)::

    async def main() -> None:
        backend = await get_rate_limit_backend()
        try:
            await backend.check_rate_limit("user:123", max_requests=10, window_seconds=60)
        except RateLimitExceeded as exc:
            print("Rate limit exceeded; retry in", exc.retry_after, "s")

    asyncio.run(main())

``check_rate_limit`` returns the Decision when allowed and raises RateLimitExceeded (an
HTTP 429 error carrying ``Retry-After``; ``authly.errors.RateLimitExceeded``, also
importable from this module) when not.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Protocol

import sniffio
import trio

from authly.backends.protocols import Decision
from authly.backends.slot import CacheSlot, RateLimiterSlot, SessionSlot
from authly.config import Settings
from authly.core.asyncio_host import (
    RemoteCache,
    RemoteRateLimiter,
    RemoteSessions,
    host_for_running_loop,
)
from authly.core.redis_runtime import RedisRuntime, make_slots, start_redis
from authly.errors import RateLimitExceeded
from authly.metrics import Metrics

__all__ = [
    "CacheBackend",
    "EnforcingRateLimiter",
    "RateLimitExceeded",
    "SessionBackend",
    "get_cache_backend",
    "get_rate_limit_backend",
    "get_session_backend",
]


class _Limiter(Protocol):
    @property
    def backend_name(self) -> str: ...

    async def check_rate_limit(
        self, key: str, max_requests: int, window_seconds: float
    ) -> Decision: ...

    async def refund(self, key: str, member: str) -> None: ...


class CacheBackend(Protocol):
    """What ``get_cache_backend`` returns: the cache slot, or (under asyncio) its proxy."""

    @property
    def backend_name(self) -> str: ...

    async def get(self, key: str) -> str | None: ...

    async def set(self, key: str, value: str, ttl: float) -> None: ...

    async def delete(self, key: str) -> None: ...

    async def exists(self, key: str) -> bool: ...


class SessionBackend(Protocol):
    """What ``get_session_backend`` returns: the session slot, or (under asyncio) its proxy."""

    @property
    def backend_name(self) -> str: ...

    async def get(self, session_id: str) -> dict[str, str] | None: ...

    async def set(self, session_id: str, data: dict[str, str], ttl: float) -> None: ...

    async def add(
        self, session_id: str, data: dict[str, str], ttl: float, *, pool: str, max_entries: int
    ) -> int: ...

    async def delete(self, session_id: str) -> None: ...

    async def take(self, session_id: str, *, pool: str | None = None) -> dict[str, str] | None: ...

    async def touch(self, session_id: str, ttl: float) -> bool: ...


class EnforcingRateLimiter:
    """A RateLimiter whose refusals are raised as RateLimitExceeded (HTTP 429).

    ``slot`` is the rate-limit slot itself under Trio, its proxy under asyncio."""

    def __init__(self, slot: _Limiter) -> None:
        self.slot = slot

    @property
    def name(self) -> str:
        return self.slot.backend_name

    async def check_rate_limit(
        self, key: str, max_requests: int, window_seconds: float
    ) -> Decision:
        decision = await self.slot.check_rate_limit(key, max_requests, window_seconds)
        if not decision.allowed:
            raise RateLimitExceeded(decision.retry_after)
        return decision

    async def refund(self, key: str, member: str) -> None:
        await self.slot.refund(key, member)


@dataclass
class _Backends:
    rate_limit: RateLimiterSlot
    cache: CacheSlot
    sessions: SessionSlot
    runtime: RedisRuntime


_RUN_BACKENDS: trio.lowlevel.RunVar[_Backends] = trio.lowlevel.RunVar("authly_backends")
_APP_BACKENDS: trio.lowlevel.RunVar[_Backends | None] = trio.lowlevel.RunVar(
    "authly_app_backends", default=None
)


def serve_app_backends(
    rate_limit: RateLimiterSlot, cache: CacheSlot, sessions: SessionSlot, runtime: RedisRuntime
) -> None:
    """Called by the app at start-up: the helpers hand out these slots in this run."""
    _APP_BACKENDS.set(_Backends(rate_limit, cache, sessions, runtime))


def stop_serving_app_backends() -> None:
    """Called by the app at shutdown."""
    _APP_BACKENDS.set(None)


_RUN_LOCK: trio.lowlevel.RunVar[trio.Lock] = trio.lowlevel.RunVar("authly_backends_lock")


async def _backends() -> _Backends:
    from_app = _APP_BACKENDS.get()
    if from_app is not None:
        return from_app
    try:
        lock = _RUN_LOCK.get()
    except LookupError:
        lock = trio.Lock()
        _RUN_LOCK.set(lock)
    async with lock:
        try:
            return _RUN_BACKENDS.get()
        except LookupError:
            backends = await _build(Settings.from_env(os.environ))
            _RUN_BACKENDS.set(backends)
            return backends


async def _build(settings: Settings) -> _Backends:
    metrics = Metrics()
    rate_limit, cache, sessions = make_slots(settings, metrics)
    started = trio.Event()
    holder: list[RedisRuntime] = []

    async def host() -> None:
        # A system task: lives as long as this trio.run and is cancelled at its end.
        async with trio.open_nursery() as nursery:
            holder.append(
                await start_redis(nursery, settings.redis, metrics, rate_limit, cache, sessions)
            )
            started.set()

    trio.lowlevel.spawn_system_task(host)
    await started.wait()
    return _Backends(rate_limit, cache, sessions, holder[0])


def _under_asyncio() -> bool:
    """Whether the caller runs under asyncio (trio-asyncio's loop included) — not Trio.

    sniffio, not "is there a Trio token": trio-asyncio's loop runs asyncio code inside a
    Trio run, where a token exists but Trio calls crash the asyncio task."""
    try:
        return sniffio.current_async_library() == "asyncio"
    except sniffio.AsyncLibraryNotFoundError:
        return False


async def _build_from_env() -> _Backends:
    return await _build(Settings.from_env(os.environ))


async def _hosted() -> tuple[Any, _Backends]:
    Settings.from_env(os.environ)  # a bad setting raises ConfigError here, before any thread
    return await host_for_running_loop(_build_from_env)


async def get_rate_limit_backend() -> EnforcingRateLimiter:
    """The rate limiter (Redis with memory failover, or memory)."""
    if _under_asyncio():
        host, backends = await _hosted()
        return EnforcingRateLimiter(RemoteRateLimiter(host, backends.rate_limit))
    return EnforcingRateLimiter((await _backends()).rate_limit)


async def get_cache_backend() -> CacheBackend:
    """The cache: get/set(ttl)/delete/exists over text values."""
    if _under_asyncio():
        host, backends = await _hosted()
        return RemoteCache(host, backends.cache)
    return (await _backends()).cache


async def get_session_backend() -> SessionBackend:
    """The session store: get/set(ttl)/add/delete/take/touch over str->str maps."""
    if _under_asyncio():
        host, backends = await _hosted()
        return RemoteSessions(host, backends.sessions)
    return (await _backends()).sessions
