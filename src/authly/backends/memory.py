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


class _Window:
    __slots__ = ("hits", "seconds")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.hits: deque[tuple[float, str]] = deque()

    def trim(self, now: float) -> None:
        cutoff = now - self.seconds
        hits = self.hits
        while hits and hits[0][0] <= cutoff:
            hits.popleft()


class MemoryRateLimiter:
    """Sliding window log per key; at most ``max_keys`` keys (least recently used go)."""

    name = "memory"

    def __init__(self, *, max_keys: int = 100_000, clock: Clock = time.monotonic) -> None:
        self._windows: OrderedDict[str, _Window] = OrderedDict()
        self._max_keys = max_keys
        self._clock = clock
        self._ids = itertools.count()

    def __len__(self) -> int:
        return len(self._windows)

    def _window(self, key: str, seconds: float) -> _Window:
        window = self._windows.get(key)
        if window is None:
            window = self._windows[key] = _Window(seconds)
            if len(self._windows) > self._max_keys:
                self._windows.popitem(last=False)
        else:
            window.seconds = seconds
            self._windows.move_to_end(key)
        return window

    async def check_rate_limit(
        self, key: str, max_requests: int, window_seconds: float
    ) -> Decision:
        return self.check_nowait(key, max_requests, window_seconds)

    def check_nowait(self, key: str, max_requests: int, window_seconds: float) -> Decision:
        now = self._clock()
        window = self._window(key, window_seconds)
        window.trim(now)
        hits = window.hits
        if len(hits) >= max_requests:
            return Decision(False, 0, hits[0][0] + window_seconds - now)
        member = f"mem-{now:.6f}-{next(self._ids)}"
        hits.append((now, member))
        return Decision(True, max_requests - len(hits), 0.0, member)

    def record(self, key: str, window_seconds: float, member: str) -> None:
        """Note a hit allowed elsewhere (by Redis), so an outage starts from what this
        instance already let through instead of from an empty window."""
        now = self._clock()
        window = self._window(key, window_seconds)
        window.trim(now)
        window.hits.append((now, member))

    async def refund(self, key: str, member: str) -> None:
        window = self._windows.get(key)
        if window is None:
            return
        for i, (_, m) in enumerate(window.hits):
            if m == member:
                del window.hits[i]
                break

    def export(self) -> list[tuple[str, float, list[tuple[float, str]]]]:
        """Live windows as (key, window seconds, [(age seconds, member)])."""
        now = self._clock()
        result = []
        for key, window in self._windows.items():
            window.trim(now)
            if window.hits:
                result.append((key, window.seconds, [(now - t, m) for t, m in window.hits]))
        return result


class _ExpiringMap(Generic[V]):
    """Key -> (deadline, write sequence, value) with lazy expiry and an LRU size bound."""

    def __init__(self, max_items: int, clock: Clock) -> None:
        self._items: OrderedDict[str, tuple[float, int, V]] = OrderedDict()
        self._max_items = max_items
        self._clock = clock
        self._seq = itertools.count(1)

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
        return item[2]

    def set(self, key: str, value: V, ttl: float) -> None:
        self._items[key] = (self._clock() + ttl, next(self._seq), value)
        self._items.move_to_end(key)
        while len(self._items) > self._max_items:
            self._items.popitem(last=False)

    def pop(self, key: str) -> None:
        self._items.pop(key, None)

    def extend(self, key: str, ttl: float) -> bool:
        value = self.get(key)
        if value is None:
            return False
        self._items[key] = (self._clock() + ttl, next(self._seq), value)
        return True

    def clear(self) -> None:
        self._items.clear()

    def export(self, since: int = 0) -> tuple[list[tuple[str, V, float]], int]:
        """Items written after sequence ``since`` as (key, value, remaining ttl), and the
        highest sequence seen (pass it back as ``since`` to get only later writes)."""
        now = self._clock()
        items = []
        high = since
        for key, (deadline, seq, value) in self._items.items():
            high = max(high, seq)
            if seq > since and deadline > now:
                items.append((key, value, deadline - now))
        return items, high


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

    def export(self, since: int = 0) -> tuple[list[tuple[str, dict[str, str], float]], int]:
        return self._map.export(since)

    def clear(self) -> None:
        self._map.clear()
