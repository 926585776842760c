"""`GET|POST /oidc/userinfo` (OIDC Core §5.3), routed by the ``oidc`` blueprint.

The access token comes in the Authorization header (RFC 6750 §2.1) or, on POST, as
``access_token`` in a form-encoded body (§2.2); both at once is ``invalid_request``.
A DPoP-bound token comes as ``Authorization: DPoP <token>`` with a ``DPoP`` proof
(RFC 9449 §7), never as a bearer token (web/dpop.py).
Errors carry ``WWW-Authenticate`` (§3.1); answers are never cached.
"""

from __future__ import annotations

from quart import Response, request
from werkzeug.datastructures import Headers

from authly.errors import InvalidToken, OAuthError
from authly.oidc.userinfo import userinfo_json
from authly.web import dpop
from authly.web.context import bearer_token, services
from authly.web.errors import InvalidBearerRequest
from authly.web.parsing import read_form
from authly.web.render import NO_STORE

FORM = "application/x-www-form-urlencoded"
HEADERS = (("Content-Type", "application/json"), *NO_STORE.items())


async def _access_token() -> tuple[str, bool]:
    """The access token, and whether it came with the DPoP scheme (RFC 9449 §7.1)."""
    in_body: str | None = None
    if request.method == "POST" and (request.mimetype or "").lower() == FORM:
        in_body = (await read_form()).get("access_token")
    if in_body is None:
        token = dpop.scheme_token()
        return (bearer_token(), False) if token is None else (token, True)
    if request.headers.get("Authorization"):
        raise InvalidBearerRequest("The access token must be sent in one way only.")
    if not in_body:
        raise InvalidToken("The access_token parameter is empty.")
    return in_body, False


async def userinfo() -> Response:
    s = services()
    with_dpop = dpop.uses_scheme()
    try:
        token, with_dpop = await _access_token()
        jkt = await dpop.resource_proof(s, token) if with_dpop else None
        body = await userinfo_json(s.tokens, s.profiles, token, dpop_jkt=jkt)
    except OAuthError as exc:  # DPoP requests get DPoP challenges (web/dpop.py)
        raise await dpop.resource_error(s, exc, dpop=with_dpop) from None
    # The document is already encoded (oidc/userinfo.py): no jsonify round.
    nonce = (await dpop.nonce_headers(s)).items() if with_dpop else ()
    return Response(body, status=200, headers=Headers([*HEADERS, *nonce]))
