"""The session feature on the store ("Database sessions", the user guide's hybrid
scenario): where sessions live when they are not on Redis, so that every worker and
instance sharing the store sees them and no load balancer needs sticky sessions.

Implements the SessionStore protocol (backends/protocols.py) over store/sessions.py;
each call is one store query (``add`` one short write transaction). Expiry is wall-clock
time, which instances sharing the store agree on.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from authly.backends.protocols import StoredSession
from authly.store import sessions as repo
from authly.store.db import Database


class StoreSessionStore:
    name = "database"

    def __init__(
        self,
        db: Database,
        *,
        clock: Callable[[], float] = time.time,
        on_evict: Callable[[str], None] | None = None,
    ) -> None:
        self._db = db
        self._clock = clock
        self._on_evict = on_evict

    async def get(self, session_id: str) -> dict[str, str] | None:
        return await self._db.run(repo.get, session_id, self._clock())

    async def set(self, session_id: str, data: dict[str, str], ttl: float) -> None:
        await self._db.run(repo.put, session_id, dict(data), self._clock() + ttl)

    async def add(
        self, session_id: str, data: dict[str, str], ttl: float, *, pool: str, max_entries: int
    ) -> int:
        now = self._clock()
        evicted = await self._db.run(
            repo.add, session_id, dict(data), now + ttl, pool, max_entries, now
        )
        if evicted and self._on_evict is not None:
            for _ in range(evicted):
                self._on_evict(pool)
        return evicted

    async def delete(self, session_id: str) -> None:
        await self._db.run(repo.delete, session_id)

    async def take(self, session_id: str, *, pool: str | None = None) -> dict[str, str] | None:
        return await self._db.run(repo.take, session_id, self._clock())

    async def touch(self, session_id: str, ttl: float) -> bool:
        now = self._clock()
        return await self._db.run(repo.touch, session_id, now + ttl, now)

    async def live(self) -> list[StoredSession]:
        rows = await self._db.run(repo.live, self._clock())
        return [
            StoredSession(sid, data, expires, version) for sid, _, data, expires, version in rows
        ]

    async def forget(self, copied: list[tuple[str, str]]) -> int:
        return await self._db.run(repo.forget, copied)

    async def count(self, pool: str | None = None) -> int:
        return await self._db.run(repo.count, self._clock(), pool)
