"""Admin API for signing keys: ``GET /api/v1/admin/keys`` and
``POST /api/v1/admin/keys/rotate``.

The routes sit on the admin blueprint (web/admin.py), so its guard applies to them
unchanged: the network check, then the bearer credential. The rules live in
tokens/keys.py; this module only adapts HTTP to them.
"""

from __future__ import annotations

import logging

from quart import Response, g, request

from authly.tokens.keys import ALGORITHM
from authly.users.admin_auth import AdminPrincipal
from authly.web.admin import bp
from authly.web.context import services
from authly.web.parsing import optional_string_field, read_json_object
from authly.web.render import NO_STORE, json_response

log = logging.getLogger("authly.admin")


@bp.get("/keys")
async def list_keys() -> Response:
    keys = services().keys
    await keys.reload()  # show rotations done on other instances too
    return json_response({"keys": [i.public() for i in keys.infos()]}, headers=NO_STORE)


@bp.post("/keys/rotate")
async def rotate_key() -> Response:
    """Body ``{"alg": "RS256" | "ES256" | "EdDSA"}`` (default RS256; may be empty)."""
    body = await read_json_object() if request.mimetype or request.content_length else {}
    alg = optional_string_field(body, "alg", 16) or ALGORITHM
    s = services()
    info = await s.keys.rotate(alg)
    await s.jwks.invalidate()
    principal: AdminPrincipal = g.admin
    log.info(
        "admin %s (%s) rotated the %s signing key: %s is current",
        principal.user.username,
        principal.user.id,
        alg,
        info.kid,
    )
    return json_response(info.public(), 201, NO_STORE)
