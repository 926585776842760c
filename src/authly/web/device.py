"""The device authorization endpoint (RFC 8628 §3.1):

    POST /api/v1/oauth/device_authorization     -> device_code, user_code, verification_uri...

Errors are RFC 6749 §5.2 JSON, as on the token endpoint (the app's error handlers). The
user answers on the verification page, web/device_pages.py; the device polls the token
endpoint with ``grant_type=urn:ietf:params:oauth:grant-type:device_code``.
"""

from __future__ import annotations

from dataclasses import replace

from quart import Blueprint, Response

from authly.oauth.device_requests import device_authorization
from authly.web.context import services, token_context
from authly.web.render import NO_STORE, json_response
from authly.web.resource_forms import read_form_with_resources

bp = Blueprint("device", __name__, url_prefix="/api/v1/oauth")

VERIFICATION_PATH = "/device"


@bp.post("/device_authorization")
async def authorize_device() -> Response:
    params, resources = await read_form_with_resources()  # resource may repeat (RFC 8707)
    s = services()
    ctx = replace(token_context(s), resources=resources)
    body = await device_authorization(
        ctx, params, verification_uri=s.settings.issuer + VERIFICATION_PATH
    )
    return json_response(body, headers=NO_STORE)
