"""User profiles, cache-aside through the cache slot.

One JSON record per active user is cached under ``user:<id>`` for a short TTL
(AUTHLY_CACHE_TTL_PROFILE, default PROFILE_TTL): the account view (``get``, never the
password hash) and the user's standard OpenID Connect claims (``claims``). Every change
to a user goes through ``invalidate`` so no instance serves a stale profile for longer
than the change takes to reach the cache. Unknown and disabled users are not cached: each
lookup asks the store.

The cache is asked on every lookup. What this process keeps is only the decoding of the
texts the cache answered (``ProfileEntry``, keyed by the exact text, bounded): a changed,
invalidated or expired record is a different text or a miss, so it never revives an
old entry.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from authly.backends.protocols import Cache
from authly.store import users as user_repo
from authly.store.db import Database
from authly.store.users import User

PROFILE_TTL = 60.0
DECODED_MEMO_SIZE = 1024  # distinct cached texts kept decoded
ENCODED_PER_ENTRY = 16  # encoded views kept per entry (one per claim set asked for)


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


@dataclass(frozen=True, eq=False)
class ProfileEntry:
    """An active user's cached record, decoded once per distinct text and shared by
    every lookup that got that text: read-only (``get``/``claims`` hand out copies)."""

    text: str
    claims: Mapping[str, Any]
    _encoded: dict[Hashable, bytes] = field(default_factory=dict, repr=False)

    def encoded(self, key: Hashable, encode: Callable[[Mapping[str, Any]], bytes]) -> bytes:
        """``encode(self.claims)``, remembered under ``key``: ``encode`` must depend on
        nothing but the claims and the key."""
        known = self._encoded.get(key)
        if known is None:
            known = encode(self.claims)
            if len(self._encoded) < ENCODED_PER_ENTRY:
                self._encoded[key] = known
        return known


def _entry(text: str) -> ProfileEntry:
    record = json.loads(text)
    return ProfileEntry(text, MappingProxyType(record["claims"]))


class UserProfiles:
    def __init__(self, db: Database, cache: Cache, *, ttl: float = PROFILE_TTL) -> None:
        self._db = db
        self._cache = cache
        self._ttl = ttl
        self._decoded: dict[str, ProfileEntry] = {}

    @staticmethod
    def _key(user_id: str) -> str:
        return f"user:{user_id}"

    async def entry(self, user_id: str) -> ProfileEntry | None:
        """The active user's cached record, or None if the user is unknown or disabled."""
        text = await self._cache.get(self._key(user_id))
        if text is None:
            user = await self._db.run(user_repo.get_by_id, user_id)
            if user is None or not user.is_active:
                return None
            record = {"profile": user.profile(), "claims": standard_claims(user)}
            text = json.dumps(record)
            await self._cache.set(self._key(user_id), text, self._ttl)
        known = self._decoded.get(text)
        if known is None:
            known = _entry(text)
            if len(self._decoded) >= DECODED_MEMO_SIZE:
                del self._decoded[next(iter(self._decoded))]  # the oldest
            self._decoded[text] = known
        return known

    async def _record(self, user_id: str) -> dict[str, Any] | None:
        """A fresh decoding of the record (callers may change it)."""
        entry = await self.entry(user_id)
        if entry is None:
            return None
        record: dict[str, Any] = json.loads(entry.text)
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
        return await self.entry(user_id) is not None

    async def invalidate(self, user_id: str) -> None:
        await self._cache.delete(self._key(user_id))
