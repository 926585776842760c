"""Browser login sessions for the authorization endpoint's pages.

A session is a random id (256 bits) held by the browser in a cookie and a record
``{user_id, created_at}`` in the session backend, so it outlives a switch to
another instance (and, on Redis, a restart). The backend key is a SHA-256 of the id,
so whoever can list the backend's keys cannot use them as cookies. A session lasts a
fixed time from sign-in (no sliding renewal) and ends early at sign-out or when its
user is disabled or deleted. (Forms carry the CSRF token of the pending authorization
request they belong to: see oauth/pending.py.)
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from authly.backends.protocols import SessionStore
from authly.store import users as user_repo
from authly.store.db import Database
from authly.store.users import User

SESSION_TTL = 8 * 3600.0
# secrets.token_urlsafe(32): 43 base64url characters.
_SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{43}$")


@dataclass(frozen=True)
class BrowserSession:
    id: str  # the cookie value: secret
    user_id: str
    created_at: float  # when the user signed in (the ID token's auth_time)
    sid: str = ""  # a public name for the session (the ID token's sid)


def _key(session_id: str) -> str:
    return "browser:" + hashlib.sha256(session_id.encode("ascii")).hexdigest()


def _voided(created_at: float, user: User) -> bool:
    """Started before the user's sessions were ended (password change or reset)."""
    return user.sessions_valid_after is not None and created_at <= user.sessions_valid_after


def well_formed(session_id: str | None) -> bool:
    return session_id is not None and _SESSION_ID.match(session_id) is not None


class BrowserSessions:
    def __init__(
        self,
        store: SessionStore,
        db: Database,
        *,
        ttl: float = SESSION_TTL,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._db = db
        self.ttl = ttl
        self._now = now

    async def start(self, user_id: str) -> BrowserSession:
        """A new session for ``user_id`` (always a fresh id: no session fixation)."""
        session = BrowserSession(
            id=secrets.token_urlsafe(32),
            user_id=user_id,
            created_at=self._now(),
            sid=secrets.token_urlsafe(16),
        )
        record = {
            "user_id": session.user_id,
            "created_at": repr(session.created_at),
            "sid": session.sid,
        }
        await self._store.set(_key(session.id), record, self.ttl)
        return session

    async def get(self, session_id: str | None) -> BrowserSession | None:
        """The live session with this id; None for absent, malformed or ended ids."""
        if session_id is None or not well_formed(session_id):
            return None
        record = await self._store.get(_key(session_id))
        if not record or not record.get("user_id"):
            return None
        try:
            created_at = float(record.get("created_at", ""))
        except ValueError:
            return None
        # Sessions started before sids existed get one derived from the (hashed) key.
        sid = record.get("sid") or _key(session_id)[-22:]
        return BrowserSession(session_id, record["user_id"], created_at, sid)

    async def resume(self, session_id: str | None) -> tuple[BrowserSession, User] | None:
        """The session and its (active) user; ends the session if the user is gone."""
        session = await self.get(session_id)
        if session is None:
            return None
        user = await self._db.run(user_repo.get_by_id, session.user_id)
        if user is None or not user.is_active or _voided(session.created_at, user):
            await self.end(session.id)
            return None
        return session, user

    async def end(self, session_id: str | None) -> None:
        if session_id is not None and well_formed(session_id):
            await self._store.delete(_key(session_id))
