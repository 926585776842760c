"""`POST /api/v1/auth/change-password`: a user changes their own password.

The bearer access token says who; the current password is checked under the login
rate limits (per address and per username). On success every other login session of
the user ends: refresh-token families other than the token's ``sid``, and browser and
admin sessions.
"""

from __future__ import annotations

from quart import Blueprint, Response

from authly.errors import InvalidToken
from authly.users.login import MAX_PASSWORD
from authly.web.context import bearer_token, client_ip, services
from authly.web.parsing import read_json_object, string_field
from authly.web.render import NO_STORE, json_response

bp = Blueprint("account", __name__, url_prefix="/api/v1/auth")


@bp.post("/change-password")
async def change_password() -> Response:
    s = services()
    claims = await s.tokens.verify_access(bearer_token())
    body = await read_json_object()
    current = string_field(body, "current_password", MAX_PASSWORD)
    new = string_field(body, "new_password", MAX_PASSWORD)
    if not await s.profiles.is_active(claims.subject):
        raise InvalidToken("The account behind this token no longer exists or is disabled.")
    await s.accounts.change_password(
        claims.subject, current, new, client_ip=client_ip(), keep_session=claims.session_id
    )
    return json_response({"status": "password_changed"}, headers=NO_STORE)
