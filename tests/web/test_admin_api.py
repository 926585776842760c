"""Admin API: clients and scopes (create, list, show, update, delete, rotate secret)."""

from __future__ import annotations

from typing import Any

import pytest

from authly.oauth.clients import hash_secret
from authly.store import clients as client_repo
from tests.conftest import login, services_of
from tests.web.admin_client import CLIENTS, SCOPES, AdminClient, session_handle
from tests.web.helpers import JSON, TOKEN, basic, error_body, json_of

METADATA = "/.well-known/oauth-authorization-server"
CLIENT_KEYS = {
    "client_id",
    "name",
    "client_type",
    "token_endpoint_auth_method",
    "redirect_uris",
    "grant_types",
    "scopes",
    "first_party",
    "require_pushed_authorization_requests",
    "dpop_bound_access_tokens",
    "id_token_signed_response_alg",
    "post_logout_redirect_uris",
    "backchannel_logout_uri",
    "backchannel_logout_session_required",
    "jwks",
    "jwks_uri",
    "created_at",
    "updated_at",
}
SERVICE = {
    "name": "Billing service",
    "client_type": "confidential",
    "grant_types": ["client_credentials"],
    "scopes": ["profile"],
}
WEB_APP = {
    "name": "Web app",
    "client_type": "confidential",
    "redirect_uris": ["https://app.example/callback"],
}
SPA = {
    "name": "Single-page app",
    "client_type": "public",
    "redirect_uris": ["https://spa.example/cb", "http://127.0.0.1/cb"],
}


@pytest.fixture
async def admin(client) -> AdminClient:
    return AdminClient(client, await session_handle(client))


async def _create(admin: AdminClient, body: dict[str, Any]) -> dict[str, Any]:
    return await json_of(await admin.post(CLIENTS, json=body), 201)


async def _client_credentials(client, client_id: str, secret: str, **params: str) -> Any:
    form = {"grant_type": "client_credentials", **params}
    return await client.post(TOKEN, form=form, headers=basic(client_id, secret))


# --- create -----------------------------------------------------------------------------


async def test_create_confidential_client_secret_shown_once_and_works(app, client, admin):
    response = await admin.post(CLIENTS, json=SERVICE)
    created = await json_of(response, 201)
    assert set(created) == CLIENT_KEYS | {"client_secret"}
    client_id, secret = created["client_id"], created["client_secret"]
    assert response.headers["Location"] == f"{CLIENTS}/{client_id}"
    assert response.headers["Cache-Control"] == "no-store"
    assert created["client_type"] == "confidential"
    assert created["token_endpoint_auth_method"] == "client_secret_basic"
    assert created["grant_types"] == ["client_credentials"]
    assert len(client_id) >= 20
    assert len(secret) >= 43
    # Only the hash is kept, and the secret is never shown again.
    row = await services_of(app).db.run(client_repo.get, client_id)
    assert row.secret_hash == hash_secret(secret)
    shown = await json_of(await admin.get(f"{CLIENTS}/{client_id}"))
    assert set(shown) == CLIENT_KEYS
    listed = await admin.get(CLIENTS)
    assert secret not in await listed.get_data(as_text=True)
    # The secret works at the token endpoint (client_credentials, client_secret_basic).
    tokens = await json_of(await _client_credentials(client, client_id, secret))
    assert tokens["token_type"] == "Bearer"
    assert "refresh_token" not in tokens
    claims = await services_of(app).tokens.verify_access(tokens["access_token"])
    assert claims.subject == client_id


async def test_create_defaults(admin):
    created = await _create(admin, WEB_APP)
    assert created["grant_types"] == ["authorization_code", "refresh_token"]
    assert created["token_endpoint_auth_method"] == "client_secret_basic"
    assert sorted(created["scopes"]) == ["email", "profile"]  # the registry's defaults
    assert created["first_party"] is False
    assert created["redirect_uris"] == WEB_APP["redirect_uris"]
    assert created["name"] == "Web app"


