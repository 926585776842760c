"""The swappable holder of one feature's current implementation.

Swapping is one assignment: calls already in flight finish on the backend they started
on. Only the supervisor swaps; everything else calls through the slot, which satisfies
the feature's protocol itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import trio

from authly.backends.protocols import Cache, Decision, RateLimiter, SessionStore

T = TypeVar("T")


@dataclass(frozen=True)
class SlotStatistics:
    feature: str
    backend: str
    swaps: int


class Slot(Generic[T]):
    def __init__(self, feature: str, impl: T) -> None:
        self.feature = feature
        self.current: T = impl
        self._swaps = 0
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
        return SlotStatistics(self.feature, self.backend_name, self._swaps)

    async def _call(self, method: str, *args: Any) -> Any:
        return await getattr(self.current, method)(*args)


class RateLimiterSlot(Slot[RateLimiter]):
    name = "slot"

    def __init__(self, impl: RateLimiter, *, on_decision: Callable[[bool], None] | None = None):
        super().__init__("rate_limit", impl)
        self._on_decision = on_decision

    async def check_rate_limit(
        self, key: str, max_requests: int, window_seconds: float
    ) -> Decision:
        decision: Decision = await self._call("check_rate_limit", key, max_requests, window_seconds)
        if self._on_decision is not None:
            self._on_decision(decision.allowed)
        return decision

    async def refund(self, key: str, member: str) -> None:
        await self._call("refund", key, member)


class CacheSlot(Slot[Cache]):
    name = "slot"

    def __init__(self, impl: Cache, *, on_lookup: Callable[[bool], None] | None = None):
        super().__init__("cache", impl)
        self._on_lookup = on_lookup

    async def get(self, key: str) -> str | None:
        value: str | None = await self._call("get", key)
        if self._on_lookup is not None:
            self._on_lookup(value is not None)
        return value

    async def set(self, key: str, value: str, ttl: float) -> None:
        await self._call("set", key, value, ttl)

    async def delete(self, key: str) -> None:
        await self._call("delete", key)

    async def exists(self, key: str) -> bool:
        return bool(await self._call("exists", key))


class SessionSlot(Slot[SessionStore]):
    name = "slot"

    def __init__(self, impl: SessionStore) -> None:
        super().__init__("session", impl)

    async def get(self, session_id: str) -> dict[str, str] | None:
        result: dict[str, str] | None = await self._call("get", session_id)
        return result

    async def set(self, session_id: str, data: dict[str, str], ttl: float) -> None:
        await self._call("set", session_id, data, ttl)

    async def delete(self, session_id: str) -> None:
        await self._call("delete", session_id)

    async def touch(self, session_id: str, ttl: float) -> bool:
        return bool(await self._call("touch", session_id, ttl))
