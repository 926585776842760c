"""Helpers for the dynamic client registration tests (RFC 7591, RFC 7592)."""

from __future__ import annotations

from typing import Any

from tests.conftest import ISSUER
from tests.web.admin_client import AdminClient, session_handle
from tests.web.helpers import from_ip, json_of

REGISTER = "/api/v1/oauth/register"
INITIAL_TOKENS = "/api/v1/admin/initial-access-tokens"
WEB = {"redirect_uris": ["https://app.example/cb"], "client_name": "Report Viewer"}
IP = "203.0.113.7"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def register(
    client: Any, body: Any = None, *, token: str | None = None, address: str = IP
) -> Any:
    headers = bearer(token) if token is not None else {}
    return await client.post(
        REGISTER, json=WEB if body is None else body, headers=headers, scope_base=from_ip(address)
    )


def config_path(document: dict[str, Any]) -> str:
    """The registration_client_uri as a path for the test client."""
    uri = str(document["registration_client_uri"])
    assert uri.startswith(ISSUER + REGISTER + "/")
    return uri[len(ISSUER) :]


async def manage(client: Any, method: str, document: dict[str, Any], **kwargs: Any) -> Any:
    """An RFC 7592 request to the client's configuration endpoint with its token."""
    headers = kwargs.pop("headers", None) or bearer(document["registration_access_token"])
    return await client.open(
        config_path(document), method=method, headers=headers, scope_base=from_ip(IP), **kwargs
    )


async def admin(client: Any) -> AdminClient:
    return AdminClient(client, await session_handle(client))


async def initial_token(client: Any, **fields: Any) -> str:
    """A new initial access token created through the admin API."""
    operator = await admin(client)
    created = await json_of(await operator.post(INITIAL_TOKENS, json=fields), 201)
    return str(created["token"])
