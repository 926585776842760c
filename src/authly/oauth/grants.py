"""The token endpoint (RFC 6749 §3.2, OAuth 2.1 §3.2): client authentication, then one
grant per ``grant_type``.

- ``authorization_code`` (§4.1.3 + RFC 7636): the code is single use, bound to the
  client, the redirect URI and the PKCE verifier; a replay revokes everything the code
  issued (RFC 9700 §4.5).
- ``client_credentials`` (§4.4): confidential clients only; no refresh token.
- ``refresh_token`` (§6): rotation with reuse detection, per client.
- ``password`` (§4.3): only for clients registered with it (OAuth 2.1 drops it; the
  built-in first-party client ``authly`` keeps it for the JSON login).
- ``urn:ietf:params:oauth:grant-type:device_code`` (RFC 8628 §3.4): oauth/device_token.py.

``handle_token_request`` returns the §5.1 body or raises an OAuthError. One table,
``GRANTS``, names the grant types: it drives dispatch, client validation
(oauth/registration.py), the admin CLI's choices and the metadata document. Each
handler runs after the dispatcher has authenticated the client and checked that the
client may use the grant.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from authly.backends.protocols import RateLimiter
from authly.errors import (
    InvalidGrant,
    InvalidRequest,
    RateLimitExceeded,
    UnauthorizedClient,
    UnsupportedGrantType,
)
from authly.oauth import dpop_binding, pkce, resource_grants
from authly.oauth.authorization import check_code_text, hash_code
from authly.oauth.client_auth import ClientAuthenticator
from authly.oauth.device import GRANT_TYPE as DEVICE_CODE
from authly.oauth.device import DeviceGrants
from authly.oauth.device_token import device_code_grant
from authly.oauth.dpop_binding import DPoPRequest
from authly.oauth.resources import check_requested
from authly.oauth.scopes import format_scope, parse_scope, resolve_scope
from authly.oauth.user_grant import id_token, is_openid, issue_for_user
from authly.oidc.claims import release
from authly.oidc.id_tokens import IdTokens, SignIn
from authly.store import clients as client_repo
from authly.store import codes as code_repo
from authly.store import scopes as scope_repo
from authly.store.clients import ClientRow
from authly.store.codes import RedeemStatus
from authly.store.db import Database
from authly.tokens.service import TokenService
from authly.users.login import MAX_PASSWORD, MAX_USERNAME, LoginService
from authly.users.profiles import UserProfiles
from authly.users.roles import ADMIN_SCOPE

# The built-in first-party client (seeded by migration 2): public, password + refresh.
FIRST_PARTY_CLIENT_ID = "authly"
DEFAULT_SCOPE = frozenset({"profile", "email"})
Body = dict[str, Any]

# What the JSON login uses if an administrator has deleted the seeded ``authly`` client.
FIRST_PARTY_CLIENT = ClientRow(
    client_id=FIRST_PARTY_CLIENT_ID,
    name="Authly first-party login",
    secret_hash=None,
    auth_method="none",
    redirect_uris=(),
    grant_types=("password", "refresh_token"),
    scopes=("profile", "email", "offline_access", ADMIN_SCOPE),
    first_party=True,
    created_at=0.0,
    updated_at=0.0,
)


async def first_party_client(db: Database) -> ClientRow:
    return await db.run(client_repo.get, FIRST_PARTY_CLIENT_ID) or FIRST_PARTY_CLIENT


@dataclass(frozen=True)
class TokenLimits:
    """Token-endpoint request budget per client and per client IP."""

    max_requests: int
    window_seconds: float


@dataclass(frozen=True)
class TokenContext:
    db: Database
    login: LoginService
    tokens: TokenService
    limiter: RateLimiter
    limits: TokenLimits
    client_ip: str
    id_tokens: IdTokens
    profiles: UserProfiles
    authorization: str | None = None
    devices: DeviceGrants | None = None  # pending device grants (RFC 8628)
    client_auth: ClientAuthenticator | None = None  # None: client assertions refused
    resources: tuple[str, ...] = ()  # the request's resource values (RFC 8707)
    dpop: DPoPRequest | None = None  # the request's DPoP proof, unchecked (RFC 9449)
    dpop_jkt: str | None = None  # its key once checked (oauth/dpop_binding.py)


def require(params: Mapping[str, str], name: str, max_length: int) -> str:
    value = params.get(name)
    if value is None or value == "":
        raise InvalidRequest(f"Missing parameter: {name}.")
    if len(value) > max_length:
        raise InvalidRequest(f"Parameter {name} is longer than {max_length} characters.")
    return value


async def authenticate_client(
    auth: Database | ClientAuthenticator,
    authorization: str | None,
    params: Mapping[str, str],
    *,
    default_client: str | None = None,
    endpoint: str | None = None,
) -> ClientRow:
    """The client the request proves it is (RFC 6749 §2.3, RFC 7523 §2.2);
    InvalidClient (401) if not. Given the bare store instead of the app's
    ClientAuthenticator, client assertions are refused (oauth/client_auth.py)."""
    if not isinstance(auth, ClientAuthenticator):
        auth = ClientAuthenticator(auth)
    return await auth.authenticate(
        authorization, params, default_client=default_client, endpoint=endpoint
    )


async def limit(limiter: RateLimiter, limits: TokenLimits, key: str) -> None:
    decision = await limiter.check_rate_limit(key, limits.max_requests, limits.window_seconds)
    if not decision.allowed:
        raise RateLimitExceeded(decision.retry_after)


async def limit_ip(ctx: TokenContext) -> None:
    """Every request from an address counts, before client authentication, so failed
    authentications are limited too."""
    await limit(ctx.limiter, ctx.limits, f"token:ip:{ctx.client_ip}")


async def limit_client(ctx: TokenContext, client: ClientRow) -> None:
    """Per-client budget for clients that proved who they are. A public client's id is
    no secret: counting it would let one address exhaust every user's budget, so public
    clients are limited per address only."""
    if client.is_confidential:
        await limit(ctx.limiter, ctx.limits, f"token:client:{client.client_id}")


def _allow(client: ClientRow, grant_type: str) -> None:
    if grant_type not in client.grant_types:
        raise UnauthorizedClient(f"This client may not use the {grant_type} grant.")


async def password_grant(
    ctx: TokenContext, client: ClientRow, username: str, password: str, scope_text: str | None
) -> dict[str, Any]:
    _allow(client, "password")
    requested = parse_scope(scope_text)
    user = await ctx.login.authenticate(username, password, ctx.client_ip)
    allowed = frozenset(client.scopes)
    if not user.is_admin:
        allowed -= {ADMIN_SCOPE}
    scope = resolve_scope(requested, allowed, DEFAULT_SCOPE & allowed)
    resources, scope = await resource_grants.new_grant(
        ctx.db, ctx.resources, scope, explicit=requested is not None
    )
    body, _, _ = await ctx.tokens.issue(
        user_id=user.id,
        client_id=client.client_id,
        scope=format_scope(scope),
        client_ip=ctx.client_ip,
        with_refresh="refresh_token" in client.grant_types,
        resources=resources,
        **dpop_binding.token_keys(client, ctx.dpop_jkt),
    )
    return body


async def authorization_code_grant(
    ctx: TokenContext, client: ClientRow, params: Mapping[str, str]
) -> dict[str, Any]:
    code = check_code_text(params.get("code"))
    check_requested(ctx.resources)  # malformed: refused before the code is spent
    code_hash = hash_code(code)
    redeemed = await ctx.db.run(code_repo.redeem, code_hash, time.time())
    if redeemed.status is RedeemStatus.REPLAYED:
        # Someone has the code twice: revoke what its first use issued (RFC 9700 §4.5).
        # If that use has not recorded its tokens yet, it sees the replay mark when it
        # does and revokes them itself (store/codes.py).
        issued = (redeemed.family_id, redeemed.access_jti, redeemed.access_expires_at)
        await _revoke_issued(ctx, *issued)
        if redeemed.family_id or redeemed.access_jti:
            raise InvalidGrant("The authorization code was already used; its tokens are revoked.")
        raise InvalidGrant("The authorization code was already used.")
    if redeemed.status is not RedeemStatus.OK or redeemed.grant is None:
        raise InvalidGrant("The authorization code is invalid or expired.")
    grant = redeemed.grant
    if grant.client_id != client.client_id:
        raise InvalidGrant("The authorization code was issued to another client.")
    if (params.get("redirect_uri") or "") != grant.redirect_uri:
        raise InvalidGrant("redirect_uri does not match the authorization request.")
    pkce.verify(params.get("code_verifier"), grant.code_challenge)
    dpop_binding.check_code_key(grant.dpop_jkt, ctx.dpop_jkt)
    body, family_id, ref = await issue_for_user(
        ctx,
        client,
        approved="code",
        user_id=grant.user_id,
        scope=grant.scope,
        resources=grant.resources,
        auth_time=grant.auth_time,
        session_sid=grant.session_sid,
        # Read by userinfo from the access token: the claims the claims parameter
        # asked for there (Core §5.5); refreshed access tokens carry them too.
        userinfo_claims=grant.claims_userinfo,
    )
    family = family_id if "refresh_token" in body else None
    replayed = await ctx.db.run(code_repo.record_issue, code_hash, family, ref.jti, ref.expires_at)
    if replayed:
        await _revoke_issued(ctx, family, ref.jti, ref.expires_at)
        raise InvalidGrant("The authorization code was already used; its tokens are revoked.")
    if is_openid(grant.scope):
        sign_in = SignIn(grant.user_id, grant.auth_time, grant.session_sid)
        extra = await _requested_claims(ctx, grant.user_id, grant.claims_id_token)
        body["id_token"] = id_token(ctx, client, sign_in, body, grant.nonce, extra)
    return body


async def _requested_claims(ctx: TokenContext, user_id: str, names: str) -> dict[str, Any]:
    """The standard claims the claims parameter asked for in the ID token, those the
    user has (Core §5.5; the scope's claims go to userinfo, §5.4)."""
    if not names:
        return {}
    user_claims = await ctx.profiles.claims(user_id)
    if user_claims is None:
        return {}
    released = release(user_claims, (), names.split(" "))
    released.pop("sub")
    return released


async def _revoke_issued(
    ctx: TokenContext, family_id: str | None, jti: str | None, expires_at: float | None
) -> None:
    if family_id:
        await ctx.tokens.revoke_family(family_id)
    if jti and expires_at:
        await ctx.tokens.revocations.revoke([(jti, expires_at)])


async def client_credentials_grant(
    ctx: TokenContext, client: ClientRow, scope_text: str | None
) -> dict[str, Any]:
    requested = parse_scope(scope_text)
    allowed = frozenset(client.scopes) - {ADMIN_SCOPE, "offline_access"}
    default: frozenset[str] = frozenset()
    if requested is None:
        # The registry's default scopes, as for the other grants (possibly none).
        registry = await ctx.db.run(scope_repo.list_all)
        default = frozenset(s.name for s in registry if s.is_default) & allowed
    scope = resolve_scope(requested, allowed, default)
    resources, scope = await resource_grants.new_grant(
        ctx.db, ctx.resources, scope, explicit=requested is not None
    )
    return ctx.tokens.issue_for_client(
        client_id=client.client_id, scope=format_scope(scope), resources=resources, jkt=ctx.dpop_jkt
    )


async def _password(ctx: TokenContext, client: ClientRow, params: Mapping[str, str]) -> Body:
    return await password_grant(
        ctx,
        client,
        require(params, "username", MAX_USERNAME),
        require(params, "password", MAX_PASSWORD),
        params.get("scope"),
    )


async def _refresh(ctx: TokenContext, client: ClientRow, params: Mapping[str, str]) -> Body:
    token = require(params, "refresh_token", 512)
    scope = parse_scope(params.get("scope"))
    # RFC 8707 §2.2: resource and scope checked against the family before rotating.
    limits = await resource_grants.refresh_limits(
        ctx.db, token, client.client_id, ctx.resources, scope, frozenset(client.scopes)
    )
    body, grant = await ctx.tokens.refresh(
        token,
        client_id=client.client_id,
        scope=scope,
        scope_limit=limits.scope_limit,
        resources=limits.resources,
        jkt=ctx.dpop_jkt,
    )
    if is_openid(grant.scope):
        # A new ID token about the same sign-in, without nonce (Core §12.2).
        sign_in = SignIn(grant.user_id, grant.auth_time, grant.session_sid)
        body["id_token"] = id_token(ctx, client, sign_in, body, None)
    return body


async def _client_credentials(
    ctx: TokenContext, client: ClientRow, params: Mapping[str, str]
) -> Body:
    return await client_credentials_grant(ctx, client, params.get("scope"))


@dataclass(frozen=True)
class GrantType:
    """One grant type: how the token endpoint runs it, and who may register it.

    This table drives dispatch (``handle_token_request``), client validation
    (oauth/registration.py), the admin CLI's choices and the RFC 8414 metadata.
    """

    name: str
    run: Callable[[TokenContext, ClientRow, Mapping[str, str]], Awaitable[Body]]
    confidential_only: bool = False  # needs a client that can keep a secret
    first_party_only: bool = False  # hands the user's password to the client
    issues_refresh: bool = False  # a grant a refresh_token grant can follow


GRANTS: dict[str, GrantType] = {
    g.name: g
    for g in (
        GrantType("authorization_code", authorization_code_grant, issues_refresh=True),
        GrantType("client_credentials", _client_credentials, confidential_only=True),
        GrantType("refresh_token", _refresh),
        GrantType("password", _password, first_party_only=True, issues_refresh=True),
        GrantType(DEVICE_CODE, device_code_grant, issues_refresh=True),
    )
}


async def handle_token_request(ctx: TokenContext, params: Mapping[str, str]) -> Body:
    grant_type = require(params, "grant_type", 64)
    grant = GRANTS.get(grant_type)
    if grant is None:
        raise UnsupportedGrantType(f"grant_type {grant_type[:64]!r} is not supported.")
    await limit_ip(ctx)
    if ctx.dpop is not None:  # RFC 9449 §4.3, before client authentication
        ctx = replace(ctx, dpop_jkt=await dpop_binding.proof_key(ctx.dpop))
    # Requests that name no client at all are the built-in first-party client's.
    client = await authenticate_client(
        ctx.client_auth or ctx.db, ctx.authorization, params, default_client=FIRST_PARTY_CLIENT_ID
    )
    await limit_client(ctx, client)
    if grant.confidential_only and not client.is_confidential:
        raise UnauthorizedClient(f"{grant.name} is for confidential clients only.")
    _allow(client, grant.name)
    dpop_binding.require_proof(client, ctx.dpop_jkt)
    return await grant.run(ctx, client, params)
