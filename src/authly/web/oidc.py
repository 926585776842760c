"""Well-known documents: the JWK Set for now (discovery comes with the OIDC issue)."""

from __future__ import annotations

from quart import Blueprint, Response

from authly.web.context import services
from authly.web.render import json_response

bp = Blueprint("oidc", __name__)


@bp.get("/.well-known/jwks.json")
async def jwks() -> Response:
    return json_response(services().keys.jwks(), headers={"Cache-Control": "public, max-age=300"})
