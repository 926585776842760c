"""Protected resource metadata (RFC 9728) for the registered resources (RFC 8707):

    GET /api/v1/oauth/resource-metadata?resource=<identifier>   -> the RFC 9728 §2 document

RFC 9728 §3 places the document on the resource's own host; Authly is not that host,
so it serves a copy under its own path, and a resource server's 401 points clients at
it with ``WWW-Authenticate: Bearer resource_metadata="<this URL>"`` (built by
``authly.resource_server``). The document comes from the registry and AUTHLY_ISSUER
only. Errors are JSON: 400 ``invalid_request`` without exactly one ``resource``, 404
``not_found`` for an identifier that is not registered.
"""

from __future__ import annotations

import json

from quart import Blueprint, Response, request

from authly.errors import InvalidRequest, NotFound
from authly.oauth.resources import MAX_IDENTIFIER
from authly.resource_server import METADATA_PATH, protected_resource_metadata
from authly.store import resources as resource_repo
from authly.web.context import services

bp = Blueprint("resource_metadata", __name__)

MAX_AGE = 300  # as the RFC 8414 document's default


@bp.get(METADATA_PATH)
async def resource_metadata() -> Response:
    values = request.args.getlist("resource")
    if len(values) != 1 or not values[0]:
        raise InvalidRequest("Give exactly one resource parameter: the resource identifier.")
    identifier = values[0]
    s = services()
    found = None
    if len(identifier) <= MAX_IDENTIFIER:
        found = await s.db.run(resource_repo.get, identifier)
    if found is None:
        raise NotFound(f"No resource {identifier[:200]!r} is registered.")
    document = protected_resource_metadata(
        found.identifier, s.settings.issuer, found.scopes, name=found.name
    )
    return Response(
        json.dumps(document, separators=(",", ":")),
        status=200,
        content_type="application/json",
        headers={"Cache-Control": f"public, max-age={MAX_AGE}"},
    )