async def test_create_public_client_has_no_secret(client, admin):
    created = await _create(admin, SPA)
    assert "client_secret" not in created
    assert created["client_type"] == "public"
    assert created["token_endpoint_auth_method"] == "none"
    response = await admin.post(f"{CLIENTS}/{created['client_id']}/rotate-secret")
    assert (await error_body(response, 400))["error"] == "invalid_request"


async def test_client_secret_post(client, admin):
    created = await _create(admin, {**SERVICE, "token_endpoint_auth_method": "client_secret_post"})
    client_id, secret = created["client_id"], created["client_secret"]
    form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    assert (await client.post(TOKEN, form=form)).status_code == 200
    await error_body(await _client_credentials(client, client_id, secret), 401)


async def test_first_party_client_may_use_password_and_admin(admin):
    created = await _create(
        admin,
        {
            "name": "Console",
            "client_type": "public",
            "grant_types": ["password", "refresh_token"],
            "scopes": ["profile", "admin"],
            "first_party": True,
        },
    )
    assert created["first_party"] is True
    assert created["grant_types"] == ["password", "refresh_token"]


async def test_duplicates_in_lists_are_dropped(admin):
    created = await _create(
        admin,
        {**WEB_APP, "scopes": ["email", "email"], "redirect_uris": ["https://a.example/"] * 2},
    )
    assert created["scopes"] == ["email"]
    assert created["redirect_uris"] == ["https://a.example/"]


BAD_CLIENTS = [
    pytest.param({"client_type": "public", "grant_types": ["password"]}, id="no-name"),
    pytest.param({**SERVICE, "name": ""}, id="empty-name"),
    pytest.param({**SERVICE, "name": "   "}, id="blank-name"),
    pytest.param({**SERVICE, "name": "x" * 201}, id="long-name"),
    pytest.param({**SERVICE, "name": "a\nb"}, id="control-in-name"),
    pytest.param({**SERVICE, "name": 7}, id="name-not-string"),
    pytest.param({**SERVICE, "name": None}, id="name-null"),
    pytest.param({"name": "x", "grant_types": ["client_credentials"]}, id="no-client-type"),
    pytest.param({**SERVICE, "client_type": "secret"}, id="bad-client-type"),
    pytest.param({**SERVICE, "client_id": "mine"}, id="client-id-given"),
    pytest.param({**SERVICE, "client_secret": "mine"}, id="secret-given"),
    pytest.param({**WEB_APP, "redirect_uri": "https://x.example/"}, id="unknown-field"),
    pytest.param({**WEB_APP, "redirect_uris": "https://x.example/"}, id="uris-not-list"),
    pytest.param({**WEB_APP, "redirect_uris": [1]}, id="uri-not-string"),
    pytest.param({**WEB_APP, "redirect_uris": [""]}, id="uri-empty"),
    pytest.param({**WEB_APP, "redirect_uris": ["https://x.example/#f"]}, id="uri-fragment"),
    pytest.param({**WEB_APP, "redirect_uris": ["/relative"]}, id="uri-relative"),
    pytest.param({**WEB_APP, "redirect_uris": ["http://x.example/cb"]}, id="uri-http-remote"),
    pytest.param({**WEB_APP, "redirect_uris": ["javascript:alert(1)"]}, id="uri-javascript"),
    pytest.param({**WEB_APP, "redirect_uris": ["data:text/html,x"]}, id="uri-data"),
    pytest.param({**WEB_APP, "redirect_uris": ["https://x.example/a b"]}, id="uri-space"),
    pytest.param({**WEB_APP, "redirect_uris": ["https://é.example/"]}, id="uri-non-ascii"),
    pytest.param(
        {**WEB_APP, "redirect_uris": [f"https://x.example/{i}" for i in range(21)]},
        id="too-many-uris",
    ),
    pytest.param({**WEB_APP, "redirect_uris": []}, id="auth-code-without-uri"),
    pytest.param({**SERVICE, "grant_types": []}, id="no-grant-types"),
    pytest.param({**SERVICE, "grant_types": ["implicit"]}, id="unknown-grant"),
    pytest.param({**SERVICE, "grant_types": "client_credentials"}, id="grants-not-list"),
    pytest.param({**SERVICE, "grant_types": ["refresh_token"]}, id="refresh-alone"),
    pytest.param({**SERVICE, "grant_types": ["password"]}, id="password-third-party"),
    pytest.param({**SERVICE, "scopes": ["admin"]}, id="admin-scope-third-party"),
    pytest.param({**SERVICE, "scopes": ["nope"]}, id="unknown-scope"),
    pytest.param({**SERVICE, "scopes": [None]}, id="scope-null"),
    pytest.param({**SERVICE, "first_party": "yes"}, id="first-party-not-bool"),
    pytest.param({**SERVICE, "token_endpoint_auth_method": "none"}, id="confidential-none"),
    pytest.param({**SERVICE, "token_endpoint_auth_method": "private_key_jwt"}, id="bad-method"),
    pytest.param({**SPA, "token_endpoint_auth_method": "client_secret_basic"}, id="public-basic"),
    pytest.param({**SPA, "grant_types": ["client_credentials"]}, id="public-client-credentials"),
]


