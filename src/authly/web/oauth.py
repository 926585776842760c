"""OAuth 2.1 endpoints (`/api/v1/oauth/*`): token, revoke, introspect (the authorize
endpoint and its pages live in web/authorize.py)."""

from __future__ import annotations

from dataclasses import replace

from quart import Blueprint, Response, request

from authly.errors import InvalidClient
from authly.oauth import introspection
from authly.oauth.grants import (
    authenticate_client,
    handle_token_request,
    limit_ip,
    require,
)
from authly.web import dpop
from authly.web.context import services, token_context
from authly.web.parsing import read_form
from authly.web.render import NO_STORE, json_response
from authly.web.resource_forms import read_form_with_resources

bp = Blueprint("oauth", __name__, url_prefix="/api/v1/oauth")


@bp.post("/token")
async def token() -> Response:
    params, resources = await read_form_with_resources()  # resource may repeat (RFC 8707)
    s = services()
    ctx = replace(token_context(s), resources=resources, dpop=await dpop.token_request(s))
    body = await handle_token_request(ctx, params)
    return json_response(body, headers={**NO_STORE, **await dpop.nonce_headers(s)})


@bp.post("/revoke")
async def revoke() -> Response:
    """RFC 7009: 200 whether or not the token was known or this client's."""
    params = await read_form()
    s = services()
    await limit_ip(token_context(s))
    authorization = request.headers.get("Authorization")
    client = await authenticate_client(s.client_auth, authorization, params, endpoint="revoke")
    token = require(params, "token", 8192)
    hint = introspection.check_hint(params.get("token_type_hint"))
    await introspection.revoke(s.tokens, client, token, hint)
    return Response("", status=200, content_type="text/plain", headers=NO_STORE)


@bp.post("/introspect")
async def introspect() -> Response:
    """RFC 7662: confidential (authenticated) clients only."""
    params = await read_form()
    s = services()
    await limit_ip(token_context(s))
    authorization = request.headers.get("Authorization")
    client = await authenticate_client(s.client_auth, authorization, params, endpoint="introspect")
    if not client.is_confidential:
        raise InvalidClient("Only confidential clients may introspect tokens.")
    token = require(params, "token", 8192)
    hint = introspection.check_hint(params.get("token_type_hint"))
    body = await introspection.introspect(s.db, s.tokens, client, token, hint, profiles=s.profiles)
    return json_response(body, headers=NO_STORE)
