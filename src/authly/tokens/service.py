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
    RotateStatus.DPOP_KEY_MISMATCH: (
        "The refresh token is bound to a DPoP key: send a DPoP proof made with that key."
    ),
}


class WrongSender(InvalidToken):
    """Raised when a DPoP-bound access token comes without a proof of its key, or a
    proof comes with a token not bound to its key (RFC 9449 §7)."""


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

    def _body(
        self, access_token: str, scope: str, refresh_token: str | None, jkt: str | None = None
    ) -> dict[str, Any]:
        """RFC 6749 §5.1 successful response body (``token_type`` DPoP for a token
        bound to a DPoP key, RFC 9449 §5)."""
        body: dict[str, Any] = {
            "access_token": access_token,
            "token_type": "Bearer" if jkt is None else "DPoP",
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
        resources: tuple[str, ...] = (),
        access_scope: str | None = None,
        access_resources: tuple[str, ...] | None = None,
        jkt: str | None = None,
        refresh_jkt: str | None = None,
    ) -> tuple[dict[str, Any], str, AccessRef]:
        """A new access (+ refresh) pair starting a new family = login session.

        Returns (response body, family id, access token reference). The family id is
        the ``sid`` claim and the key of a session record (who, which client, from
        where, since when) kept in the session backend while the family lives.
        ``userinfo_claims`` (the claims parameter's userinfo names, space-separated)
        goes into the access token and the session record, where ``refresh`` finds it
        for the family's later access tokens.

        ``resources`` (RFC 8707) are those granted: the refresh token remembers them with
        ``scope``. The access token is for ``access_resources`` with ``access_scope``
        when a token request narrowed them (RFC 8707 §2.2), else for the same.

        DPoP (RFC 9449): the access token is bound to ``jkt`` (``cnf``), the refresh
        token's family to ``refresh_jkt`` (public clients only: oauth/dpop_binding.py).
        """
        family_id = str(uuid.uuid4())
        ref = self.access.new_ref()
        now = self._now()
        refresh_token = None
        if with_refresh:
            refresh_token, token_hash = new_refresh_token()
            grant = Grant(
                user_id, client_id, scope, family_id, auth_time, session_sid, resources, refresh_jkt
            )
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
        issued_scope = scope if access_scope is None else access_scope
        access_token = self.access.issue(
            subject=user_id,
            client_id=client_id,
            scope=issued_scope,
            session_id=family_id,
            ref=ref,
            userinfo_claims=userinfo_claims,
            resources=resources if access_resources is None else access_resources,
            jkt=jkt,
        )
        return self._body(access_token, issued_scope, refresh_token, jkt), family_id, ref

    def issue_for_client(
        self,
        *,
        client_id: str,
        scope: str,
        resources: tuple[str, ...] = (),
        jkt: str | None = None,
    ) -> dict[str, Any]:
        """client_credentials: an access token whose subject is the client; no refresh."""
        token = self.access.issue(
            subject=client_id, client_id=client_id, scope=scope, resources=resources, jkt=jkt
        )
        return self._body(token, scope, None, jkt)

    async def refresh(
        self,
        refresh_token: str,
        *,
        client_id: str | None,
        scope: frozenset[str] | None,
        scope_limit: frozenset[str] | None = None,
        resources: tuple[str, ...] | None = None,
        jkt: str | None = None,
    ) -> tuple[dict[str, Any], Grant]:
        """Rotate ``refresh_token`` (RFC 6749 §6); return the new pair and its grant.

        The access token is for ``resources`` (RFC 8707: the caller has checked they are
        among the family's), or for the family's own resources when None. ``jkt`` is the
        request's DPoP proof key: the new access token is bound to it, and a family
        bound to a key (RFC 9449 §5) is only refreshed with that key.

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
            jkt,
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
            resources=grant.resources if resources is None else resources,
            jkt=jkt,
        )
        body = self._body(access_token, scope_text, new_token, jkt)
        return body, replace(grant, scope=scope_text)

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

    async def verify_access(
        self,
        token: str,
        *,
        any_audience: bool = False,
        dpop_jkt: str | None = None,
        any_sender: bool = False,
    ) -> AccessClaims:
        """A valid, unrevoked access token's claims, or InvalidToken (``any_audience``:
        also tokens issued for a resource rather than for this server, RFC 8707).

        DPoP (RFC 9449 §7): ``dpop_jkt`` is the key of the request's verified proof
        (the ``DPoP`` scheme), None for a bearer presentation. A token bound to a key
        (``cnf.jkt``) is accepted only with a proof of that key, and a token presented
        with a proof must be bound to its key. ``any_sender`` skips that, for callers
        that describe tokens rather than use them (introspection).
        """
        claims = await self.access.verify_fresh(token, any_audience=any_audience)
        if not any_sender and claims.jkt != dpop_jkt:
            raise WrongSender(
                "The access token is DPoP-bound: present it with the DPoP scheme and a proof"
                " made with its key."
                if dpop_jkt is None
                else "The access token is not bound to the key of this DPoP proof."
            )
        if await self.revocations.is_revoked(claims.jti, claims.expires_at):
            raise InvalidToken("The access token has been revoked.")
        return claims


def _check_token_text(token: str) -> None:
    if not token or len(token) > MAX_REFRESH_TOKEN_LENGTH:
        raise InvalidRequest("refresh_token is missing or too long.")
