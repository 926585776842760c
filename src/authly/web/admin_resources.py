"""Admin API for the resource registry (RFC 8707):

    GET    /api/v1/admin/resources                    {"resources": [resource, ...]}
    POST   /api/v1/admin/resources                    201 resource (+ Location)
    GET    /api/v1/admin/resources/<identifier>       resource
    PATCH  /api/v1/admin/resources/<identifier>       resource (name, scopes)
    DELETE /api/v1/admin/resources/<identifier>       204

``<identifier>`` is the resource URI percent-encoded as one path segment (``/`` as
``%2F``). The routes sit on the admin blueprint (web/admin.py), so its guard applies to
them unchanged: the network check, then the bearer credential. The rules live in
oauth/resource_registry.py; this module only adapts HTTP to them.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from quart import Response, g

from authly.oauth.resource_registry import ResourceRegistry
from authly.resource_server import metadata_url
from authly.store.resources import Resource
from authly.users.admin_auth import AdminPrincipal
from authly.web.admin import PREFIX, bp
from authly.web.context import services
from authly.web.parsing import read_json_object
from authly.web.render import NO_STORE, json_response

log = logging.getLogger("authly.admin")


def _registry() -> ResourceRegistry:
    return ResourceRegistry(services().db)


def _view(resource: Resource) -> dict[str, Any]:
    """The admin view, and (read-only) where its RFC 9728 metadata is served."""
    issuer = services().settings.issuer
    return {**resource.public(), "metadata_url": metadata_url(issuer, resource.identifier)}


def _audit(action: str, target: str) -> None:
    principal: AdminPrincipal = g.admin
    who = principal.user
    log.info("admin %s (%s) %s %s", who.username, who.id, action, target)


@bp.get("/resources")
async def list_resources() -> Response:
    resources = await _registry().list()
    return json_response({"resources": [_view(r) for r in resources]}, headers=NO_STORE)


@bp.post("/resources")
async def create_resource() -> Response:
    body = await read_json_object()
    resource = await _registry().create(body)
    _audit("created resource", resource.identifier)
    location = f"{PREFIX}/resources/{quote(resource.identifier, safe='')}"
    return json_response(_view(resource), 201, {**NO_STORE, "Location": location})


@bp.get("/resources/<path:identifier>")
async def show_resource(identifier: str) -> Response:
    resource = await _registry().get(identifier)
    return json_response(_view(resource), headers=NO_STORE)


@bp.patch("/resources/<path:identifier>")
async def update_resource(identifier: str) -> Response:
    body = await read_json_object()
    resource = await _registry().update(identifier, body)
    _audit("updated resource", resource.identifier)
    return json_response(_view(resource), headers=NO_STORE)


@bp.delete("/resources/<path:identifier>")
async def delete_resource(identifier: str) -> Response:
    await _registry().delete(identifier)
    _audit("deleted resource", identifier)
    return Response("", status=204, headers=NO_STORE)
