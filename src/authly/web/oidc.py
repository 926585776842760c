"""Well-known documents: the JWK Set, OAuth server metadata (RFC 8414) and OpenID
Provider metadata (OpenID Connect Discovery 1.0)."""

from __future__ import annotations

from quart import Blueprint, Response

from authly.web.context import services
from authly.web.userinfo import userinfo

bp = Blueprint("oidc", __name__)
bp.add_url_rule("/oidc/userinfo", view_func=userinfo, methods=["GET", "POST"])


def _document(text: str, max_age: int) -> Response:
    """A public document clients may cache for ``max_age``: its AUTHLY_CACHE_TTL_* (the
    longest Authly itself serves it from its cache)."""
    return Response(
        text,
        status=200,
        content_type="application/json",
        headers={"Cache-Control": f"public, max-age={max_age}"},
    )


@bp.get("/.well-known/jwks.json")
async def jwks() -> Response:
    """The published keys; clients may cache them as long as Authly's cache keeps them."""
    document = services().jwks
    return _document(await document.json(), int(document.ttl))


@bp.get("/.well-known/oauth-authorization-server")
async def oauth_metadata() -> Response:
    """RFC 8414 metadata: issuer from configuration, never from request headers."""
    document = services().metadata
    return _document(await document.json(), int(document.ttl))


@bp.get("/.well-known/openid-configuration")
async def openid_configuration() -> Response:
    """OpenID Provider metadata, consistent with the RFC 8414 document."""
    document = services().metadata
    return _document(await document.openid_json(), int(document.openid_ttl))
