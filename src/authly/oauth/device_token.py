"""The device code grant at the token endpoint (RFC 8628 §3.4, §3.5).

The dispatcher (oauth/grants.py) has authenticated the client and checked that it is
registered for the grant. A poll answers ``authorization_pending``, ``slow_down``,
``access_denied``, ``expired_token`` or ``invalid_grant`` (oauth/device.py decides
which); once the user has approved, exactly one poll takes the grant and gets the
tokens, as for an authorization code (oauth/user_grant.py): an access token, a refresh
token if the client is registered for the ``refresh_token`` grant, and an ID token when
the scope has ``openid``.

The tokens are not tied to the browser session the user approved in (no ``sid``):
signing out of that browser does not sign the device out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from authly.errors import InvalidRequest, UnsupportedGrantType
from authly.oauth.device import MAX_DEVICE_CODE
from authly.oauth.resources import check_requested
from authly.oauth.user_grant import id_token, is_openid, issue_for_user
from authly.oidc.id_tokens import SignIn
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
    body, _, _ = await issue_for_user(
        ctx,
        client,
        approved="device",
        user_id=grant.user_id,
        scope=grant.scope,
        resources=grant.resources,
        auth_time=grant.auth_time,
    )
    if is_openid(grant.scope):
        sign_in = SignIn(grant.user_id, grant.auth_time, None)
        body["id_token"] = id_token(ctx, client, sign_in, body, None)
    return body
