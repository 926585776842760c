"""The published JWK Set, cache-aside through the cache slot.

When the cache entry is missing or expired, the keys are first reloaded from the store
(so a rotation done by another instance shows up), then the document is built from the
key objects (cheap: new PEMs only) and cached as JSON for ``ttl`` — or less, if a
retired key's publication ends sooner. ``invalidate`` drops the entry after a rotation;
with the cache on Redis that reaches every instance at once, with in-memory caches
each instance rebuilds within ``ttl``. The response's ``Cache-Control`` max-age is
``ttl`` too (web/oidc.py). ``ttl`` is AUTHLY_CACHE_TTL_JWKS (default JWKS_TTL).
"""

from __future__ import annotations

import json
import logging

from authly.backends.protocols import Cache
from authly.errors import StoreError
from authly.tokens.keys import REFRESH_INTERVAL, SigningKeys

log = logging.getLogger("authly.keys")

JWKS_KEY = "jwks"
JWKS_TTL = REFRESH_INTERVAL  # 300 s


class JwksDocument:
    def __init__(self, keys: SigningKeys, cache: Cache, *, ttl: float = JWKS_TTL) -> None:
        self._keys = keys
        self._cache = cache
        self.ttl = ttl

    async def json(self) -> str:
        cached = await self._cache.get(JWKS_KEY)
        if cached is not None:
            return cached
        try:
            await self._keys.reload()
        except StoreError as exc:  # serve what this instance has
            log.warning("reloading signing keys for the JWKS failed: %s", exc)
        document = json.dumps(self._keys.jwks(), separators=(",", ":"))
        ttl = max(1.0, min(self.ttl, self._keys.seconds_to_change()))
        await self._cache.set(JWKS_KEY, document, ttl)
        return document

    async def invalidate(self) -> None:
        await self._cache.delete(JWKS_KEY)