@pytest.mark.parametrize("body", BAD_CLIENTS)
async def test_create_bad_client_is_400(app, admin, body):
    body = await error_body(await admin.post(CLIENTS, json=body), 400)
    assert body["error"] == "invalid_request"
    clients = await services_of(app).db.run(client_repo.list_all)
    assert [c.client_id for c in clients] == ["authly"]


@pytest.mark.parametrize("raw", [b"[]", b"null", b'"x"', b"{", b"\xff"])
async def test_create_with_a_body_that_is_not_a_json_object_is_400(admin, raw):
    response = await admin.post(CLIENTS, data=raw, headers=JSON)
    await error_body(response, 400)


async def test_create_with_a_form_body_is_415(admin):
    await error_body(await admin.post(CLIENTS, form={"name": "x"}), 415)


# --- show, list, update ------------------------------------------------------------------


async def test_list_and_show(admin):
    first = await _create(admin, SERVICE)
    second = await _create(admin, SPA)
    listed = await json_of(await admin.get(CLIENTS))
    ids = [c["client_id"] for c in listed["clients"]]
    assert ids[0] == "authly"
    assert set(ids[1:]) == {first["client_id"], second["client_id"]}
    for entry in listed["clients"]:
        assert set(entry) == CLIENT_KEYS
    shown = await json_of(await admin.get(f"{CLIENTS}/{second['client_id']}"))
    assert shown == second


@pytest.mark.parametrize("client_id", ["unknown", "x" * 500])
async def test_unknown_client_is_404(admin, client_id):
    path = f"{CLIENTS}/{client_id}"
    for response in (
        await admin.get(path),
        await admin.patch(path, json={"name": "x"}),
        await admin.delete(path),
        await admin.post(f"{path}/rotate-secret"),
    ):
        assert (await error_body(response, 404))["error"] == "not_found"


async def test_update_client(admin):
    created = await _create(admin, WEB_APP)
    path = f"{CLIENTS}/{created['client_id']}"
    changes = {
        "name": "Renamed",
        "redirect_uris": ["https://app.example/new"],
        "token_endpoint_auth_method": "client_secret_post",
        "scopes": ["email"],
    }
    updated = await json_of(await admin.patch(path, json=changes))
    assert updated["name"] == "Renamed"
    assert updated["redirect_uris"] == ["https://app.example/new"]
    assert updated["token_endpoint_auth_method"] == "client_secret_post"
    assert updated["scopes"] == ["email"]
    assert updated["grant_types"] == created["grant_types"]  # untouched fields stay
    assert updated["created_at"] == created["created_at"]
    assert await json_of(await admin.get(path)) == updated


async def test_update_keeps_the_secret(client, admin):
    created = await _create(admin, SERVICE)
    path = f"{CLIENTS}/{created['client_id']}"
    await json_of(await admin.patch(path, json={"name": "Still billing"}))
    response = await _client_credentials(client, created["client_id"], created["client_secret"])
    assert response.status_code == 200


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"client_type": "public"}, id="change-type"),
        pytest.param({"redirect_uris": []}, id="drop-last-uri"),
        pytest.param({"token_endpoint_auth_method": "none"}, id="method-none"),
        pytest.param({"scopes": ["nope"]}, id="unknown-scope"),
        pytest.param({"client_id": "other"}, id="client-id"),
        pytest.param({"created_at": 0}, id="created-at"),
        pytest.param({"name": ""}, id="empty-name"),
    ],
)
async def test_bad_update_is_400_and_changes_nothing(admin, changes):
    created = await _create(admin, WEB_APP)
    path = f"{CLIENTS}/{created['client_id']}"
    await error_body(await admin.patch(path, json=changes), 400)
    assert await json_of(await admin.get(path)) == {
        k: v for k, v in created.items() if k != "client_secret"
    }


