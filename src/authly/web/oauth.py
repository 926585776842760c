"""OAuth 2.1 endpoints (`/api/v1/oauth/*`); the token endpoint for now."""

from __future__ import annotations

from quart import Blueprint, Response

from authly.oauth.grants import TokenContext, handle_token_request
from authly.web.context import client_ip, services
from authly.web.parsing import read_form
from authly.web.render import NO_STORE, json_response

bp = Blueprint("oauth", __name__, url_prefix="/api/v1/oauth")


@bp.post("/token")
async def token() -> Response:
    params = await read_form()
    s = services()
    body = await handle_token_request(TokenContext(s.login, s.tokens, client_ip()), params)
    return json_response(body, headers=NO_STORE)
