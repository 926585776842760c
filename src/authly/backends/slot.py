"""The swappable holder of one feature's current implementation.

A slot always has a memory implementation, and may point at a Redis one. Swapping is
one assignment: calls already in flight finish on the backend they started on. Only
the supervisor swaps (DESIGN §5 "Ownership"). When a call on Redis fails
(BackendUnavailable), the slot answers that same call from memory and trips its
``Breaker``: from then on every slot sharing that breaker (all the slots on one Redis)
answers from memory without trying Redis, so no request waits more than one op timeout
on a Redis already seen failing, until the supervisor, woken by the breaker, has decided.
The request path never swaps, copies or logs a switch.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import trio

from authly.backends.memory import MemoryCache, MemoryRateLimiter
from authly.backends.protocols import Cache, Decision, RateLimiter, SessionStore
from authly.errors import BackendUnavailable

T = TypeVar("T")
M = TypeVar("M")

READ_ONLY = frozenset({"get", "exists"})


@dataclass(frozen=True)
class SlotStatistics:
    feature: str
    backend: str
    swaps: int
    fallbacks: int  # Redis calls that failed and were answered from memory
    memory_answers: int = 0  # calls answered from memory while a Redis backend was set


@dataclass(frozen=True)
class FailureReport:
    """What the request path saw since the supervisor last looked."""

    time: float  # wall clock of the first failure
    feature: str
    error: str
    count: int  # failed calls, each counted once


class Breaker:
    """The request path's only line to the supervisor; shared by the slots on one Redis.

    ``trip`` (a failed call) marks Redis suspect and wakes the supervisor; it decides
    nothing. The supervisor ``take``s the report, probes, decides, and ``close``s the
    breaker once Redis is fit for use again.
    """

    def __init__(self) -> None:
        self.tripped = False
        self._wake = trio.Event()
        self._first: tuple[float, str, str] | None = None
        self._count = 0

    def trip(self, feature: str, error: BaseException) -> None:
        self.tripped = True
        self._count += 1
        if self._first is None:
            self._first = (time.time(), feature, str(error))
        self._wake.set()

    async def wait(self) -> None:
        """Return once a failure has been reported and not taken yet."""
        await self._wake.wait()

    def take(self) -> FailureReport | None:
        """The failures reported since the last take (None if there were none)."""
        if self._first is None:
            return None
        report = FailureReport(*self._first, count=self._count)
        self._first, self._count = None, 0
        self._wake = trio.Event()
        return report

    def close(self) -> bool:
        """Send calls to Redis again, unless a failure came in since the last take."""
        if self._first is None:
            self.tripped = False
        return not self.tripped


class Slot(Generic[T, M]):
    def __init__(self, feature: str, memory: M) -> None:
        self.feature = feature
        self.memory: M = memory
        self.current: T = memory  # type: ignore[assignment]
        # Set by the supervisor on the slots it manages.
        self.breaker: Breaker | None = None
        # Calls that may write, answered by the fallback: in flight now, and finished. The
        # supervisor reads them to know that nothing was written while it copied.
        self.fallback_writes_in_flight = 0
        self.fallback_writes_done = 0
        self._swaps = 0
        self._fallbacks = 0
        self._memory_answers = 0
        self._changed = trio.Event()

    @property
    def backend_name(self) -> str:
        return str(getattr(self.current, "name", type(self.current).__name__))

    def swap(self, impl: T) -> T:
        """Point the slot at ``impl``; return the previous implementation."""
        previous, self.current = self.current, impl
        self._swaps += 1
        self._changed.set()
        self._changed = trio.Event()
        return previous

    async def wait_until(self, predicate: Callable[[T], bool]) -> T:
        """Wait until the current implementation satisfies ``predicate``."""
        while not predicate(self.current):
            await self._changed.wait()
        return self.current

    def statistics(self) -> SlotStatistics:
        return SlotStatistics(
            self.feature, self.backend_name, self._swaps, self._fallbacks, self._memory_answers
        )

    def _fallback_target(self) -> Any:
        return self.memory

    async def _call(self, method: str, *args: Any) -> Any:
        return (await self._answer(method, *args))[0]

    async def _fallback(self, method: str, *args: Any, **kwargs: Any) -> Any:
        if method in READ_ONLY:
            return await getattr(self._fallback_target(), method)(*args, **kwargs)
        self.fallback_writes_in_flight += 1
        try:
            return await getattr(self._fallback_target(), method)(*args, **kwargs)
        finally:
            self.fallback_writes_in_flight -= 1
            self.fallback_writes_done += 1

    async def _answer(self, method: str, *args: Any, **kwargs: Any) -> tuple[Any, bool]:
        """(result, True if Redis answered it)."""
        impl: Any = self.current
        if impl is self.memory:
            return await self._fallback(method, *args, **kwargs), False
        breaker = self.breaker
        if breaker is not None and breaker.tripped:  # suspect: the supervisor decides
            self._memory_answers += 1
            return await self._fallback(method, *args, **kwargs), False
        try:
            return await getattr(impl, method)(*args, **kwargs), True
        except BackendUnavailable as exc:
            self._fallbacks += 1
            self._memory_answers += 1
            if breaker is not None:
                breaker.trip(self.feature, exc)
            return await self._fallback(method, *args, **kwargs), False


class FleetShare:
    """While Redis is down, each instance enforces limit / instances last seen sharing
    that Redis, so the fleet as a whole stays near the configured limit (never open)."""

    def __init__(self, memory: MemoryRateLimiter) -> None:
        self.name = memory.name
        self._memory = memory
        self.instances = 1  # pushed by the supervisor (RateLimiterSlot.instances)

    async def check_rate_limit(
        self, key: str, max_requests: int, window_seconds: float
    ) -> Decision:
        share = max(1, max_requests // max(1, self.instances))
        return self._memory.check_nowait(key, share, window_seconds)

    async def refund(self, key: str, member: str) -> None:
        await self._memory.refund(key, member)


class RateLimiterSlot(Slot[RateLimiter, MemoryRateLimiter]):
    name = "slot"

    def __init__(
        self,
        memory: MemoryRateLimiter,
        *,
        on_decision: Callable[[bool], None] | None = None,
    ) -> None:
        super().__init__("rate_limit", memory)
        self._on_decision = on_decision
        self._share = FleetShare(memory)

    @property
    def instances(self) -> int:
        """Instances last seen sharing the Redis: the supervisor pushes it after each
        heartbeat; while on memory, limits are divided by it."""
        return self._share.instances

    @instances.setter
    def instances(self, count: int) -> None:
        self._share.instances = max(1, count)

    def _fallback_target(self) -> Any:
        return self._share

    async def check_rate_limit(
        self, key: str, max_requests: int, window_seconds: float
    ) -> Decision:
        decision: Decision
        decision, by_redis = await self._answer(
            "check_rate_limit", key, max_requests, window_seconds
        )
        if by_redis and decision.member is not None:
            # Shadow what Redis allowed, so an outage starts from this instance's own
            # recent hits instead of an empty window (a flap never resets a limit).
            self.memory.record(key, window_seconds, decision.member)
        if self._on_decision is not None:
            self._on_decision(decision.allowed)
        return decision

    async def refund(self, key: str, member: str) -> None:
        await self.memory.refund(key, member)
        if self.current is not self.memory:
            await self._call("refund", key, member)


class CacheSlot(Slot[Cache, MemoryCache]):
    name = "slot"

    def __init__(
        self, memory: MemoryCache, *, on_lookup: Callable[[str, bool, str], None] | None = None
    ) -> None:
        super().__init__("cache", memory)
        # on_lookup(key, hit, backend): backend is "redis" when Redis answered, else
        # "memory" (the memory cache, or the fallback after a failed Redis call).
        self._on_lookup = on_lookup

    async def get(self, key: str) -> str | None:
        value: str | None
        value, by_redis = await self._answer("get", key)
        if self._on_lookup is not None:
            self._on_lookup(key, value is not None, "redis" if by_redis else self.memory.name)
        return value

    async def set(self, key: str, value: str, ttl: float) -> None:
        await self._call("set", key, value, ttl)

    async def delete(self, key: str) -> None:
        await self._call("delete", key)

    async def exists(self, key: str) -> bool:
        return bool(await self._call("exists", key))


class SessionSlot(Slot[SessionStore, SessionStore]):
    """``memory`` is where sessions go when not on Redis: process memory
    (MemorySessionStore) or the store (core/store_sessions.py, "database")."""

    name = "slot"

    def __init__(
        self, memory: SessionStore, *, on_evict: Callable[[str], None] | None = None
    ) -> None:
        super().__init__("session", memory)
        # Counts evictions Redis reports (the memory store counts its own).
        self._on_evict = on_evict

    async def get(self, session_id: str) -> dict[str, str] | None:
        result: dict[str, str] | None = await self._call("get", session_id)
        return result

    async def set(self, session_id: str, data: dict[str, str], ttl: float) -> None:
        await self._call("set", session_id, data, ttl)

    async def add(
        self, session_id: str, data: dict[str, str], ttl: float, *, pool: str, max_entries: int
    ) -> int:
        evicted: int
        evicted, by_redis = await self._answer(
            "add", session_id, data, ttl, pool=pool, max_entries=max_entries
        )
        if by_redis and evicted and self._on_evict is not None:
            for _ in range(evicted):
                self._on_evict(pool)
        return evicted

    async def delete(self, session_id: str) -> None:
        await self._call("delete", session_id)

    async def take(self, session_id: str, *, pool: str | None = None) -> dict[str, str] | None:
        result: dict[str, str] | None
        result, _ = await self._answer("take", session_id, pool=pool)
        return result

    async def touch(self, session_id: str, ttl: float) -> bool:
        return bool(await self._call("touch", session_id, ttl))
