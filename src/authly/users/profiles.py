"""User profiles, cache-aside through the cache slot.

The profile (never the password hash) is cached as JSON under ``user:<id>`` for a short
TTL; every change to a user goes through ``invalidate`` so no instance serves a stale
profile for longer than the change takes to reach the cache.
"""

from __future__ import annotations

import json
from typing import Any

from authly.backends.protocols import Cache
from authly.store import users as user_repo
from authly.store.db import Database

PROFILE_TTL = 60.0


class UserProfiles:
    def __init__(self, db: Database, cache: Cache, *, ttl: float = PROFILE_TTL) -> None:
        self._db = db
        self._cache = cache
        self._ttl = ttl

    @staticmethod
    def _key(user_id: str) -> str:
        return f"user:{user_id}"

    async def get(self, user_id: str) -> dict[str, Any] | None:
        """The active user's profile, or None if the user is unknown or disabled."""
        cached = await self._cache.get(self._key(user_id))
        if cached is not None:
            profile: dict[str, Any] = json.loads(cached)
            return profile
        user = await self._db.run(user_repo.get_by_id, user_id)
        if user is None or not user.is_active:
            return None
        profile = user.profile()
        await self._cache.set(self._key(user_id), json.dumps(profile), self._ttl)
        return profile

    async def invalidate(self, user_id: str) -> None:
        await self._cache.delete(self._key(user_id))
