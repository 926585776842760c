"""Tokens for a grant a user approved in the browser, redeemed by the client at the
token endpoint: the authorization code (oauth/grants.py) and the device code
(oauth/device_token.py).

Both check that the account that approved is still active, narrow the access token to
the resources the token request names (RFC 8707, oauth/resource_grants.py; the refresh
token keeps them all), bind the tokens to the client's DPoP key, and add an ID token
when the scope has ``openid``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from authly.errors import InvalidGrant
from authly.oauth import dpop_binding, resource_grants
from authly.oidc.id_tokens import SignIn
from authly.store import users as user_repo
from authly.store.clients import ClientRow
from authly.store.refresh_tokens import AccessRef

if TYPE_CHECKING:
    from authly.oauth.grants import TokenContext


async def issue_for_user(
    ctx: TokenContext,
    client: ClientRow,
    *,
    approved: str,
    user_id: str,
    scope: str,
    resources: tuple[str, ...],
    auth_time: float | None,
    session_sid: str | None = None,
    userinfo_claims: str = "",
) -> tuple[dict[str, Any], str, AccessRef]:
    """An access token (and a refresh token if the client is registered for the
    ``refresh_token`` grant) for the user who approved ``approved`` (what the error
    names: "code", "device"); InvalidGrant if that account is gone or disabled. Returns
    what TokenService.issue does: the body, the family id, the access token reference."""
    user = await ctx.db.run(user_repo.get_by_id, user_id)
    if user is None or not user.is_active:
        raise InvalidGrant(f"The account that approved this {approved} is disabled.")
    access = await resource_grants.redeem(ctx.db, resources, ctx.resources, scope)
    return await ctx.tokens.issue(
        user_id=user_id,
        client_id=client.client_id,
        scope=scope,
        resources=resources,
        access_scope=access.scope,
        access_resources=access.resources,
        client_ip=ctx.client_ip,
        with_refresh="refresh_token" in client.grant_types,
        auth_time=auth_time,
        session_sid=session_sid,
        userinfo_claims=userinfo_claims,
        **dpop_binding.token_keys(client, ctx.dpop_jkt),
    )


def is_openid(scope: str) -> bool:
    return "openid" in scope.split(" ")


def id_token(
    ctx: TokenContext,
    client: ClientRow,
    sign_in: SignIn,
    body: dict[str, Any],
    nonce: str | None,
    extra: dict[str, Any] | None = None,
) -> str:
    """An ID token for ``client`` about ``sign_in``, issued with the body's access token."""
    return ctx.id_tokens.issue(
        client_id=client.client_id,
        alg=client.id_token_signed_response_alg,
        sign_in=sign_in,
        access_token=body["access_token"],
        nonce=nonce,
        extra=extra,
    )
