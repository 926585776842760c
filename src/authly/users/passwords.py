"""argon2id password hashing, always off the event loop.

Hashing and verifying run in ``trio.to_thread`` under a CapacityLimiter, so a burst of
logins queues for the hash threads instead of stalling every other request. The defaults
(t=2, m=19 MiB, p=1) are OWASP's minimum argon2id profile; see docs/decisions.md.
"""

from __future__ import annotations

import secrets

import argon2
import trio
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError


class PasswordHasher:
    def __init__(self, *, time_cost: int, memory_kib: int, concurrency: int) -> None:
        self._ph = argon2.PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_kib,
            parallelism=1,
            hash_len=32,
            salt_len=16,
            type=argon2.Type.ID,
        )
        self._limiter = trio.CapacityLimiter(concurrency)
        self._dummy_hash: str | None = None

    async def hash(self, password: str) -> str:
        return await trio.to_thread.run_sync(self._ph.hash, password, limiter=self._limiter)

    async def verify(self, stored_hash: str, password: str) -> bool:
        """True if ``password`` matches; False on mismatch or an unreadable hash."""
        return await trio.to_thread.run_sync(
            self._verify_sync, stored_hash, password, limiter=self._limiter
        )

    async def verify_dummy(self, password: str) -> None:
        """Spend the same work as a real verify, for a user that does not exist, so the
        answer's timing does not tell whether the username is registered."""
        if self._dummy_hash is None:
            self._dummy_hash = await self.hash(secrets.token_urlsafe(16))
        await self.verify(self._dummy_hash, password)

    def needs_rehash(self, stored_hash: str) -> bool:
        try:
            return self._ph.check_needs_rehash(stored_hash)
        except InvalidHashError:
            return False

    def _verify_sync(self, stored_hash: str, password: str) -> bool:
        try:
            return self._ph.verify(stored_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
