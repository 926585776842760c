"""Token endpoint grants (RFC 6749 §4.3 password, §6 refresh_token).

``handle_token_request`` takes the already-parsed form parameters and returns the
RFC 6749 §5.1 body, or raises an OAuthError. Later issues add authorization_code and
client_credentials here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from authly.oauth.errors import InvalidRequest, UnsupportedGrantType
from authly.oauth.scopes import format_scope, grantable_scopes, parse_scope, resolve_scope
from authly.tokens.service import TokenService
from authly.users.login import MAX_PASSWORD, MAX_USERNAME, LoginService

# Until client registration lands (OAuth issue), first-party callers that do not name
# a client are treated as this built-in client.
FIRST_PARTY_CLIENT_ID = "authly"
DEFAULT_SCOPE = frozenset({"profile", "email"})
_CLIENT_ID = re.compile(r"^[\x20-\x7e]{1,128}$")


@dataclass(frozen=True)
class TokenContext:
    login: LoginService
    tokens: TokenService
    client_ip: str


def require(params: Mapping[str, str], name: str, max_length: int) -> str:
    value = params.get(name)
    if value is None or value == "":
        raise InvalidRequest(f"Missing parameter: {name}.")
    if len(value) > max_length:
        raise InvalidRequest(f"Parameter {name} is longer than {max_length} characters.")
    return value


def client_id_of(params: Mapping[str, str]) -> str:
    client_id = params.get("client_id") or FIRST_PARTY_CLIENT_ID
    if not _CLIENT_ID.match(client_id):
        raise InvalidRequest("client_id must be 1 to 128 printable ASCII characters.")
    return client_id


async def password_grant(
    ctx: TokenContext, username: str, password: str, client_id: str, scope_text: str | None
) -> dict[str, Any]:
    requested = parse_scope(scope_text)
    user = await ctx.login.authenticate(username, password, ctx.client_ip)
    scope = resolve_scope(requested, grantable_scopes(DEFAULT_SCOPE, user.is_admin), DEFAULT_SCOPE)
    return await ctx.tokens.issue(
        user_id=user.id, client_id=client_id, scope=format_scope(scope), client_ip=ctx.client_ip
    )


async def handle_token_request(ctx: TokenContext, params: Mapping[str, str]) -> dict[str, Any]:
    grant_type = require(params, "grant_type", 64)
    if grant_type == "password":
        return await password_grant(
            ctx,
            require(params, "username", MAX_USERNAME),
            require(params, "password", MAX_PASSWORD),
            client_id_of(params),
            params.get("scope"),
        )
    if grant_type == "refresh_token":
        # A refresh token is bound to its client; no client_id means the first-party
        # client, so a token issued to another client is refused.
        return await ctx.tokens.refresh(
            require(params, "refresh_token", 512),
            client_id=client_id_of(params),
            scope=parse_scope(params.get("scope")),
        )
    raise UnsupportedGrantType(f"grant_type {grant_type[:64]!r} is not supported.")
