"""In-process implementations: the default, and the fallback while Redis is down.

They are verified fakes: the same contract suite runs over them and the Redis ones.
Expiry is lazy (checked on access, plus LRU eviction at a size bound), so there are no
background tasks and memory never grows without bound.
"""

from __future__ import annotations

import itertools
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Generic, TypeVar

from authly.backends.protocols import Decision

V = TypeVar("V")
Clock = Callable[[], float]


class MemoryRateLimiter:
    """Sliding window log per key; at most ``max_keys`` keys (least recently used go)."""

    name = "memory"

    def __init__(self, *, max_keys: int = 100_000, clock: Clock = time.monotonic) -> None:
        self._windows: OrderedDict[str, deque[tuple[float, str]]] = OrderedDict()
        self._max_keys = max_keys
        self._clock = clock
        self._ids = itertools.count()

    def __len__(self) -> int:
        return len(self._windows)

    async def check_rate_limit(
        self, key: str, max_requests: int, window_seconds: float
    ) -> Decision:
        return self.check_nowait(key, max_requests, window_seconds)

    def check_nowait(self, key: str, max_requests: int, window_seconds: float) -> Decision:
        now = self._clock()
        hits = self._windows.get(key)
        if hits is None:
            hits = self._windows[key] = deque()
            if len(self._windows) > self._max_keys:
                self._windows.popitem(last=False)
        else:
            self._windows.move_to_end(key)
        cutoff = now - window_seconds
        while hits and hits[0][0] <= cutoff:
            hits.popleft()
        if len(hits) >= max_requests:
            return Decision(False, 0, hits[0][0] + window_seconds - now)
        member = f"{now:.6f}-{next(self._ids)}"
        hits.append((now, member))
        return Decision(True, max_requests - len(hits), 0.0, member)

    async def refund(self, key: str, member: str) -> None:
        hits = self._windows.get(key)
        if hits is None:
            return
        for i, (_, m) in enumerate(hits):
            if m == member:
                del hits[i]
                break


class _ExpiringMap(Generic[V]):
    """Key -> (deadline, value) with lazy expiry and an LRU size bound."""

    def __init__(self, max_items: int, clock: Clock) -> None:
        self._items: OrderedDict[str, tuple[float, V]] = OrderedDict()
        self._max_items = max_items
        self._clock = clock

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: str) -> V | None:
        item = self._items.get(key)
        if item is None:
            return None
        if item[0] <= self._clock():
            del self._items[key]
            return None
        self._items.move_to_end(key)
        return item[1]

    def set(self, key: str, value: V, ttl: float) -> None:
        self._items[key] = (self._clock() + ttl, value)
        self._items.move_to_end(key)
        while len(self._items) > self._max_items:
            self._items.popitem(last=False)

    def pop(self, key: str) -> None:
        self._items.pop(key, None)

    def extend(self, key: str, ttl: float) -> bool:
        value = self.get(key)
        if value is None:
            return False
        self._items[key] = (self._clock() + ttl, value)
        return True

    def clear(self) -> None:
        self._items.clear()


class MemoryCache:
    """Cache-aside values with TTL; bounded by ``max_items``."""

    name = "memory"

    def __init__(self, *, max_items: int = 50_000, clock: Clock = time.monotonic) -> None:
        self._map: _ExpiringMap[str] = _ExpiringMap(max_items, clock)

    def __len__(self) -> int:
        return len(self._map)

    async def get(self, key: str) -> str | None:
        return self._map.get(key)

    async def set(self, key: str, value: str, ttl: float) -> None:
        self._map.set(key, value, ttl)

    async def delete(self, key: str) -> None:
        self._map.pop(key)

    async def exists(self, key: str) -> bool:
        return self._map.get(key) is not None

    def clear(self) -> None:
        self._map.clear()


class MemorySessionStore:
    """Sessions as flat str->str maps with TTL; bounded by ``max_items``."""

    name = "memory"

    def __init__(self, *, max_items: int = 100_000, clock: Clock = time.monotonic) -> None:
        self._map: _ExpiringMap[dict[str, str]] = _ExpiringMap(max_items, clock)

    def __len__(self) -> int:
        return len(self._map)

    async def get(self, session_id: str) -> dict[str, str] | None:
        data = self._map.get(session_id)
        return dict(data) if data is not None else None

    async def set(self, session_id: str, data: dict[str, str], ttl: float) -> None:
        self._map.set(session_id, dict(data), ttl)

    async def delete(self, session_id: str) -> None:
        self._map.pop(session_id)

    async def touch(self, session_id: str, ttl: float) -> bool:
        return self._map.extend(session_id, ttl)
