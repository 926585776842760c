"""Registering private_key_jwt and client_secret_jwt clients through the admin API (keys,
secrets, rotation, moving between methods) and what discovery says about them (RFC 7523
§2.2, RFC 8414 §2); the endpoints themselves: test_client_assertions.py."""

from __future__ import annotations

import json
from typing import Any

import pytest

from authly.store import clients as client_repo
from tests.conftest import ISSUER, services_of
from tests.support.assertions import assertion_form, public_jwks, rsa_key, sign
from tests.web.admin_client import CLIENTS, AdminClient, session_handle
from tests.web.helpers import TOKEN, basic, error_body, json_of

TOKEN_URL = f"{ISSUER}{TOKEN}"
KEY = rsa_key("key-1")


async def client_credentials(client: Any, assertion: str, **params: str) -> Any:
    form = assertion_form(assertion, grant_type="client_credentials", **params)
    return await client.post(TOKEN, form=form)


# --- registration and discovery ---------------------------------------------------------


@pytest.fixture
async def admin(client) -> AdminClient:
    return AdminClient(client, await session_handle(client))


SERVICE = {
    "name": "Signed service",
    "client_type": "confidential",
    "grant_types": ["client_credentials"],
    "scopes": ["profile"],
}


async def test_admin_registers_a_private_key_jwt_client_without_a_secret(app, client, admin):
    body = {**SERVICE, "token_endpoint_auth_method": "private_key_jwt", "jwks": public_jwks(KEY)}
    created = await json_of(await admin.post(CLIENTS, json=body), 201)
    assert "client_secret" not in created
    assert created["jwks"] == public_jwks(KEY)
    assert created["jwks_uri"] is None
    client_id = created["client_id"]
    token = await client_credentials(client, sign(KEY, client_id, TOKEN_URL))
    assert token.status_code == 200
    rotate = await admin.post(f"{CLIENTS}/{client_id}/rotate-secret")
    assert "have no secret" in (await error_body(rotate, 400))["error_description"]
    # Moving to a secret method needs the keys removed, and then a secret.
    moved = await admin.patch(
        f"{CLIENTS}/{client_id}", json={"token_endpoint_auth_method": "client_secret_basic"}
    )
    assert "private_key_jwt clients only" in (await error_body(moved, 400))["error_description"]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({}, "jwks or jwks_uri"),
        ({"jwks": public_jwks(KEY), "jwks_uri": "https://a.example/k"}, "one, not both"),
        ({"jwks": {"keys": [KEY.as_dict(private=True)]}}, "private or symmetric"),
        ({"jwks_uri": "http://keys.example/jwks"}, "jwks_uri must be an https URI"),
    ],
)
async def test_admin_refuses_bad_private_key_jwt_registrations(admin, changes, message):
    body = {**SERVICE, "token_endpoint_auth_method": "private_key_jwt", **changes}
    response = await admin.post(CLIENTS, json=body)
    assert message in (await error_body(response, 400))["error_description"]


async def test_keys_are_for_private_key_jwt_clients_only(admin):
    body = {**SERVICE, "jwks_uri": "https://a.example/k"}
    response = await admin.post(CLIENTS, json=body)
    assert "private_key_jwt clients only" in (await error_body(response, 400))["error_description"]


async def test_admin_registers_a_client_secret_jwt_client_and_rotates_its_secret(
    app, client, admin
):
    body = {**SERVICE, "token_endpoint_auth_method": "client_secret_jwt"}
    created = await json_of(await admin.post(CLIENTS, json=body), 201)
    client_id, secret = created["client_id"], created["client_secret"]
    assert secret not in json.dumps(await json_of(await admin.get(f"{CLIENTS}/{client_id}")))
    ok = await client_credentials(client, sign(secret, client_id, TOKEN_URL, alg="HS256"))
    assert ok.status_code == 200
    rotated = await json_of(await admin.post(f"{CLIENTS}/{client_id}/rotate-secret"))
    old = await client_credentials(client, sign(secret, client_id, TOKEN_URL, alg="HS256"))
    assert (await error_body(old, 401))["error"] == "invalid_client"
    new_secret = rotated["client_secret"]
    new = await client_credentials(client, sign(new_secret, client_id, TOKEN_URL, alg="HS512"))
    assert new.status_code == 200


async def test_a_client_moved_to_client_secret_jwt_needs_a_new_secret(app, client, admin):
    created = await json_of(await admin.post(CLIENTS, json=SERVICE), 201)
    client_id, secret = created["client_id"], created["client_secret"]
    path = f"{CLIENTS}/{client_id}"
    await json_of(await admin.patch(path, json={"token_endpoint_auth_method": "client_secret_jwt"}))
    before = await client_credentials(client, sign(secret, client_id, TOKEN_URL, alg="HS256"))
    assert "rotate its secret" in (await error_body(before, 401))["error_description"]
    fresh = (await json_of(await admin.post(f"{path}/rotate-secret")))["client_secret"]
    after = await client_credentials(client, sign(fresh, client_id, TOKEN_URL, alg="HS256"))
    assert after.status_code == 200
    # Moving away drops the kept secret; the hash alone authenticates Basic again.
    await json_of(
        await admin.patch(path, json={"token_endpoint_auth_method": "client_secret_basic"})
    )
    row = await services_of(app).db.run(client_repo.get, client_id)
    assert row.jwt_secret is None
    basic_ok = await client.post(
        TOKEN, form={"grant_type": "client_credentials"}, headers=basic(client_id, fresh)
    )
    assert basic_ok.status_code == 200


@pytest.mark.parametrize(
    "path", ["/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"]
)
async def test_discovery_lists_the_methods_and_algorithms(client, path):
    document = await json_of(await client.get(path))
    methods = document["token_endpoint_auth_methods_supported"]
    assert {"client_secret_jwt", "private_key_jwt"} <= set(methods)
    assert {"client_secret_jwt", "private_key_jwt"} <= set(
        document["introspection_endpoint_auth_methods_supported"]
    )
    assert {"client_secret_jwt", "private_key_jwt"} <= set(
        document["revocation_endpoint_auth_methods_supported"]
    )
    for field in (
        "token_endpoint_auth_signing_alg_values_supported",
        "revocation_endpoint_auth_signing_alg_values_supported",
        "introspection_endpoint_auth_signing_alg_values_supported",
    ):
        algs = document[field]
        assert set(algs) == {"RS256", "PS256", "ES256", "HS256", "HS384", "HS512"}
        assert "none" not in algs
