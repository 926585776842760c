"""The pushed authorization request endpoint (RFC 9126 §2):

    POST /api/v1/oauth/par      -> 201 {"request_uri": "urn:ietf:params:oauth:request_uri:...",
                                        "expires_in": 60}

Client authentication as at the token endpoint; the parameters are those of an
authorization request, checked as the authorization endpoint checks them; errors are
RFC 6749 §5.2 JSON (the app's error handlers), never a redirect. The authorization
endpoint (web/authorize.py) then takes ``client_id`` + ``request_uri`` (oauth/par.py).
"""

from __future__ import annotations

from quart import Blueprint, Response

from authly.oauth.par import PushedRequests, push
from authly.services import Services
from authly.web import dpop
from authly.web.context import services, token_context
from authly.web.render import NO_STORE, json_response
from authly.web.resource_forms import read_form_with_resources

bp = Blueprint("par", __name__, url_prefix="/api/v1/oauth")


def pushed_requests(s: Services) -> PushedRequests:
    """Pushed requests in the session slot, in a pool as large as the pending
    authorization requests' (AUTHLY_PENDING_REQUESTS_MAX)."""
    return PushedRequests(s.sessions, max_entries=s.settings.pending_requests_max)


@bp.post("/par")
async def pushed_authorization_request() -> Response:
    params, resources = await read_form_with_resources()
    s = services()
    await dpop.bind_pushed(s, params)  # a DPoP proof binds the request's code (RFC 9449 §10.1)
    body = await push(token_context(s), pushed_requests(s), params, resources)
    return json_response(body, status=201, headers={**NO_STORE, **await dpop.nonce_headers(s)})
