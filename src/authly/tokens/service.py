"""Issue, refresh and revoke token pairs against the store."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from authly.backends.protocols import SessionStore
from authly.oauth.errors import InvalidGrant, InvalidRequest, InvalidScope
from authly.store import refresh_tokens as refresh_repo
from authly.store.db import Database
from authly.store.refresh_tokens import Grant, RotateStatus
from authly.tokens.access import AccessTokens
from authly.tokens.refresh import (
    MAX_REFRESH_TOKEN_LENGTH,
    hash_refresh_token,
    new_refresh_token,
)

log = logging.getLogger("authly.tokens")

_REFUSALS = {
    RotateStatus.UNKNOWN: "The refresh token is invalid.",
    RotateStatus.EXPIRED: "The refresh token has expired.",
    RotateStatus.REVOKED: "The refresh token has been revoked.",
    RotateStatus.REUSED: "The refresh token was already used; its whole family is revoked.",
    RotateStatus.WRONG_CLIENT: "The refresh token was issued to another client.",
    RotateStatus.USER_INACTIVE: "The account is disabled.",
}


class TokenService:
    def __init__(
        self,
        db: Database,
        access: AccessTokens,
        sessions: SessionStore,
        *,
        refresh_ttl: int,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._db = db
        self.access = access
        self.sessions = sessions
        self._refresh_ttl = refresh_ttl
        self._now = now

    def _response(self, grant: Grant, refresh_token: str, scope: str) -> dict[str, Any]:
        """RFC 6749 §5.1 successful response body."""
        return {
            "access_token": self.access.issue(
                subject=grant.user_id,
                client_id=grant.client_id,
                scope=scope,
                session_id=grant.family_id,
            ),
            "token_type": "Bearer",
            "expires_in": self.access.ttl,
            "refresh_token": refresh_token,
            "scope": scope,
        }

    async def issue(
        self, *, user_id: str, client_id: str, scope: str, client_ip: str = ""
    ) -> dict[str, Any]:
        """A new access + refresh pair starting a new refresh family.

        The family is the login session: its id is the ``sid`` claim, and a session
        record (who, which client, from where, since when) lives in the session backend
        for as long as the family can be refreshed.
        """
        token, token_hash = new_refresh_token()
        grant = Grant(user_id, client_id, scope, str(uuid.uuid4()))
        now = self._now()
        await self._db.run(refresh_repo.insert, token_hash, grant, now, now + self._refresh_ttl)
        await self.sessions.set(
            grant.family_id,
            {
                "user_id": user_id,
                "client_id": client_id,
                "scope": scope,
                "ip": client_ip,
                "created_at": str(int(now)),
            },
            self._refresh_ttl,
        )
        return self._response(grant, token, scope)

    async def refresh(
        self, refresh_token: str, *, client_id: str | None, scope: frozenset[str] | None
    ) -> dict[str, Any]:
        """Rotate ``refresh_token`` (RFC 6749 §6) and return a new pair.

        Error handling: InvalidGrant for unknown/expired/revoked/reused tokens (reuse
        also revokes the family); InvalidScope when asking for more than was granted.
        """
        _check_token_text(refresh_token)
        new_token, new_hash = new_refresh_token()
        result = await self._db.run(
            refresh_repo.rotate,
            hash_refresh_token(refresh_token),
            new_hash,
            client_id,
            scope,
            self._now(),
            self._refresh_ttl,
        )
        if result.status is RotateStatus.SCOPE_EXCEEDED:
            raise InvalidScope("The requested scope exceeds the scope originally granted.")
        if result.status is not RotateStatus.OK or result.grant is None:
            if result.status is RotateStatus.REUSED:
                log.warning("refresh token reuse detected; token family revoked")
            raise InvalidGrant(_REFUSALS[result.status])
        await self.sessions.touch(result.grant.family_id, self._refresh_ttl)
        return self._response(result.grant, new_token, result.grant.scope)

    async def revoke(self, refresh_token: str) -> bool:
        """Revoke the token's whole family and end its session; False if unknown."""
        _check_token_text(refresh_token)
        family_id = await self._db.run(
            refresh_repo.revoke_family_of, hash_refresh_token(refresh_token), self._now()
        )
        if family_id is None:
            return False
        await self.sessions.delete(family_id)
        return True

    async def session(self, session_id: str) -> dict[str, str] | None:
        """The login session record behind a ``sid``; None once logged out or expired."""
        return await self.sessions.get(session_id)


def _check_token_text(token: str) -> None:
    if not token or len(token) > MAX_REFRESH_TOKEN_LENGTH:
        raise InvalidRequest("refresh_token is missing or too long.")
