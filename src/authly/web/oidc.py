"""Well-known documents: the JWK Set for now (discovery comes with the OIDC issue)."""

from __future__ import annotations

from quart import Blueprint, Response

from authly.web.context import services

bp = Blueprint("oidc", __name__)


@bp.get("/.well-known/jwks.json")
async def jwks() -> Response:
    document = await services().jwks.json()
    return Response(
        document,
        status=200,
        content_type="application/json",
        headers={"Cache-Control": "public, max-age=300"},
    )
