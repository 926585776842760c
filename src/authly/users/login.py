"""Password authentication with failed-attempt limits per username and per client IP.

Each attempt first *reserves* a slot in both windows (one atomic check-and-add per key,
the client IP's first, then the username's; a refusal by the second refunds the first),
then verifies the password; a successful login hands its slots back. So "5 failed
attempts per 60 s" holds even for a burst of concurrent attempts: at most the limit can
be in flight or failed at any moment, and the limiter never fails open.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from authly.backends.protocols import RateLimiter
from authly.errors import InvalidGrant, RateLimitExceeded
from authly.store import users as user_repo
from authly.store.db import Database
from authly.store.users import User, username_key
from authly.users.passwords import PasswordHasher
from authly.users.profiles import UserProfiles

log = logging.getLogger("authly.login")

MAX_USERNAME = 255
MAX_PASSWORD = 1024


class LoginService:
    def __init__(
        self,
        db: Database,
        hasher: PasswordHasher,
        limiter: RateLimiter,
        profiles: UserProfiles,
        *,
        max_failures: int,
        window_seconds: float,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._db = db
        self._hasher = hasher
        self._limiter = limiter
        self._profiles = profiles
        self._max = max_failures
        self._window = window_seconds
        self._now = now

    async def authenticate(self, username: str, password: str, client_ip: str) -> User:
        """Return the active user with these credentials.

        Error handling: RateLimitExceeded when either window is full; InvalidGrant with
        one wording for unknown user, wrong password or disabled account.
        """
        # The address first: a request refused on its address never touches (creates)
        # a username window, so one address cannot flood the limiter with usernames.
        keys = (f"login:ip:{client_ip}", f"login:user:{username_key(username)}")
        reserved: list[tuple[str, str]] = []
        for key in keys:
            decision = await self._limiter.check_rate_limit(key, self._max, self._window)
            if not decision.allowed:
                await self._refund(reserved)
                log.info("login rate limited for %s", key.split(":")[1])
                raise RateLimitExceeded(decision.retry_after)
            assert decision.member is not None
            reserved.append((key, decision.member))

        try:
            user = await self._check_password(username, password)
        except InvalidGrant:
            raise  # a failed attempt: it keeps its slots
        except Exception:
            await self._refund(reserved)  # the server failed, not the caller
            raise
        await self._refund(reserved)
        if self._hasher.needs_rehash(user.password_hash):
            new_hash = await self._hasher.hash(password)
            await self._db.run(user_repo.update_password_hash, user.id, new_hash, self._now())
            await self._profiles.invalidate(user.id)
        return user

    async def _check_password(self, username: str, password: str) -> User:
        user = await self._db.run(user_repo.get_by_username, username)
        if user is None or not user.is_active:
            await self._hasher.verify_dummy(password)
            raise InvalidGrant("Invalid username or password.")
        if not await self._hasher.verify(user.password_hash, password):
            raise InvalidGrant("Invalid username or password.")
        return user

    async def _refund(self, reserved: list[tuple[str, str]]) -> None:
        for key, member in reserved:
            await self._limiter.refund(key, member)
