"""Helpers for the resource indicator tests (RFC 8707): registered scopes and resources,
a client_credentials client for them, form bodies with a repeated ``resource``, and
reading a JWT's claims."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

from authly.store import resources as resource_repo
from authly.store import scopes as scope_repo
from authly.store.resources import Resource
from authly.store.scopes import Scope
from tests.conftest import services_of
from tests.web.helpers import FORM, TOKEN, basic, register_client

API = "https://api.example.com/v1"
API_SCOPES = ("api:read", "api:write")
BILLING = "https://billing.example.com"
BILLING_SCOPES = ("billing:read",)
SERVICE_SECRET = "service-secret-value-1234"
SERVICE = basic("svc", SERVICE_SECRET)  # the Authorization header of with_service's client
Pairs = Sequence[tuple[str, str]]


async def add_scopes(app: Any, *names: str) -> None:
    s = services_of(app)
    for name in names:
        await s.db.run(scope_repo.insert, Scope(name, f"The {name} scope", False), time.time())


async def add_resource(app: Any, identifier: str, scopes: Sequence[str], name: str = "") -> None:
    now = time.time()
    row = Resource(identifier, name or identifier, tuple(scopes), now, now)
    await services_of(app).db.run(resource_repo.insert, row)


async def api_and_billing(app: Any) -> None:
    """Two resources with their own scopes (registered first)."""
    await add_scopes(app, *API_SCOPES, *BILLING_SCOPES)
    await add_resource(app, API, API_SCOPES, "Reports API")
    await add_resource(app, BILLING, BILLING_SCOPES, "Billing")


async def with_service(app: Any, scopes: Sequence[str]) -> None:
    """The two resources (api_and_billing), and "svc", a confidential client of the
    client_credentials grant (secret SERVICE_SECRET) registered for ``scopes``."""
    await api_and_billing(app)
    await register_client(
        app,
        "svc",
        secret=SERVICE_SECRET,
        auth_method="client_secret_basic",
        grant_types=("client_credentials",),
        scopes=tuple(scopes),
    )


async def post_pairs(
    client: Any, path: str, pairs: Pairs, headers: dict[str, str] | None = None
) -> Any:
    """A form POST whose body may repeat a parameter (``resource``)."""
    return await client.post(path, data=urlencode(list(pairs)), headers={**FORM, **(headers or {})})


async def token_pairs(client: Any, pairs: Pairs, headers: dict[str, str] | None = None) -> Any:
    return await post_pairs(client, TOKEN, pairs, headers)


def with_resources(params: dict[str, str], *resources: str) -> list[tuple[str, str]]:
    return [*params.items(), *(("resource", r) for r in resources)]


def claims(token: str) -> dict[str, Any]:
    """A JWT's payload (no verification: the tests look at what was issued)."""
    payload = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return decoded
