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

``check_rate_limit`` returns the Decision when allowed and raises RateLimitExceeded (an
HTTP 429 error carrying ``Retry-After``) when not.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import trio

from authly.backends.protocols import Decision
from authly.backends.slot import CacheSlot, RateLimiterSlot, SessionSlot
from authly.config import Settings
from authly.core.redis_runtime import RedisRuntime, make_slots, start_redis
from authly.errors import RateLimitExceeded
from authly.metrics import Metrics

__all__ = [
    "EnforcingRateLimiter",
    "get_cache_backend",
    "get_rate_limit_backend",
    "get_session_backend",
]


class EnforcingRateLimiter:
    """A RateLimiter whose refusals are raised as RateLimitExceeded (HTTP 429)."""

    def __init__(self, slot: RateLimiterSlot) -> None:
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


async def get_rate_limit_backend() -> EnforcingRateLimiter:
    """The rate limiter (Redis with memory failover, or memory)."""
    return EnforcingRateLimiter((await _backends()).rate_limit)


async def get_cache_backend() -> CacheSlot:
    """The cache: get/set(ttl)/delete/exists over text values."""
    return (await _backends()).cache


async def get_session_backend() -> SessionSlot:
    """The session store: get/set(ttl)/delete/touch over str->str maps."""
    return (await _backends()).sessions
