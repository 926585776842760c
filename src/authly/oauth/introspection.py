"""Token introspection (RFC 7662) and revocation (RFC 7009) for authenticated clients."""

from __future__ import annotations

import time
from typing import Any

from authly.errors import InvalidToken
from authly.store import refresh_tokens as refresh_repo
from authly.store.clients import ClientRow
from authly.store.db import Database
from authly.tokens.refresh import MAX_REFRESH_TOKEN_LENGTH, hash_refresh_token
from authly.tokens.service import TokenService
from authly.users.profiles import UserProfiles

HINTS = ("access_token", "refresh_token")
INACTIVE: dict[str, Any] = {"active": False}


def check_hint(hint: str | None) -> str | None:
    """A known hint, or None: an unknown hint is ignored and every type is searched
    (RFC 7009 §2.1, RFC 7662 §2.1)."""
    return hint if hint in HINTS else None


async def introspect(
    db: Database,
    tokens: TokenService,
    client: ClientRow,
    token: str,
    hint: str | None,
    *,
    profiles: UserProfiles,
) -> dict[str, Any]:
    """RFC 7662 §2.2: ``{"active": false}`` for anything unknown, expired, revoked or
    not this server's, or whose user is disabled or deleted; a refresh token is only
    described to the client it belongs to."""
    order = (
        ("refresh_token", "access_token")
        if hint == "refresh_token"
        else ("access_token", "refresh_token")
    )
    for kind in order:
        if kind == "access_token":
            try:
                # Tokens issued for a resource (RFC 8707) too: resource servers ask.
                claims = await tokens.verify_access(token, any_audience=True, any_sender=True)
            except InvalidToken:
                continue
            # A user's token (not a client_credentials one) dies with the account.
            if claims.subject != claims.client_id and not await profiles.is_active(claims.subject):
                return dict(INACTIVE)
            raw = claims.raw
            answer = {
                "active": True,
                "token_type": "Bearer" if claims.jkt is None else "DPoP",  # RFC 9449 §6.2
                "scope": raw.get("scope", ""),
                "client_id": claims.client_id,
                "sub": claims.subject,
                "exp": claims.expires_at,
                "iat": raw.get("iat"),
                "iss": raw.get("iss"),
                "aud": raw.get("aud"),
                "jti": claims.jti,
            }
            if claims.jkt is not None:
                answer["cnf"] = {"jkt": claims.jkt}
            return answer
        if len(token) > MAX_REFRESH_TOKEN_LENGTH:
            continue
        info = await db.run(refresh_repo.lookup, hash_refresh_token(token), time.time())
        if info is None or not info.active or info.grant.client_id != client.client_id:
            continue
        if not await profiles.is_active(info.grant.user_id):
            return dict(INACTIVE)
        return {
            "active": True,
            "token_type": "refresh_token",
            "scope": info.grant.scope,
            "client_id": info.grant.client_id,
            "sub": info.grant.user_id,
            "exp": int(info.expires_at),
        }
    return dict(INACTIVE)


async def revoke(tokens: TokenService, client: ClientRow, token: str, hint: str | None) -> None:
    """RFC 7009 §2: revoke if the token is this client's; silently do nothing otherwise."""
    # The hint only orders the search; every type is tried (RFC 7009 §2.1).
    order = (
        ("access_token", "refresh_token")
        if hint == "access_token"
        else ("refresh_token", "access_token")
    )
    for kind in order:
        if kind == "refresh_token":
            if len(token) <= MAX_REFRESH_TOKEN_LENGTH and await tokens.revoke(
                token, client_id=client.client_id
            ):
                return
            continue
        try:
            claims = await tokens.access.verify_fresh(token, any_audience=True)
        except InvalidToken:
            continue  # not a (live) access token of ours
        if claims.client_id == client.client_id:
            await tokens.revocations.revoke([(claims.jti, float(claims.expires_at))])
        return
