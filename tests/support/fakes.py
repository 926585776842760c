"""Stand-ins for the tests: a settable clock, and, for the "concurrent uses, exactly one
wins" tests, a cache that holds its first caller between a replay check and its record
and a session store whose reads wait for every racer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import trio

from authly.backends.memory import MemoryCache
from authly.errors import OAuthError


class Clock:
    """A settable clock: it says ``now`` until a test moves it."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class GatedCache(MemoryCache):
    """A cache whose first ``exists`` waits for ``gate``: the request holding it is
    between its replay check and its record while another one runs."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived = trio.Event()
        self.gate = trio.Event()

    async def exists(self, key: str) -> bool:
        found = await super().exists(key)
        if not self.arrived.is_set():
            self.arrived.set()
            await self.gate.wait()
        return found


async def race_two(
    cache: GatedCache, attempt: Callable[[], Awaitable[object]], refused: type[OAuthError]
) -> list[str]:
    """Makes ``attempt`` twice, the second from start to end while the first is held in
    ``cache`` between its replay check and its record; what each came to ("ok", or the
    description of the ``refused`` error it raised), sorted."""
    outcomes: list[str] = []

    async def use() -> None:
        try:
            await attempt()
        except refused as exc:
            outcomes.append(exc.description)
        else:
            outcomes.append("ok")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(use)
        await cache.arrived.wait()  # the first is checking its jti
        await use()  # the second runs to its end meanwhile
        cache.gate.set()
    return sorted(outcomes)


class ReadGate:
    """A session store, except that once ``closed``, reads of keys starting with
    ``prefix`` wait until ``n`` readers have arrived: every racer is past its checks (has
    read the one-shot thing) before any of them goes on to answer or take it."""

    def __init__(self, inner: Any, n: int, prefix: str) -> None:
        self._inner = inner
        self._n = n
        self._prefix = prefix
        self._arrived = 0
        self._all_here = trio.Event()
        self.closed = False

    async def get(self, key: str) -> Any:
        data = await self._inner.get(key)
        if self.closed and key.startswith(self._prefix):
            self._arrived += 1
            if self._arrived >= self._n:
                self._all_here.set()
            await self._all_here.wait()
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)
