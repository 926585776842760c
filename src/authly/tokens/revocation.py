"""The access-token revocation list (RFC 7009 for JWTs), cache-aside by ``jti``.

JWT access tokens cannot be recalled, so a revoked token's ``jti`` is stored until the
token would have expired. Lookups go through the cache slot: a revoked entry is cached
for the token's remaining life; a "not revoked" answer for at most ``negative_ttl``
seconds (AUTHLY_CACHE_TTL_REVOCATION, default NEGATIVE_TTL), so on a shared (Redis) cache
a revocation is seen at once, and on per-instance memory caches within ``negative_ttl``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from authly.backends.protocols import Cache
from authly.store import revocations as repo
from authly.store.db import Database
from authly.store.refresh_tokens import AccessRef

NEGATIVE_TTL = 30.0


class RevocationList:
    def __init__(
        self,
        db: Database,
        cache: Cache,
        *,
        negative_ttl: float = NEGATIVE_TTL,
        now: Callable[[], float] = time.time,
    ):
        self._db = db
        self._cache = cache
        self._negative_ttl = negative_ttl  # AUTHLY_CACHE_TTL_REVOCATION
        self._now = now

    @staticmethod
    def _key(jti: str) -> str:
        return f"revoked:{jti}"

    async def is_revoked(self, jti: str, expires_at: float) -> bool:
        cached = await self._cache.get(self._key(jti))
        if cached is not None:
            return cached == "1"
        revoked = await self._db.run(repo.is_revoked, jti)
        ttl = (
            expires_at - self._now()
            if revoked
            else min(self._negative_ttl, expires_at - self._now())
        )
        if ttl > 0:
            await self._cache.set(self._key(jti), "1" if revoked else "0", ttl)
        return revoked

    async def revoke(self, entries: list[tuple[str, float]]) -> None:
        """Revoke (jti, expires_at) pairs; entries already expired are skipped."""
        now = self._now()
        live = [(jti, exp) for jti, exp in entries if exp > now]
        if not live:
            return
        await self._db.run(repo.add, live)
        for jti, exp in live:
            await self._cache.set(self._key(jti), "1", exp - now)

    async def mark(self, refs: Iterable[AccessRef]) -> None:
        """Cache "revoked" for tokens the store has already put on the list."""
        now = self._now()
        for ref in refs:
            if ref.expires_at > now:
                await self._cache.set(self._key(ref.jti), "1", ref.expires_at - now)
