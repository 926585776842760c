"""Admin API for initial access tokens (RFC 7591 §3), behind the admin API's own checks
(network, then an admin credential: web/admin.py):

    GET    /api/v1/admin/initial-access-tokens          -> {"initial_access_tokens": [...]}
    POST   /api/v1/admin/initial-access-tokens          -> 201, with "token" (shown once)
           {"description": "...", "expires_in": seconds, "max_uses": n}  (all optional)
    DELETE /api/v1/admin/initial-access-tokens/<id>     -> 204 (revoked: deleted)

The rules live in oauth/initial_tokens.py; this module only adapts HTTP to them.
"""

from __future__ import annotations

import logging

from quart import Blueprint, Response, g, request

from authly.oauth.initial_tokens import InitialTokens
from authly.users.admin_auth import AdminPrincipal
from authly.web.admin import admin_guard
from authly.web.context import services
from authly.web.parsing import read_json_object
from authly.web.render import NO_STORE, json_response

PATH = "/api/v1/admin/initial-access-tokens"
bp = Blueprint("admin_initial_tokens", __name__, url_prefix=PATH)
bp.before_request(admin_guard)
log = logging.getLogger("authly.admin")


def _tokens() -> InitialTokens:
    return InitialTokens(services().db)


def _admin() -> AdminPrincipal:
    principal: AdminPrincipal = g.admin
    return principal


def _audit(action: str, target: str) -> None:
    who = _admin().user
    log.info("admin %s (%s) %s %s", who.username, who.id, action, target)


@bp.get("")
async def list_tokens() -> Response:
    found = await _tokens().list()
    return json_response({"initial_access_tokens": found}, headers=NO_STORE)


@bp.post("")
async def create_token() -> Response:
    body = await read_json_object() if request.mimetype or request.content_length else {}
    document, token = await _tokens().create(body, created_by=_admin().user.username)
    _audit("created initial access token", document["id"])
    document["token"] = token  # shown this once; only its hash is kept
    headers = {**NO_STORE, "Location": f"{PATH}/{document['id']}"}
    return json_response(document, 201, headers)


@bp.delete("/<token_id>")
async def revoke_token(token_id: str) -> Response:
    await _tokens().revoke(token_id)
    _audit("revoked initial access token", token_id)
    return Response("", status=204, headers=NO_STORE)