async def test_same_client_type_in_an_update_is_fine(admin):
    created = await _create(admin, SPA)
    path = f"{CLIENTS}/{created['client_id']}"
    updated = await json_of(await admin.patch(path, json={"client_type": "public"}))
    assert updated["client_type"] == "public"


# --- rotate, delete ----------------------------------------------------------------------


async def test_rotate_secret_invalidates_the_old_one(client, admin):
    created = await _create(admin, SERVICE)
    client_id, old = created["client_id"], created["client_secret"]
    response = await admin.post(f"{CLIENTS}/{client_id}/rotate-secret")
    body = await json_of(response)
    assert response.headers["Cache-Control"] == "no-store"
    assert set(body) == {"client_id", "client_secret"}
    assert body["client_id"] == client_id
    new = body["client_secret"]
    assert new != old
    failed = await error_body(await _client_credentials(client, client_id, old), 401)
    assert failed["error"] == "invalid_client"
    assert (await _client_credentials(client, client_id, new)).status_code == 200


async def test_delete_client(client, admin):
    created = await _create(admin, SERVICE)
    path = f"{CLIENTS}/{created['client_id']}"
    response = await admin.delete(path)
    assert response.status_code == 204
    assert await response.get_data() == b""
    await error_body(await admin.get(path), 404)
    await error_body(await admin.delete(path), 404)
    response = await _client_credentials(client, created["client_id"], created["client_secret"])
    assert (await error_body(response, 401))["error"] == "invalid_client"


async def test_built_in_client_can_be_edited_and_deleted(client, admin):
    path = f"{CLIENTS}/authly"
    shown = await json_of(await admin.get(path))
    assert shown["first_party"] is True
    renamed = await json_of(await admin.patch(path, json={"name": "Our login"}))
    assert renamed["name"] == "Our login"
    assert (await admin.delete(path)).status_code == 204
    # The JSON login falls back to the built-in definition.
    assert (await login(client)).status_code == 200


# --- scopes -----------------------------------------------------------------------------


async def test_list_scopes(admin):
    body = await json_of(await admin.get(SCOPES))
    names = {s["name"]: s for s in body["scopes"]}
    assert {"profile", "email", "offline_access", "admin"} <= set(names)
    assert names["profile"]["default"] is True
    assert set(names["admin"]) == {"name", "description", "default"}


async def test_create_and_delete_scope_updates_metadata(client, admin):
    before = await json_of(await client.get(METADATA))  # now cached
    assert "reports:read" not in before["scopes_supported"]
    response = await admin.post(
        SCOPES, json={"name": "reports:read", "description": "Read reports"}
    )
    created = await json_of(response, 201)
    assert created == {"name": "reports:read", "description": "Read reports", "default": False}
    after = await json_of(await client.get(METADATA))
    assert "reports:read" in after["scopes_supported"]
    listed = await json_of(await admin.get(SCOPES))
    assert created in listed["scopes"]
    assert (await admin.delete(f"{SCOPES}/reports:read")).status_code == 204
    final = await json_of(await client.get(METADATA))
    assert "reports:read" not in final["scopes_supported"]
    await error_body(await admin.delete(f"{SCOPES}/reports:read"), 404)


async def test_duplicate_scope_is_409(admin):
    body = {"name": "reports", "description": "Reports"}
    await json_of(await admin.post(SCOPES, json=body), 201)
    assert (await error_body(await admin.post(SCOPES, json=body), 409))["error"] == "conflict"
    response = await admin.post(SCOPES, json={"name": "email", "description": "again"})
    await error_body(response, 409)


