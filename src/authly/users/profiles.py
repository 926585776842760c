"""User profiles, cache-aside through the cache slot.

One JSON record per active user is cached under ``user:<id>`` for a short TTL: the
account view (``get``, never the password hash) and the user's standard OpenID Connect
claims (``claims``). Every change to a user goes through ``invalidate`` so no instance
serves a stale profile for longer than the change takes to reach the cache. Unknown and
disabled users are not cached: each lookup asks the store.
"""

from __future__ import annotations

import json
from typing import Any

from authly.backends.protocols import Cache
from authly.store import users as user_repo
from authly.store.db import Database
from authly.store.users import User

PROFILE_TTL = 60.0


def standard_claims(user: User) -> dict[str, Any]:
    """Every standard claim (OIDC Core §5.1) the user has a value for, ``sub`` first.

    ``email_verified``/``phone_number_verified`` only accompany an address/number;
    ``preferred_username`` falls back to the account's username.
    """
    attributes = dict(user.attributes)
    if "email" not in attributes:
        attributes.pop("email_verified", None)
    if "phone_number" not in attributes:
        attributes.pop("phone_number_verified", None)
    attributes.setdefault("preferred_username", user.username)
    return {"sub": user.id, **attributes, "updated_at": int(user.updated_at)}


class UserProfiles:
    def __init__(self, db: Database, cache: Cache, *, ttl: float = PROFILE_TTL) -> None:
        self._db = db
        self._cache = cache
        self._ttl = ttl

    @staticmethod
    def _key(user_id: str) -> str:
        return f"user:{user_id}"

    async def _record(self, user_id: str) -> dict[str, Any] | None:
        cached = await self._cache.get(self._key(user_id))
        if cached is not None:
            record: dict[str, Any] = json.loads(cached)
            return record
        user = await self._db.run(user_repo.get_by_id, user_id)
        if user is None or not user.is_active:
            return None
        record = {"profile": user.profile(), "claims": standard_claims(user)}
        await self._cache.set(self._key(user_id), json.dumps(record), self._ttl)
        return record

    async def get(self, user_id: str) -> dict[str, Any] | None:
        """The active user's profile, or None if the user is unknown or disabled."""
        record = await self._record(user_id)
        return None if record is None else dict(record["profile"])

    async def claims(self, user_id: str) -> dict[str, Any] | None:
        """The active user's standard claims (``standard_claims``), or None if the user
        is unknown or disabled."""
        record = await self._record(user_id)
        return None if record is None else dict(record["claims"])

    async def is_active(self, user_id: str) -> bool:
        return await self._record(user_id) is not None

    async def invalidate(self, user_id: str) -> None:
        await self._cache.delete(self._key(user_id))
