"""One narrow protocol per feature; each has a memory and a Redis implementation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Decision:
    """The answer of a rate limiter for one hit.

    ``member`` identifies the recorded hit so that it can be refunded (a login that
    succeeds does not count as a failed attempt). It is None when the hit was refused.
    """

    allowed: bool
    remaining: int
    retry_after: float
    member: str | None = None


class RateLimiter(Protocol):
    """Sliding-window log limiter: at most ``max_requests`` hits per ``window_seconds``."""

    name: str

    async def check_rate_limit(
        self, key: str, max_requests: int, window_seconds: float
    ) -> Decision:
        """Record a hit if the window has room (atomically); say whether it was allowed."""
        ...

    async def refund(self, key: str, member: str) -> None:
        """Remove a previously allowed hit from the window."""
        ...


class Cache(Protocol):
    """Cache-aside store of text values with a time to live."""

    name: str

    async def get(self, key: str) -> str | None: ...

    async def set(self, key: str, value: str, ttl: float) -> None: ...

    async def delete(self, key: str) -> None: ...

    async def exists(self, key: str) -> bool: ...


class SessionStore(Protocol):
    """Short-lived state (login sessions, authorization requests): a flat str->str map."""

    name: str

    async def get(self, session_id: str) -> dict[str, str] | None: ...

    async def set(self, session_id: str, data: dict[str, str], ttl: float) -> None: ...

    async def add(
        self, session_id: str, data: dict[str, str], ttl: float, *, pool: str, max_entries: int
    ) -> int:
        """Store a new entry in the bounded ``pool`` (state that anonymous requests
        create). When the pool already holds ``max_entries``, its entries closest to
        expiry are evicted; nothing outside the pool is. Returns how many were evicted."""
        ...

    async def delete(self, session_id: str) -> None: ...

    async def take(self, session_id: str, *, pool: str | None = None) -> dict[str, str] | None:
        """Delete an entry and return what it held, atomically: of concurrent takers of
        one entry exactly one gets it (one-shot entries such as pending requests).
        Name the ``pool`` an entry was added to, so it leaves the pool's count too."""
        ...

    async def touch(self, session_id: str, ttl: float) -> bool:
        """Extend a session's life; False if it does not exist."""
        ...


@dataclass(frozen=True)
class StoredSession:
    """One entry of a shared session store, as ``SharedSessionStore.live`` lists it."""

    session_id: str
    data: dict[str, str]
    expires_at: float  # wall clock
    version: str  # changes with every write


class SharedSessionStore(SessionStore, Protocol):
    """Sessions every instance sees (the store: core/store_sessions.py), the session
    feature's home when it is not on Redis and its fallback while Redis is down."""

    async def live(self) -> list[StoredSession]:
        """Every entry that has not expired."""
        ...

    async def forget(self, copied: list[tuple[str, str]]) -> int:
        """Delete the entries still at the (session_id, version) that was copied."""
        ...
