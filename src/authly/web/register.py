"""Dynamic client registration (RFC 7591) and client configuration (RFC 7592):

    POST   /api/v1/oauth/register               -> 201 client information response
    GET    /api/v1/oauth/register/<client_id>   -> 200 the same (without the secret)
    PUT    /api/v1/oauth/register/<client_id>   -> 200 after replacing the metadata
    DELETE /api/v1/oauth/register/<client_id>   -> 204

The rules live in oauth/dynamic_registration.py and oauth/client_metadata.py; this
module adapts HTTP to them. Every answer carries ``Cache-Control: no-store``: it holds
credentials. Errors are JSON (the app's error handlers): 404 while registration is
closed, 429 past the per-IP limit, 401 ``invalid_token`` with ``WWW-Authenticate`` for a
bad initial or registration access token, 400 ``invalid_redirect_uri`` /
``invalid_client_metadata`` for refused metadata.
"""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Response

from authly.oauth.client_metadata import metadata_of
from authly.oauth.dynamic_registration import TOKEN, DynamicRegistration, Registered
from authly.oauth.grants import TokenLimits
from authly.services import Services
from authly.web.context import bearer_token, client_ip, services
from authly.web.parsing import read_json_object
from authly.web.render import NO_STORE, json_response

PATH = "/api/v1/oauth/register"
bp = Blueprint("register", __name__, url_prefix=PATH)


def dynamic_registration(s: Services) -> DynamicRegistration:
    """Built per request from the settings and the store and rate-limit slots."""
    settings = s.settings
    return DynamicRegistration(
        s.db,
        s.rate_limit,
        mode=settings.registration,
        limits=TokenLimits(settings.registration_rate_limit, settings.registration_rate_window),
        management_limits=TokenLimits(settings.token_rate_limit, settings.token_rate_window),
    )


def client_information(s: Services, registered: Registered) -> dict[str, Any]:
    """RFC 7591 §3.2.1 / RFC 7592 §3: the metadata, the secret when it is shown, and the
    registration access token and client configuration URI."""
    metadata = metadata_of(registered.client)
    document: dict[str, Any] = {"client_id": metadata.pop("client_id")}
    if registered.client_secret is not None:
        document["client_secret"] = registered.client_secret
    document.update(metadata)
    document["registration_access_token"] = registered.registration_access_token
    document["registration_client_uri"] = client_uri(s, registered.client.client_id)
    return document


def client_uri(s: Services, client_id: str) -> str:
    return f"{s.settings.issuer}{PATH}/{client_id}"


@bp.post("")
async def register() -> Response:
    s = services()
    registration = dynamic_registration(s)
    ip = client_ip()
    await registration.admit(ip)
    initial_token = bearer_token() if registration.mode == TOKEN else None
    body = await read_json_object()
    registered = await registration.register(body, initial_token=initial_token, client_ip=ip)
    document = client_information(s, registered)
    headers = {**NO_STORE, "Location": document["registration_client_uri"]}
    return json_response(document, 201, headers)


@bp.get("/<client_id>")
async def read(client_id: str) -> Response:
    s = services()
    token = bearer_token()
    client = await dynamic_registration(s).read(client_id, token, client_ip=client_ip())
    document = client_information(s, Registered(client, None, token))
    return json_response(document, headers=NO_STORE)


@bp.put("/<client_id>")
async def replace(client_id: str) -> Response:
    s = services()
    token = bearer_token()
    body = await read_json_object()
    registered = await dynamic_registration(s).replace(
        client_id, token, body, client_ip=client_ip()
    )
    return json_response(client_information(s, registered), headers=NO_STORE)


@bp.delete("/<client_id>")
async def delete(client_id: str) -> Response:
    token = bearer_token()
    await dynamic_registration(services()).delete(client_id, token, client_ip=client_ip())
    return Response("", status=204, headers=NO_STORE)
