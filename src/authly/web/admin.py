"""Admin API (`/api/v1/admin/*`): admin sessions, clients and scopes.

Every route first checks the caller's address against AUTHLY_ADMIN_ALLOWED_NETWORKS
(``client_ip()``: X-Forwarded-For counts only from AUTHLY_TRUSTED_PROXIES), then —
except the session login itself — the bearer credential: an admin session handle or an
access token with the ``admin`` scope (users/admin_auth.py). The rules for clients and
scopes live in oauth/registry.py; this module only adapts HTTP to them.
"""

from __future__ import annotations

import ipaddress
import logging

from quart import Blueprint, Response, g, request

from authly.errors import AccessDenied, InvalidGrant, InvalidRequest
from authly.oauth.registry import Registry
from authly.users.admin_auth import AdminAuth, AdminPrincipal
from authly.users.login import MAX_PASSWORD, MAX_USERNAME
from authly.web.context import bearer_token, client_ip, services
from authly.web.parsing import read_json_object, string_field
from authly.web.render import NO_STORE, json_response

bp = Blueprint("admin", __name__, url_prefix="/api/v1/admin")
log = logging.getLogger("authly.admin")

PREFIX = "/api/v1/admin"
# Reachable without a credential (after the network check): the session login.
_OPEN_ENDPOINTS = frozenset({"admin.create_session"})


def _auth() -> AdminAuth:
    return services().admin_auth


def _registry() -> Registry:
    return services().registry


def _principal() -> AdminPrincipal:
    principal: AdminPrincipal = g.admin
    return principal


def _audit(action: str, target: str) -> None:
    who = _principal().user
    log.info("admin %s (%s) %s %s", who.username, who.id, action, target)


def _no_content() -> Response:
    return Response("", status=204, headers=NO_STORE)


@bp.before_request
async def _guard() -> None:
    address = client_ip()
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        ip = None
    allowed = services().settings.admin_allowed_networks
    if ip is None or not any(ip in net for net in allowed):
        log.warning("admin API refused for %s (not in AUTHLY_ADMIN_ALLOWED_NETWORKS)", address)
        raise AccessDenied("The admin API is not reachable from this address.")
    if request.endpoint not in _OPEN_ENDPOINTS:
        g.admin = await _auth().authenticate(bearer_token())


# The same network and credential checks guard the other admin blueprints (admin_users).
admin_guard = _guard


# --- admin sessions -------------------------------------------------------------------


@bp.post("/session")
async def create_session() -> Response:
    body = await read_json_object()
    username = string_field(body, "username", MAX_USERNAME)
    password = string_field(body, "password", MAX_PASSWORD)
    try:
        handle, principal = await _auth().login(username, password, client_ip())
    except InvalidGrant as exc:
        # Bad credentials are 401, as on the first-party JSON login (DESIGN §7).
        raise InvalidGrant(exc.description, status_code=401) from None
    log.info("admin session started for %s (%s)", principal.user.username, principal.user.id)
    body = {"session": handle, "token_type": "Bearer", **principal.status()}
    return json_response(body, 201, NO_STORE)


@bp.get("/session")
async def session_status() -> Response:
    return json_response(_principal().status(), headers=NO_STORE)


@bp.delete("/session")
async def end_session() -> Response:
    principal = _principal()
    if principal.handle is None:
        raise InvalidRequest("The credential is an access token, not an admin session.")
    await _auth().logout(principal.handle)
    _audit("ended", "their admin session")
    return _no_content()


# --- clients --------------------------------------------------------------------------


@bp.get("/clients")
async def list_clients() -> Response:
    clients = await _registry().list_clients()
    return json_response({"clients": [c.public() for c in clients]}, headers=NO_STORE)


@bp.post("/clients")
async def create_client() -> Response:
    body = await read_json_object()
    client, secret = await _registry().create_client(body)
    _audit("created client", client.client_id)
    document = client.public()
    if secret is not None:
        document["client_secret"] = secret  # shown this once; only its hash is kept
    headers = {**NO_STORE, "Location": f"{PREFIX}/clients/{client.client_id}"}
    return json_response(document, 201, headers)


@bp.get("/clients/<client_id>")
async def show_client(client_id: str) -> Response:
    client = await _registry().get_client(client_id)
    return json_response(client.public(), headers=NO_STORE)


@bp.patch("/clients/<client_id>")
async def update_client(client_id: str) -> Response:
    body = await read_json_object()
    client = await _registry().update_client(client_id, body)
    _audit("updated client", client.client_id)
    return json_response(client.public(), headers=NO_STORE)


@bp.delete("/clients/<client_id>")
async def delete_client(client_id: str) -> Response:
    await _registry().delete_client(client_id)
    _audit("deleted client", client_id)
    return _no_content()


@bp.post("/clients/<client_id>/rotate-secret")
async def rotate_secret(client_id: str) -> Response:
    client, secret = await _registry().rotate_secret(client_id)
    _audit("rotated the secret of client", client.client_id)
    return json_response({"client_id": client.client_id, "client_secret": secret}, 200, NO_STORE)


# --- scopes ---------------------------------------------------------------------------


@bp.get("/scopes")
async def list_scopes() -> Response:
    scopes = await _registry().list_scopes()
    return json_response({"scopes": [s.public() for s in scopes]}, headers=NO_STORE)


@bp.post("/scopes")
async def create_scope() -> Response:
    body = await read_json_object()
    scope = await _registry().create_scope(body)
    _audit("created scope", scope.name)
    return json_response(scope.public(), 201, NO_STORE)


@bp.delete("/scopes/<path:name>")
async def delete_scope(name: str) -> Response:
    await _registry().delete_scope(name)
    _audit("deleted scope", name)
    return _no_content()
