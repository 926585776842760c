"""The device code grant at the token endpoint (RFC 8628 §3.4, §3.5).

The dispatcher (oauth/grants.py) has authenticated the client and checked that it is
registered for the grant. A poll answers ``authorization_pending``, ``slow_down``,
``access_denied``, ``expired_token`` or ``invalid_grant`` (oauth/device.py decides
which); once the user has approved, exactly one poll takes the grant and gets the
tokens: an access token, a refresh token if the client is registered for the
``refresh_token`` grant, and an ID token when the scope has ``openid``.

The tokens are not tied to the browser session the user approved in (no ``sid``):
signing out of that browser does not sign the device out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from authly.errors import InvalidGrant, InvalidRequest, UnsupportedGrantType
from authly.oauth import dpop_binding, resource_grants
from authly.oauth.device import MAX_DEVICE_CODE
from authly.oauth.resources import check_requested
from authly.oidc.id_tokens import SignIn
from authly.store import users as user_repo
from authly.store.clients import ClientRow

if TYPE_CHECKING:
    from authly.oauth.grants import TokenContext


async def device_code_grant(
    ctx: TokenContext, client: ClientRow, params: Mapping[str, str]
) -> dict[str, Any]:
    device_code = params.get("device_code")
    if not device_code:
        raise InvalidRequest("Missing parameter: device_code.")
    if len(device_code) > MAX_DEVICE_CODE:
        raise InvalidRequest(f"Parameter device_code is longer than {MAX_DEVICE_CODE} characters.")
    if ctx.devices is None:
        raise UnsupportedGrantType("The device code grant is not available here.")
    check_requested(ctx.resources)  # malformed: refused before a poll can take the grant
    grant = await ctx.devices.poll(device_code, client.client_id)
    user = await ctx.db.run(user_repo.get_by_id, grant.user_id)
    if user is None or not user.is_active:
        raise InvalidGrant("The account that approved this device is disabled.")
    access = await resource_grants.redeem(ctx.db, grant.resources, ctx.resources, grant.scope)
    body, _, _ = await ctx.tokens.issue(
        user_id=user.id,
        client_id=client.client_id,
        scope=grant.scope,
        client_ip=ctx.client_ip,
        with_refresh="refresh_token" in client.grant_types,
        auth_time=grant.auth_time,
        resources=grant.resources,  # RFC 8707: the refresh token keeps them all
        access_scope=access.scope,
        access_resources=access.resources,
        **dpop_binding.token_keys(client, ctx.dpop_jkt),
    )
    if "openid" in grant.scope.split(" "):
        body["id_token"] = ctx.id_tokens.issue(
            client_id=client.client_id,
            alg=client.id_token_signed_response_alg,
            sign_in=SignIn(user.id, grant.auth_time, None),
            access_token=body["access_token"],
        )
    return body
