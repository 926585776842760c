"""`/api/v1/users/me`: the profile of the bearer of an access token."""

from __future__ import annotations

from quart import Blueprint, Response, request

from authly.oauth.errors import InvalidToken
from authly.web.context import services
from authly.web.render import NO_STORE, json_response

bp = Blueprint("users", __name__, url_prefix="/api/v1/users")


def bearer_token() -> str:
    """The token from ``Authorization: Bearer <token>`` (RFC 6750 §2.1)."""
    header = request.headers.get("Authorization", "")
    if not header:
        raise InvalidToken(missing=True)
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidToken("The Authorization header must be 'Bearer <token>'.")
    return token.strip()


@bp.get("/me")
async def me() -> Response:
    s = services()
    claims = await s.tokens.verify_access(bearer_token())
    profile = await s.profiles.get(claims.subject)
    if profile is None:
        raise InvalidToken("The account behind this token no longer exists or is disabled.")
    profile["scope"] = " ".join(sorted(claims.scope))
    return json_response(profile, headers=NO_STORE)
