"""POST /api/v1/oauth/register (RFC 7591) through the app: the three modes, discovery,
the client information response, every refusal with its RFC 7591 error, the per-IP
limit, and a registered client at the token endpoint."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import ISSUER
from tests.support.assertions import assertion_form, ec_key, public_jwks, sign
from tests.web.dcr_support import IP, REGISTER, WEB, bearer, initial_token, register
from tests.web.helpers import TOKEN, basic, error_body, from_ip, json_of, running_app

DISCOVERY = ("/.well-known/oauth-authorization-server", "/.well-known/openid-configuration")


async def endpoints(client: Any) -> list[str | None]:
    return [(await json_of(await client.get(p))).get("registration_endpoint") for p in DISCOVERY]


# --- modes and discovery ----------------------------------------------------------------


async def test_closed_by_default_and_not_advertised(client: Any):
    body = await error_body(await register(client), 404)
    assert body["error"] == "not_found"
    assert "not enabled" in body["error_description"]
    assert await endpoints(client) == [None, None]


@pytest.mark.parametrize("mode", ["open", "token"])
async def test_advertised_in_both_documents_when_enabled(settings_factory: Any, mode: str):
    async with running_app(settings_factory(registration=mode)) as app:
        assert await endpoints(app.test_client()) == [f"{ISSUER}{REGISTER}"] * 2


async def test_open_registration(open_app: Any):
    response = await register(open_app.test_client())
    document = await json_of(response, 201)
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Pragma"] == "no-cache"
    assert response.headers["Location"] == document["registration_client_uri"]
    cid = document["client_id"]
    assert document == {
        "client_id": cid,
        "client_secret": document["client_secret"],
        "client_id_issued_at": document["client_id_issued_at"],
        "client_secret_expires_at": 0,
        "client_name": "Report Viewer",
        "token_endpoint_auth_method": "client_secret_basic",
        "redirect_uris": ["https://app.example/cb"],
        "grant_types": ["authorization_code"],
        "response_types": ["code"],
        "scope": "email profile",
        "id_token_signed_response_alg": "RS256",
        "post_logout_redirect_uris": [],
        "backchannel_logout_session_required": False,
        "require_pushed_authorization_requests": False,
        "dpop_bound_access_tokens": False,
        "registration_access_token": document["registration_access_token"],
        "registration_client_uri": f"{ISSUER}{REGISTER}/{cid}",
    }
    assert len(document["client_secret"]) >= 43
    assert document["registration_access_token"].startswith("reg_")


async def test_public_native_client_gets_no_secret(open_app: Any):
    body = {
        "redirect_uris": ["com.example.reports:/callback", "http://127.0.0.1/callback"],
        "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"],
        "scope": "openid profile offline_access",
    }
    document = await json_of(await register(open_app.test_client(), body), 201)
    assert "client_secret" not in document
    assert "client_secret_expires_at" not in document
    assert document["token_endpoint_auth_method"] == "none"
    assert document["scope"] == "openid profile offline_access"


async def test_token_mode_and_initial_access_tokens(token_app: Any):
    client = token_app.test_client()
    response = await register(client)
    assert (await error_body(response, 401))["error"] == "invalid_token"
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="authly"'
    response = await register(client, token="init_not-a-real-token")
    assert (await error_body(response, 401))["error"] == "invalid_token"
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    response = await client.post(REGISTER, json=WEB, headers={"Authorization": "Basic eDp5"})
    assert (await error_body(response, 401))["error"] == "invalid_token"

    single = await initial_token(client, max_uses=1, description="one app")
    await json_of(await register(client, token=single), 201)
    response = await register(client, token=single)
    body = await error_body(response, 401)
    assert body == {"error": "invalid_token", "error_description": body["error_description"]}
    assert "used up" in body["error_description"]


async def test_a_registered_service_gets_tokens(token_app: Any):
    client = token_app.test_client()
    token = await initial_token(client)
    service = {"grant_types": ["client_credentials"], "scope": "profile"}
    document = await json_of(await register(client, service, token=token), 201)
    assert document["response_types"] == []
    answer = await client.post(
        TOKEN,
        form={"grant_type": "client_credentials"},
        headers=basic(document["client_id"], document["client_secret"]),
    )
    assert (await json_of(answer))["scope"] == "profile"


async def test_a_registered_private_key_jwt_client_authenticates(token_app: Any):
    client = token_app.test_client()
    key = ec_key("dcr-1")
    body = {
        "grant_types": ["client_credentials"],
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks": public_jwks(key),
    }
    document = await json_of(await register(client, body, token=await initial_token(client)), 201)
    assert "client_secret" not in document
    assert document["jwks"]["keys"][0]["kid"] == "dcr-1"
    assertion = sign(key, document["client_id"], f"{ISSUER}{TOKEN}", alg="ES256")
    form = assertion_form(assertion, grant_type="client_credentials")
    assert (await client.post(TOKEN, form=form)).status_code == 200


# --- refusals ---------------------------------------------------------------------------


REFUSED = [
    ({"redirect_uris": ["http://app.example/cb"]}, "invalid_redirect_uri"),
    ({"redirect_uris": ["https://app.example/cb#x"]}, "invalid_redirect_uri"),
    ({"redirect_uris": ["javascript:alert(1)"]}, "invalid_redirect_uri"),
    ({"redirect_uris": ["com.example.app:/cb"]}, "invalid_redirect_uri"),  # confidential
    ({"redirect_uris": "https://app.example/cb"}, "invalid_redirect_uri"),
    ({"client_name": "No URIs"}, "invalid_redirect_uri"),
    ({**WEB, "response_types": ["token"]}, "invalid_client_metadata"),
    ({**WEB, "response_types": []}, "invalid_client_metadata"),
    ({**WEB, "grant_types": ["password"]}, "invalid_client_metadata"),
    ({**WEB, "grant_types": ["implicit"]}, "invalid_client_metadata"),
    ({"grant_types": ["client_credentials"]}, "invalid_client_metadata"),  # open mode
    ({**WEB, "scope": "profile nope"}, "invalid_client_metadata"),
    ({**WEB, "scope": "profile admin"}, "invalid_client_metadata"),
    ({**WEB, "token_endpoint_auth_method": "private_key_jwt"}, "invalid_client_metadata"),
    ({**WEB, "token_endpoint_auth_method": "tls_client_auth"}, "invalid_client_metadata"),
    ({**WEB, "backchannel_logout_uri": "https://127.0.0.1/bc"}, "invalid_client_metadata"),
    (
        {
            **WEB,
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks_uri": "https://169.254.169.254/keys",
        },
        "invalid_client_metadata",
    ),
    ({**WEB, "id_token_signed_response_alg": "none"}, "invalid_client_metadata"),
    ({**WEB, "client_name": ""}, "invalid_client_metadata"),
]


@pytest.mark.parametrize(("body", "error"), REFUSED)
async def test_refused_metadata(open_app: Any, body: dict[str, Any], error: str):
    response = await register(open_app.test_client(), body)
    found = await error_body(response, 400)
    assert found["error"] == error
    assert response.headers["Cache-Control"] == "no-store"


async def test_refused_bodies(open_app: Any):
    client = open_app.test_client()
    scope = from_ip(IP)
    response = await client.post(REGISTER, form={"redirect_uris": "x"}, scope_base=scope)
    assert (await error_body(response, 415))["error"] == "invalid_request"
    response = await client.post(
        REGISTER, data=b"[1]", headers={"Content-Type": "application/json"}
    )
    assert (await error_body(response, 400))["error"] == "invalid_request"
    response = await client.get(REGISTER)
    assert (await error_body(response, 405))["error"] == "method_not_allowed"


async def test_nothing_is_stored_for_a_refused_registration(token_app: Any):
    client = token_app.test_client()
    single = await initial_token(client, max_uses=1)
    response = await register(client, {**WEB, "scope": "nope"}, token=single)
    assert (await error_body(response, 400))["error"] == "invalid_client_metadata"
    await json_of(await register(client, token=single), 201)  # the use was not spent


# --- rate limit -------------------------------------------------------------------------


async def test_registrations_are_limited_per_ip(settings_factory: Any):
    settings = settings_factory(
        registration="token", registration_rate_limit=3, registration_rate_window=600
    )
    async with running_app(settings) as app:
        client = app.test_client()
        token = await initial_token(client)
        await json_of(await register(client, token=token), 201)
        await error_body(await register(client, {"redirect_uris": []}, token=token), 400)
        await error_body(await register(client, token="init_wrong"), 401)  # counted too
        response = await register(client, token=token)
        assert (await error_body(response, 429))["error"] == "too_many_requests"
        assert 1 <= int(response.headers["Retry-After"]) <= 600
        # Another address still may.
        await json_of(await register(client, token=token, address="198.51.100.2"), 201)


async def test_forwarded_addresses_count_only_from_trusted_proxies(settings_factory: Any):
    settings = settings_factory(registration="open", registration_rate_limit=1)
    async with running_app(settings) as app:
        client = app.test_client()
        await json_of(await register(client), 201)
        spoofed = {**bearer("unused"), "X-Forwarded-For": "192.0.2.55"}
        response = await client.post(REGISTER, json=WEB, headers=spoofed, scope_base=from_ip(IP))
        await error_body(response, 429)
