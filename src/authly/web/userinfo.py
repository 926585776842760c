"""`GET|POST /oidc/userinfo` (OIDC Core §5.3), routed by the ``oidc`` blueprint.

The access token comes in the Authorization header (RFC 6750 §2.1) or, on POST, as
``access_token`` in a form-encoded body (§2.2); both at once is ``invalid_request``.
Errors carry ``WWW-Authenticate`` (§3.1); answers are never cached.
"""

from __future__ import annotations

from quart import Response, request
from werkzeug.datastructures import Headers

from authly.errors import InvalidToken
from authly.oidc.userinfo import userinfo_json
from authly.web.context import bearer_token, services
from authly.web.errors import InvalidBearerRequest
from authly.web.parsing import read_form
from authly.web.render import NO_STORE

FORM = "application/x-www-form-urlencoded"
HEADERS = (("Content-Type", "application/json"), *NO_STORE.items())


async def _access_token() -> str:
    in_body: str | None = None
    if request.method == "POST" and (request.mimetype or "").lower() == FORM:
        in_body = (await read_form()).get("access_token")
    if in_body is None:
        return bearer_token()
    if request.headers.get("Authorization"):
        raise InvalidBearerRequest("The access token must be sent in one way only.")
    if not in_body:
        raise InvalidToken("The access_token parameter is empty.")
    return in_body


async def userinfo() -> Response:
    s = services()
    body = await userinfo_json(s.tokens, s.profiles, await _access_token())
    # The document is already encoded (oidc/userinfo.py): no jsonify round.
    return Response(body, status=200, headers=Headers(HEADERS))
