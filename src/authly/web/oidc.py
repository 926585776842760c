"""Well-known documents: the JWK Set and OAuth server metadata (RFC 8414)."""

from __future__ import annotations

from quart import Blueprint, Response

from authly.web.context import services

bp = Blueprint("oidc", __name__)


def _document(text: str) -> Response:
    return Response(
        text,
        status=200,
        content_type="application/json",
        headers={"Cache-Control": "public, max-age=300"},
    )


@bp.get("/.well-known/jwks.json")
async def jwks() -> Response:
    return _document(await services().jwks.json())


@bp.get("/.well-known/oauth-authorization-server")
async def oauth_metadata() -> Response:
    """RFC 8414 metadata: issuer from configuration, never from request headers."""
    return _document(await services().metadata.json())
