"""Issue, refresh, revoke and introspect tokens against the store."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from authly.backends.protocols import SessionStore
from authly.errors import InvalidGrant, InvalidRequest, InvalidScope, InvalidToken
from authly.store import refresh_tokens as refresh_repo
from authly.store.db import Database
from authly.store.refresh_tokens import AccessRef, Grant, RotateStatus, SessionFamily
from authly.tokens.access import AccessClaims, AccessTokens
from authly.tokens.refresh import (
    MAX_REFRESH_TOKEN_LENGTH,
    hash_refresh_token,
    new_refresh_token,
)
from authly.tokens.revocation import RevocationList

log = logging.getLogger("authly.tokens")

# The session record's field holding the claims parameter's userinfo claim names (the
# access tokens carry them as well: tokens/access.py USERINFO_CLAIMS).
SESSION_USERINFO_CLAIMS = "claims_userinfo"

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
        revocations: RevocationList,
        *,
        refresh_ttl: int,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._db = db
        self.access = access
        self.sessions = sessions
        self.revocations = revocations
        self._refresh_ttl = refresh_ttl
        self._now = now

    def _body(self, access_token: str, scope: str, refresh_token: str | None) -> dict[str, Any]:
        """RFC 6749 §5.1 successful response body."""
        body: dict[str, Any] = {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": self.access.ttl,
        }
        if refresh_token is not None:
            body["refresh_token"] = refresh_token
        body["scope"] = scope
        return body

    async def issue(
        self,
        *,
        user_id: str,
        client_id: str,
        scope: str,
        client_ip: str = "",
        with_refresh: bool = True,
        auth_time: float | None = None,
        session_sid: str | None = None,
        userinfo_claims: str = "",
    ) -> tuple[dict[str, Any], str, AccessRef]:
        """A new access (+ refresh) pair starting a new family = login session.

        Returns (response body, family id, access token reference). The family id is
        the ``sid`` claim and the key of a session record (who, which client, from
        where, since when) kept in the session backend while the family lives.
        ``userinfo_claims`` (the claims parameter's userinfo names, space-separated)
        goes into the access token and the session record, where ``refresh`` finds it
        for the family's later access tokens.
        """
        family_id = str(uuid.uuid4())
        ref = self.access.new_ref()
        now = self._now()
        refresh_token = None
        if with_refresh:
            refresh_token, token_hash = new_refresh_token()
            grant = Grant(user_id, client_id, scope, family_id, auth_time, session_sid)
            await self._db.run(
                refresh_repo.insert, token_hash, grant, now, now + self._refresh_ttl, ref
            )
        await self.sessions.set(
            family_id,
            {
                "user_id": user_id,
                "client_id": client_id,
                "scope": scope,
                "ip": client_ip,
                "created_at": str(int(now)),
                **({SESSION_USERINFO_CLAIMS: userinfo_claims} if userinfo_claims else {}),
            },
            self._refresh_ttl if with_refresh else self.access.ttl,
        )
        access_token = self.access.issue(
            subject=user_id,
            client_id=client_id,
            scope=scope,
            session_id=family_id,
            ref=ref,
            userinfo_claims=userinfo_claims,
        )
        return self._body(access_token, scope, refresh_token), family_id, ref

    def issue_for_client(self, *, client_id: str, scope: str) -> dict[str, Any]:
        """client_credentials: an access token whose subject is the client; no refresh."""
        token = self.access.issue(subject=client_id, client_id=client_id, scope=scope)
        return self._body(token, scope, None)

    async def refresh(
        self,
        refresh_token: str,
        *,
        client_id: str | None,
        scope: frozenset[str] | None,
        scope_limit: frozenset[str] | None = None,
    ) -> tuple[dict[str, Any], Grant]:
        """Rotate ``refresh_token`` (RFC 6749 §6); return the new pair and its grant.

        Error handling: InvalidGrant for unknown/expired/revoked/reused tokens (reuse
        also revokes the family and its access tokens); InvalidScope when asking for
        more than was granted.
        """
        _check_token_text(refresh_token)
        new_token, new_hash = new_refresh_token()
        ref = self.access.new_ref()
        result = await self._db.run(
            refresh_repo.rotate,
            hash_refresh_token(refresh_token),
            new_hash,
            client_id,
            scope,
            self._now(),
            self._refresh_ttl,
            ref,
        )
        if result.status is RotateStatus.SCOPE_EXCEEDED:
            raise InvalidScope("The requested scope exceeds the scope originally granted.")
        if result.status is not RotateStatus.OK or result.grant is None:
            if result.status is RotateStatus.REUSED:
                log.warning("refresh token reuse detected; token family revoked")
                await self.revocations.mark(result.revoked)
            raise InvalidGrant(_REFUSALS[result.status])
        grant = result.grant
        scope_text = grant.scope
        if scope_limit is not None:
            # Scopes taken away from the client since the grant are not issued again.
            scope_text = " ".join(sorted(set(grant.scope.split()) & scope_limit))
        # The claims parameter's userinfo names live only in the family's session
        # record (the refresh-token row has no column for them): read them here, once
        # per refresh, so userinfo never has to.
        record = await self.sessions.get(grant.family_id)
        userinfo_claims = ""
        if record is not None and record.get("user_id") == grant.user_id:
            userinfo_claims = record.get(SESSION_USERINFO_CLAIMS, "")
        await self.sessions.touch(grant.family_id, self._refresh_ttl)
        access_token = self.access.issue(
            subject=grant.user_id,
            client_id=grant.client_id,
            scope=scope_text,
            session_id=grant.family_id,
            ref=ref,
            userinfo_claims=userinfo_claims,
        )
        return self._body(access_token, scope_text, new_token), replace(grant, scope=scope_text)

    async def revoke(self, refresh_token: str, *, client_id: str | None = None) -> bool:
        """Revoke the token's whole family and end its session; False if unknown (or,
        with ``client_id``, issued to another client)."""
        _check_token_text(refresh_token)
        revoked = await self._db.run(
            refresh_repo.revoke_family_of,
            hash_refresh_token(refresh_token),
            self._now(),
            client_id,
        )
        if revoked is None:
            return False
        family_id, refs = revoked
        await self._end_family(family_id, refs)
        return True

    async def client_of(self, refresh_token: str) -> str | None:
        """The client a refresh token (active or not) was issued to; None if unknown."""
        _check_token_text(refresh_token)
        info = await self._db.run(
            refresh_repo.lookup, hash_refresh_token(refresh_token), self._now()
        )
        return None if info is None else info.grant.client_id

    async def revoke_family(self, family_id: str) -> None:
        refs = await self._db.run(refresh_repo.revoke_family_tx, family_id, self._now())
        await self._end_family(family_id, refs)

    async def revoke_session(self, session_sid: str) -> list[SessionFamily]:
        """Revoke every family signed in through the browser session ``session_sid``
        (OpenID Connect logout) and end their login sessions; return those families."""
        families, refs = await self._db.run(refresh_repo.revoke_session, session_sid, self._now())
        for family in families:
            await self.sessions.delete(family.family_id)
        await self.revocations.mark(refs)
        return families

    async def _end_family(self, family_id: str, refs: list[AccessRef]) -> None:
        await self.sessions.delete(family_id)
        # The store put the family's access tokens on the revocation list in the same
        # transaction; cached "not revoked" answers must not outlive that.
        await self.revocations.mark(refs)

    async def session(self, session_id: str) -> dict[str, str] | None:
        """The login session record behind a ``sid``; None once logged out or expired."""
        return await self.sessions.get(session_id)

    async def verify_access(self, token: str) -> AccessClaims:
        """A valid, unrevoked access token's claims, or InvalidToken."""
        claims = await self.access.verify_fresh(token)
        if await self.revocations.is_revoked(claims.jti, claims.expires_at):
            raise InvalidToken("The access token has been revoked.")
        return claims


def _check_token_text(token: str) -> None:
    if not token or len(token) > MAX_REFRESH_TOKEN_LENGTH:
        raise InvalidRequest("refresh_token is missing or too long.")
