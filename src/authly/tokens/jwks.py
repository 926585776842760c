"""The published JWK Set, cache-aside through the cache slot.

On a miss the key set is read from the store (so a key added by any process appears
within one TTL) and cached as the JSON document served at /.well-known/jwks.json.
"""

from __future__ import annotations

import json

from authly.backends.protocols import Cache
from authly.store import keys as key_repo
from authly.store.db import Database
from authly.tokens.keys import SigningKeys

JWKS_KEY = "jwks"
JWKS_TTL = 300.0


class JwksDocument:
    def __init__(self, db: Database, cache: Cache, *, ttl: float = JWKS_TTL) -> None:
        self._db = db
        self._cache = cache
        self._ttl = ttl

    async def json(self) -> str:
        cached = await self._cache.get(JWKS_KEY)
        if cached is not None:
            return cached
        rows = await self._db.run(key_repo.list_active)
        document = json.dumps(SigningKeys(rows).jwks(), separators=(",", ":"))
        await self._cache.set(JWKS_KEY, document, self._ttl)
        return document

    async def invalidate(self) -> None:
        await self._cache.delete(JWKS_KEY)
