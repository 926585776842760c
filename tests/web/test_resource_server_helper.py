"""authly.resource_server: what a resource server builds with it (RFC 9728 metadata, the
WWW-Authenticate challenge) and its check of Authly's access tokens against the JWKS."""

from __future__ import annotations

import time
from typing import Any

import pytest

from authly.resource_server import (
    ResourceServer,
    TokenRejected,
    metadata_url,
    protected_resource_metadata,
    verify_access_token,
    www_authenticate,
)
from tests.conftest import ISSUER
from tests.web.helpers import json_of
from tests.web.resource_support import API, SERVICE, token_pairs, with_service

RS = ResourceServer(issuer=ISSUER, resource=API, scopes=("api:read",), name="Reports API")


def test_metadata_and_challenge() -> None:
    url = metadata_url(ISSUER, API)
    assert (
        url
        == f"{ISSUER}/api/v1/oauth/resource-metadata?resource=https%3A%2F%2Fapi.example.com%2Fv1"
    )
    assert RS.metadata_url == url
    assert RS.challenge() == f'Bearer resource_metadata="{url}"'
    assert RS.metadata() == protected_resource_metadata(
        API, ISSUER, ["api:read"], name="Reports API"
    )
    assert RS.metadata() == {
        "resource": API,
        "authorization_servers": [ISSUER],
        "scopes_supported": ["api:read"],
        "bearer_methods_supported": ["header"],
        "resource_name": "Reports API",
    }
    own = ResourceServer(ISSUER, API, metadata_location="https://api.example.com/.well-known/x")
    assert own.challenge() == 'Bearer resource_metadata="https://api.example.com/.well-known/x"'
    header = www_authenticate(url, error="invalid_token", description='a "quoted" \\ text\n')
    assert header == (
        f'Bearer resource_metadata="{url}", error="invalid_token", '
        'error_description="a \\"quoted\\" \\\\ text?"'
    )
    rejected = TokenRejected("insufficient_scope", "Needs more.", 403, "api:write")
    assert RS.challenge_for(rejected).endswith(
        'error="insufficient_scope", error_description="Needs more.", scope="api:write"'
    )


@pytest.fixture
async def issued(app: Any) -> tuple[Any, dict[str, Any]]:
    await with_service(app, ("api:read", "billing:read"))
    client = app.test_client()
    jwks = await json_of(await client.get("/.well-known/jwks.json"))
    return client, jwks


async def _token(client: Any, *pairs: tuple[str, str]) -> str:
    body = await json_of(
        await token_pairs(client, [("grant_type", "client_credentials"), *pairs], SERVICE)
    )
    return str(body["access_token"])


async def test_verify_accepts_a_token_for_the_resource(issued: Any) -> None:
    client, jwks = issued
    token = await _token(client, ("scope", "api:read"), ("resource", API))
    claims = RS.verify(token, jwks, required_scopes=["api:read"])
    assert claims["aud"] == API
    assert claims["sub"] == "svc"


async def test_verify_refuses_other_tokens(issued: Any) -> None:
    client, jwks = issued
    for_authly = await _token(client, ("scope", "api:read"))
    with pytest.raises(TokenRejected) as wrong_audience:
        RS.verify(for_authly, jwks)
    assert wrong_audience.value.error == "invalid_token"
    assert wrong_audience.value.status == 401
    token = await _token(client, ("scope", "api:read"), ("resource", API))
    with pytest.raises(TokenRejected) as expired:
        verify_access_token(
            token, jwks, issuer=ISSUER, resource=API, now=lambda: time.time() + 3600
        )
    assert expired.value.error == "invalid_token"
    with pytest.raises(TokenRejected):
        verify_access_token(token, jwks, issuer="https://evil.example", resource=API)
    with pytest.raises(TokenRejected):
        RS.verify(token, {"keys": []})
    with pytest.raises(TokenRejected):
        RS.verify("not-a-jwt", jwks)
    with pytest.raises(TokenRejected) as scope:
        RS.verify(token, jwks, required_scopes=["api:read", "api:write"])
    assert scope.value.status == 403
    assert scope.value.scope == "api:write"
    assert scope.value.error == "insufficient_scope"
