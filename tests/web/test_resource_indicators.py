"""Resource indicators (RFC 8707) at the token endpoint: client credentials, the
audience of access tokens, invalid_target, scopes a resource allows, and what a
resource-bound token is good for at Authly (introspection yes, its own API no)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import ISSUER
from tests.web.helpers import error_body, json_of, me, register_client
from tests.web.resource_support import (
    API,
    BILLING,
    SERVICE,
    claims,
    post_pairs,
    token_pairs,
    with_service,
)

INTROSPECT = "/api/v1/oauth/introspect"


@pytest.fixture
async def service(app: Any) -> Any:
    await with_service(app, ("profile", "api:read", "api:write", "billing:read"))
    return app.test_client()


async def _credentials(client: Any, *resources: str, scope: str | None = None) -> Any:
    pairs = [("grant_type", "client_credentials")]
    if scope is not None:
        pairs.append(("scope", scope))
    pairs += [("resource", r) for r in resources]
    return await token_pairs(client, pairs, SERVICE)


async def _target_error(response: Any, error: str = "invalid_target") -> str:
    body = await error_body(response, 400)
    assert body["error"] == error, body
    assert response.headers["Cache-Control"] == "no-store"
    return str(body["error_description"])


async def test_one_resource_is_the_audience(service: Any) -> None:
    body = await json_of(await _credentials(service, API, scope="api:read"))
    assert body["scope"] == "api:read"
    token = claims(body["access_token"])
    assert token["aud"] == API
    assert token["iss"] == ISSUER
    assert token["scope"] == "api:read"


async def test_several_resources_are_an_array(service: Any) -> None:
    body = await json_of(await _credentials(service, API, BILLING, scope="api:read billing:read"))
    assert claims(body["access_token"])["aud"] == [API, BILLING]
    assert body["scope"] == "api:read billing:read"
    # Naming a resource twice is the same as once.
    again = await json_of(await _credentials(service, API, API, scope="api:read"))
    assert claims(again["access_token"])["aud"] == API


async def test_without_resource_the_audience_is_the_issuer(service: Any) -> None:
    body = await json_of(await _credentials(service, scope="api:read"))
    assert claims(body["access_token"])["aud"] == ISSUER


@pytest.mark.parametrize(
    ("resource", "fragment"),
    [
        ("https://unknown.example.com", "not registered"),
        (API + "/", "not registered"),  # compared character for character
        (API + "#section", "fragment"),
        ("/v1", "absolute"),
        ("api.example.com/v1", "absolute"),
        ("", "empty"),
        ("https://api.example.com/a b", "printable"),
    ],
)
async def test_bad_resource_is_invalid_target(service: Any, resource: str, fragment: str) -> None:
    description = await _target_error(await _credentials(service, resource, scope="api:read"))
    assert fragment in description


async def test_too_many_resources_is_invalid_target(service: Any) -> None:
    many = [f"{API}/{i}" for i in range(11)]
    assert "At most" in await _target_error(await _credentials(service, *many))


async def test_scope_outside_the_resources_is_invalid_scope(service: Any) -> None:
    response = await _credentials(service, API, scope="api:read billing:read")
    assert "billing:read" in await _target_error(response, "invalid_scope")
    # A scope of the other named resource is fine: the resources' scopes add up.
    body = await json_of(await _credentials(service, API, BILLING, scope="api:read billing:read"))
    assert body["scope"] == "api:read billing:read"


async def test_default_scope_is_narrowed_to_the_resource(service: Any) -> None:
    # profile is a default scope the client has, but the API does not allow it.
    body = await json_of(await _credentials(service, API))
    assert body["scope"] == ""
    assert claims(body["access_token"])["aud"] == API


async def test_other_repeated_parameters_are_still_refused(service: Any) -> None:
    pairs = [("grant_type", "client_credentials"), ("scope", "a"), ("scope", "b")]
    body = await error_body(await token_pairs(service, pairs, SERVICE), 400)
    assert body["error"] == "invalid_request"


async def test_resource_token_is_not_for_authly_but_introspects(service: Any) -> None:
    body = await json_of(await _credentials(service, API, scope="api:read"))
    token = body["access_token"]
    # Authly's own API is not the audience.
    assert (await me(service, f"Bearer {token}")).status_code == 401
    # A resource server asks Authly about it.
    answer = await json_of(await post_pairs(service, INTROSPECT, [("token", token)], SERVICE))
    assert answer["active"] is True
    assert answer["aud"] == API
    # And the client can revoke it.
    revoked = await post_pairs(service, "/api/v1/oauth/revoke", [("token", token)], SERVICE)
    assert revoked.status_code == 200
    answer = await json_of(await post_pairs(service, INTROSPECT, [("token", token)], SERVICE))
    assert answer == {"active": False}


async def test_password_grant_takes_resources(app: Any, service: Any) -> None:
    await register_client(
        app,
        "first",
        first_party=True,
        grant_types=("password", "refresh_token"),
        scopes=("profile", "api:read"),
    )
    pairs = [
        ("grant_type", "password"),
        ("client_id", "first"),
        ("username", "admin"),
        ("password", "admin-pass-123"),
        ("scope", "api:read"),
        ("resource", API),
    ]
    body = await json_of(await token_pairs(service, pairs))
    assert claims(body["access_token"])["aud"] == API
    refreshed = await json_of(
        await token_pairs(
            service,
            [
                ("grant_type", "refresh_token"),
                ("client_id", "first"),
                ("refresh_token", body["refresh_token"]),
            ],
        )
    )
    assert claims(refreshed["access_token"])["aud"] == API
    assert refreshed["scope"] == "api:read"
