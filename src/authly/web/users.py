"""`/api/v1/users/me`: the profile of the bearer of an access token."""

from __future__ import annotations

from quart import Blueprint, Response

from authly.errors import InvalidToken
from authly.web.context import bearer_token, services
from authly.web.render import NO_STORE, json_response

bp = Blueprint("users", __name__, url_prefix="/api/v1/users")


@bp.get("/me")
async def me() -> Response:
    s = services()
    claims = await s.tokens.verify_access(bearer_token())
    profile = await s.profiles.get(claims.subject)
    if profile is None:
        raise InvalidToken("The account behind this token no longer exists or is disabled.")
    profile["scope"] = " ".join(sorted(claims.scope))
    return json_response(profile, headers=NO_STORE)
