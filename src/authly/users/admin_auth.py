"""Who may use the admin API: admin sessions (for the CLI) and admin-scoped access tokens.

An admin session is made by logging in with a password. The caller gets an opaque
handle (``aas_`` + 256 random bits, base64url) once; the session backend keys the
record by ``admin:`` + SHA-256(handle), so the backend (or a dump of Redis) never holds
a usable credential, and a lookup by hash leaks nothing useful through its timing. A
session lives ``IDLE_TTL`` after its last use and never more than ``MAX_AGE`` after the
login.

Either credential arrives as ``Authorization: Bearer <value>``. Handles start with a
prefix no JWT can start with (a JWS compact serialization starts with base64url JSON,
``eyJ``), so the two never need guessing. Both are re-checked against the user row on
every request: a disabled or demoted admin loses access at once.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from authly.backends.protocols import SessionStore
from authly.errors import AccessDenied, InvalidToken
from authly.store import users as user_repo
from authly.store.db import Database
from authly.store.users import User
from authly.tokens.service import TokenService
from authly.users.login import LoginService
from authly.users.roles import ADMIN_SCOPE

HANDLE_PREFIX = "aas_"
IDLE_TTL = 8 * 3600
MAX_AGE = 24 * 3600
_HANDLE = re.compile(r"^aas_[A-Za-z0-9_-]{43}$")


def is_session_handle(credential: str) -> bool:
    return credential.startswith(HANDLE_PREFIX)


def _key(handle: str) -> str:
    return "admin:" + hashlib.sha256(handle.encode("ascii")).hexdigest()


@dataclass(frozen=True)
class AdminPrincipal:
    """An authenticated administrator and how they proved it."""

    user: User
    via: str  # "session" | "access_token"
    expires_in: int
    handle: str | None = None

    def status(self) -> dict[str, object]:
        return {
            "user": {"id": self.user.id, "username": self.user.username},
            "auth": self.via,
            "expires_in": self.expires_in,
        }


class AdminAuth:
    def __init__(
        self,
        db: Database,
        sessions: SessionStore,
        tokens: TokenService,
        login: LoginService,
        *,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._db = db
        self._sessions = sessions
        self._tokens = tokens
        self._login = login
        self._now = now

    async def login(
        self, username: str, password: str, client_ip: str
    ) -> tuple[str, AdminPrincipal]:
        """A new admin session for an admin user's correct password: (handle, principal).

        Error handling: what LoginService.authenticate raises (InvalidGrant,
        RateLimitExceeded — the login limits apply), AccessDenied for non-admins.
        """
        user = await self._login.authenticate(username, password, client_ip)
        if not user.is_admin:
            raise AccessDenied("This account is not an administrator.")
        handle = HANDLE_PREFIX + secrets.token_urlsafe(32)
        record = {"kind": "admin", "user_id": user.id, "created_at": repr(self._now())}
        await self._sessions.set(_key(handle), record, IDLE_TTL)
        return handle, AdminPrincipal(user, "session", IDLE_TTL, handle)

    async def logout(self, handle: str) -> None:
        await self._sessions.delete(_key(handle))

    async def authenticate(self, credential: str) -> AdminPrincipal:
        """The administrator behind a bearer credential.

        Error handling: InvalidToken (401) when the credential is unknown, expired or
        malformed, or its user is gone or disabled; AccessDenied (403) when it is valid
        but does not carry admin rights.
        """
        if is_session_handle(credential):
            return await self._from_session(credential)
        claims = await self._tokens.verify_access(credential)
        if ADMIN_SCOPE not in claims.scope:
            raise AccessDenied(f"The access token lacks the {ADMIN_SCOPE} scope.")
        user = await self._active_user(claims.subject)
        if user is None:
            raise InvalidToken("The account behind this token no longer exists or is disabled.")
        if not user.is_admin:
            raise AccessDenied("This account is not an administrator.")
        expires_in = max(0, int(claims.expires_at - self._now()))
        return AdminPrincipal(user, "access_token", expires_in)

    async def _from_session(self, handle: str) -> AdminPrincipal:
        ended = InvalidToken("The admin session is unknown or has ended; log in again.")
        if not _HANDLE.match(handle):
            raise ended
        key = _key(handle)
        record = await self._sessions.get(key)
        if record is None or record.get("kind") != "admin":
            raise ended
        try:
            created_at = float(record["created_at"])
            user_id = record["user_id"]
        except (KeyError, ValueError):
            await self._sessions.delete(key)
            raise ended from None
        remaining = created_at + MAX_AGE - self._now()
        ttl = min(float(IDLE_TTL), remaining)
        if ttl <= 0 or not await self._sessions.touch(key, ttl):
            await self._sessions.delete(key)
            raise ended
        user = await self._active_user(user_id)
        if user is not None and user.sessions_valid_after is not None:
            # The user's sessions were ended (password change or reset) after this login.
            user = None if created_at <= user.sessions_valid_after else user
        if user is None or not user.is_admin:
            await self._sessions.delete(key)
            if user is None:
                raise ended
            raise AccessDenied("This account is no longer an administrator.")
        return AdminPrincipal(user, "session", int(ttl), handle)

    async def _active_user(self, user_id: str) -> User | None:
        user = await self._db.run(user_repo.get_by_id, user_id)
        return user if user is not None and user.is_active else None
