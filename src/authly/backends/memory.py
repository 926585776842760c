"""In-process implementations: the default, and the fallback while Redis is down.

They are verified fakes: the same contract suite runs over them and the Redis ones.
Expiry is lazy (checked on access), and every table has a size bound (see each class
for what it evicts, and what it never evicts), so there are no background tasks and
memory never grows without bound.
"""

from __future__ import annotations

import itertools
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
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

    def expires_at(self) -> float:
        """When the newest hit leaves the window (the window then limits nothing)."""
        return self.hits[-1][0] + self.seconds if self.hits else float("-inf")


class MemoryRateLimiter:
    """Sliding window log per key; at most ``max_keys`` windows.

    A window that still holds a hit inside its window is never evicted: forgetting it
    would reset that key's limit. Windows are grouped by window length, each group in
    the order of its windows' newest hit (a new hit moves its window to the end), so
    the first window of a group is the one that expires first. When a new key needs a
    window and the table is full, expired (or empty) windows at the front of the groups
    make room; if there are none, the hit is refused and no window is created (fail
    closed, ``retry_after`` = until the first window expires). ``on_evict`` is called
    per window evicted, ``on_full`` per hit refused (or shadow record dropped) because
    the table was full of live windows.
    """

    name = "memory"

    def __init__(
        self,
        *,
        max_keys: int = 100_000,
        clock: Clock = time.monotonic,
        on_evict: Callable[[], None] | None = None,
        on_full: Callable[[], None] | None = None,
    ) -> None:
        self._windows: dict[str, _Window] = {}
        # window length -> {key: window} ordered by the window's newest hit
        self._groups: dict[float, OrderedDict[str, _Window]] = {}
        self._max_keys = max_keys
        self._clock = clock
        self._ids = itertools.count()
        self._on_evict = on_evict
        self._on_full = on_full

    def __len__(self) -> int:
        return len(self._windows)

    def _existing(self, key: str, seconds: float) -> _Window | None:
        window = self._windows.get(key)
        if window is not None and window.seconds != seconds:
            # Same key, another window length: move it to that length's group. It may
            # land behind windows that expire later, which can only delay its eviction.
            self._ungroup(key, window)
            window.seconds = seconds
            self._groups.setdefault(seconds, OrderedDict())[key] = window
        return window

    def _ungroup(self, key: str, window: _Window) -> None:
        group = self._groups[window.seconds]
        del group[key]
        if not group:
            del self._groups[window.seconds]

    def _drop(self, key: str, window: _Window) -> None:
        del self._windows[key]
        self._ungroup(key, window)

    def _new(self, key: str, seconds: float, now: float) -> _Window | float:
        """A new window for ``key``, or (table full of live windows) the seconds until
        the first one expires."""
        while len(self._windows) >= self._max_keys:
            first: _Window | None = None
            first_key = ""
            for group in self._groups.values():
                key_, window = next(iter(group.items()))
                if first is None or window.expires_at() < first.expires_at():
                    first_key, first = key_, window
            if first is None:
                break  # max_keys < 1: nothing to evict
            if first.expires_at() > now:
                if self._on_full is not None:
                    self._on_full()
                return first.expires_at() - now
            self._drop(first_key, first)
            if self._on_evict is not None:
                self._on_evict()
        window = self._windows[key] = _Window(seconds)
        self._groups.setdefault(seconds, OrderedDict())[key] = window
        return window

    def _add(self, key: str, window: _Window, now: float, member: str) -> None:
        window.hits.append((now, member))
        self._groups[window.seconds].move_to_end(key)

    async def check_rate_limit(
        self, key: str, max_requests: int, window_seconds: float
    ) -> Decision:
        return self.check_nowait(key, max_requests, window_seconds)

    def check_nowait(self, key: str, max_requests: int, window_seconds: float) -> Decision:
        now = self._clock()
        window = self._existing(key, window_seconds)
        if window is None:
            if max_requests < 1:
                return Decision(False, 0, window_seconds)
            made = self._new(key, window_seconds, now)
            if not isinstance(made, _Window):
                return Decision(False, 0, made)
            window = made
        window.trim(now)
        hits = window.hits
        if len(hits) >= max_requests:
            retry_after = hits[0][0] + window_seconds - now if hits else window_seconds
            return Decision(False, 0, retry_after)
        member = f"mem-{now:.6f}-{next(self._ids)}"
        self._add(key, window, now, member)
        return Decision(True, max_requests - len(hits), 0.0, member)

    def record(self, key: str, window_seconds: float, member: str) -> None:
        """Note a hit allowed elsewhere (by Redis), so an outage starts from what this
        instance already let through instead of from an empty window. With the table
        full of live windows the note is dropped (a live window is never evicted)."""
        now = self._clock()
        window = self._existing(key, window_seconds)
        if window is None:
            made = self._new(key, window_seconds, now)
            if not isinstance(made, _Window):
                return
            window = made
        window.trim(now)
        self._add(key, window, now, member)

    async def refund(self, key: str, member: str) -> None:
        window = self._windows.get(key)
        if window is None:
            return
        for i, (_, m) in enumerate(window.hits):
            if m == member:
                del window.hits[i]
                break
        if not window.hits:
            self._drop(key, window)  # an empty window limits nothing

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

    def __init__(
        self,
        max_items: int,
        clock: Clock,
        *,
        seq: Iterator[int] | None = None,
        on_evict: Callable[[], None] | None = None,
    ) -> None:
        self._items: OrderedDict[str, tuple[float, int, V]] = OrderedDict()
        self.max_items = max_items
        self._clock = clock
        self._seq = seq if seq is not None else itertools.count(1)
        self._on_evict = on_evict

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: str) -> bool:
        return key in self._items

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
        while len(self._items) > self.max_items:
            self._items.popitem(last=False)
            if self._on_evict is not None:
                self._on_evict()

    def pop(self, key: str) -> None:
        self._items.pop(key, None)

    def take(self, key: str) -> V | None:
        """Remove and return a live value in one step (no await in between)."""
        value = self.get(key)
        if value is not None:
            del self._items[key]
        return value

    def extend(self, key: str, ttl: float) -> bool:
        value = self.get(key)
        if value is None:
            return False
        self._items[key] = (self._clock() + ttl, next(self._seq), value)
        return True

    def clear(self) -> None:
        self._items.clear()

    def discard_through(self, mark: int) -> None:
        """Drop the items last written at or before sequence ``mark`` (copied elsewhere)."""
        for key in [k for k, (_, seq, _) in self._items.items() if seq <= mark]:
            del self._items[key]

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
    """Sessions as flat str->str maps with TTL.

    Authenticated state (login, browser and admin sessions) lives in one map bounded by
    ``max_items``. Entries created by anonymous requests go to a named *pool* of their
    own (``add``), bounded separately: a flood of them evicts only older entries of the
    same pool, never a session. ``on_evict(pool)`` counts every eviction ("session" for
    the main map).
    """

    name = "memory"
    MAIN = "session"

    def __init__(
        self,
        *,
        max_items: int = 100_000,
        clock: Clock = time.monotonic,
        on_evict: Callable[[str], None] | None = None,
    ) -> None:
        self._clock = clock
        self._seq = itertools.count(1)
        self._on_evict = on_evict
        self._map: _ExpiringMap[dict[str, str]] = self._new_map(self.MAIN, max_items)
        self._pools: dict[str, _ExpiringMap[dict[str, str]]] = {}

    def _new_map(self, pool: str, max_items: int) -> _ExpiringMap[dict[str, str]]:
        on_evict = self._on_evict
        return _ExpiringMap(
            max_items,
            self._clock,
            seq=self._seq,
            on_evict=None if on_evict is None else (lambda: on_evict(pool)),
        )

    def _maps(self) -> list[_ExpiringMap[dict[str, str]]]:
        return [self._map, *self._pools.values()]

    def _home(self, session_id: str) -> _ExpiringMap[dict[str, str]]:
        for candidate in self._pools.values():
            if session_id in candidate:
                return candidate
        return self._map

    def __len__(self) -> int:
        return sum(len(m) for m in self._maps())

    def pool_size(self, pool: str) -> int:
        return len(self._pools[pool]) if pool in self._pools else 0

    async def get(self, session_id: str) -> dict[str, str] | None:
        for candidate in self._maps():
            data = candidate.get(session_id)
            if data is not None:
                return dict(data)
        return None

    async def set(self, session_id: str, data: dict[str, str], ttl: float) -> None:
        self._home(session_id).set(session_id, dict(data), ttl)

    async def add(
        self, session_id: str, data: dict[str, str], ttl: float, *, pool: str, max_entries: int
    ) -> int:
        target = self._pools.get(pool)
        if target is None:
            target = self._pools[pool] = self._new_map(pool, max_entries)
        target.max_items = max_entries
        before = len(target) + (0 if session_id in target else 1)
        self._map.pop(session_id)
        target.set(session_id, dict(data), ttl)
        return max(0, before - len(target))

    async def delete(self, session_id: str) -> None:
        for candidate in self._maps():
            candidate.pop(session_id)

    async def take(self, session_id: str, *, pool: str | None = None) -> dict[str, str] | None:
        for candidate in self._maps():
            data = candidate.take(session_id)
            if data is not None:
                return data
        return None

    async def touch(self, session_id: str, ttl: float) -> bool:
        return self._home(session_id).extend(session_id, ttl)

    def export(self, since: int = 0) -> tuple[list[tuple[str, dict[str, str], float]], int]:
        items: list[tuple[str, dict[str, str], float]] = []
        high = since
        for candidate in self._maps():
            found, mark = candidate.export(since)
            items += found
            high = max(high, mark)
        return items, high

    def discard_through(self, mark: int) -> None:
        for candidate in self._maps():
            candidate.discard_through(mark)

    def clear(self) -> None:
        for candidate in self._maps():
            candidate.clear()
