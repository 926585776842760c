"""The published JWK Set, cache-aside through the cache slot.

The document is built from the key objects loaded once at start-up (cheap: no PEM
parsing on the request path) and cached as JSON; ``invalidate`` drops it when the keys
change, so every instance rebuilds it.
"""

from __future__ import annotations

import json

from authly.backends.protocols import Cache
from authly.tokens.keys import SigningKeys

JWKS_KEY = "jwks"
JWKS_TTL = 300.0


class JwksDocument:
    def __init__(self, keys: SigningKeys, cache: Cache, *, ttl: float = JWKS_TTL) -> None:
        self._keys = keys
        self._cache = cache
        self._ttl = ttl

    async def json(self) -> str:
        cached = await self._cache.get(JWKS_KEY)
        if cached is not None:
            return cached
        document = json.dumps(self._keys.jwks(), separators=(",", ":"))
        await self._cache.set(JWKS_KEY, document, self._ttl)
        return document

    async def invalidate(self) -> None:
        await self._cache.delete(JWKS_KEY)