async def test_scope_with_a_slash_round_trips(admin):
    await json_of(await admin.post(SCOPES, json={"name": "api/read", "description": "x"}), 201)
    assert (await admin.delete(f"{SCOPES}/api%2Fread")).status_code == 204
    names = [s["name"] for s in (await json_of(await admin.get(SCOPES)))["scopes"]]
    assert "api/read" not in names


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"description": "x"}, id="no-name"),
        pytest.param({"name": "reports"}, id="no-description"),
        pytest.param({"name": "reports", "description": ""}, id="empty-description"),
        pytest.param({"name": "reports", "description": "x" * 201}, id="long-description"),
        pytest.param({"name": "", "description": "x"}, id="empty-name"),
        pytest.param({"name": "two words", "description": "x"}, id="space"),
        pytest.param({"name": 'say"hi', "description": "x"}, id="quote"),
        pytest.param({"name": "back\\slash", "description": "x"}, id="backslash"),
        pytest.param({"name": "é", "description": "x"}, id="non-ascii"),
        pytest.param({"name": "x" * 65, "description": "x"}, id="long-name"),
        pytest.param({"name": 5, "description": "x"}, id="name-not-string"),
        pytest.param({"name": "r", "description": "x", "default": "yes"}, id="default-not-bool"),
        pytest.param({"name": "r", "description": "x", "extra": 1}, id="unknown-field"),
    ],
)
async def test_bad_scope_is_400(admin, body):
    assert (await error_body(await admin.post(SCOPES, json=body), 400))["error"] == (
        "invalid_request"
    )


async def test_built_in_and_in_use_scopes_cannot_be_deleted(admin):
    for name in ("profile", "email", "offline_access", "admin"):
        assert (await error_body(await admin.delete(f"{SCOPES}/{name}"), 409))["error"] == (
            "conflict"
        )
    await json_of(await admin.post(SCOPES, json={"name": "reports", "description": "R"}), 201)
    created = await _create(admin, {**SERVICE, "scopes": ["reports"]})
    body = await error_body(await admin.delete(f"{SCOPES}/reports"), 409)
    assert created["client_id"] in body["error_description"]
    path = f"{CLIENTS}/{created['client_id']}"
    await json_of(await admin.patch(path, json={"scopes": ["profile"]}))
    assert (await admin.delete(f"{SCOPES}/reports")).status_code == 204


async def test_default_scope_is_what_client_credentials_gets(client, admin):
    for name, default in (("reports", True), ("audit", False)):
        body = {"name": name, "description": name.title(), "default": default}
        await json_of(await admin.post(SCOPES, json=body), 201)
    created = await _create(admin, {**SERVICE, "scopes": ["reports", "email", "audit"]})
    response = await _client_credentials(client, created["client_id"], created["client_secret"])
    assert (await json_of(response))["scope"] == "email reports"


# --- no secrets leak --------------------------------------------------------------------


async def test_admin_responses_never_carry_a_secret_hash(app, admin):
    created = await _create(admin, SERVICE)
    row = await services_of(app).db.run(client_repo.get, created["client_id"])
    for response in (await admin.get(CLIENTS), await admin.get(f"{CLIENTS}/{row.client_id}")):
        text = await response.get_data(as_text=True)
        assert row.secret_hash not in text
        assert "secret_hash" not in text


async def test_a_client_chooses_its_id_token_algorithm(admin):
    created = await json_of(
        await admin.post(CLIENTS, json={**SERVICE, "id_token_signed_response_alg": "EdDSA"}), 201
    )
    assert created["id_token_signed_response_alg"] == "EdDSA"
    path = f"{CLIENTS}/{created['client_id']}"
    changed = await json_of(await admin.patch(path, json={"id_token_signed_response_alg": "ES256"}))
    assert changed["id_token_signed_response_alg"] == "ES256"
    refused = await admin.patch(path, json={"id_token_signed_response_alg": "HS256"})
    assert (await error_body(refused, 400))["error"] == "invalid_request"
    default = await json_of(await admin.post(CLIENTS, json=SERVICE), 201)
    assert default["id_token_signed_response_alg"] == "RS256"
