"""RFC 7592 through the app: read, replace and delete a dynamically registered client at
its registration_client_uri with its registration access token; and what a token does
not open."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import services_of
from tests.web.dcr_support import REGISTER, WEB, bearer, manage, register
from tests.web.helpers import basic, error_body, from_ip, json_of, running_app


@pytest.fixture
async def registered(open_app: Any) -> dict[str, Any]:
    body = {**WEB, "grant_types": ["authorization_code", "refresh_token"]}
    document: dict[str, Any] = await json_of(await register(open_app.test_client(), body), 201)
    return document


def _bad_token_answer(response: Any) -> None:
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


async def test_read(open_app: Any, registered: dict[str, Any]):
    response = await manage(open_app.test_client(), "GET", registered)
    document = await json_of(response)
    assert response.headers["Cache-Control"] == "no-store"
    assert "client_secret" not in document  # shown once, at registration
    expected = {k: v for k, v in registered.items() if k != "client_secret"}
    assert document == expected


async def test_replace(open_app: Any, registered: dict[str, Any]):
    client = open_app.test_client()
    # What the client got back, changed: RFC 7592 §2.2 allows the server-provided
    # fields to come back (they are ignored), and the secret if it is the current one.
    body = {
        **registered,
        "client_name": "Report Viewer 2",
        "redirect_uris": ["https://app.example/cb", "https://app.example/cb2"],
        "scope": "openid profile",
        "post_logout_redirect_uris": ["https://app.example/bye"],
    }
    response = await manage(client, "PUT", registered, json=body)
    document = await json_of(response)
    assert response.headers["Cache-Control"] == "no-store"
    assert document["client_name"] == "Report Viewer 2"
    assert document["redirect_uris"] == ["https://app.example/cb", "https://app.example/cb2"]
    assert document["scope"] == "openid profile"
    assert document["post_logout_redirect_uris"] == ["https://app.example/bye"]
    assert "client_secret" not in document  # unchanged, so not shown
    assert document["registration_access_token"] == registered["registration_access_token"]
    # Omitted members are reset (replace, not merge): grant types back to the default.
    slim = {"client_id": registered["client_id"], "redirect_uris": ["https://app.example/cb"]}
    document = await json_of(await manage(client, "PUT", registered, json=slim))
    assert document["grant_types"] == ["authorization_code"]
    assert document["client_name"] == f"Client {registered['client_id']}"
    # The secret still authenticates it: the grant, not the client, is refused.
    headers = basic(registered["client_id"], registered["client_secret"])
    answer = await client.post(
        "/api/v1/oauth/token", form={"grant_type": "client_credentials"}, headers=headers
    )
    assert (await error_body(answer, 400))["error"] == "unauthorized_client"


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"redirect_uris": ["http://app.example/cb"]}, "invalid_redirect_uri"),
        ({"client_id": "someone-else"}, "invalid_client_metadata"),
        ({"client_secret": "chosen-by-the-client"}, "invalid_client_metadata"),
        ({"token_endpoint_auth_method": "none"}, "invalid_client_metadata"),
        ({"scope": "admin"}, "invalid_client_metadata"),
    ],
)
async def test_refused_replacements(
    open_app: Any, registered: dict[str, Any], change: dict[str, Any], error: str
):
    client = open_app.test_client()
    body = {**registered, **change}
    response = await manage(client, "PUT", registered, json=body)
    assert (await error_body(response, 400))["error"] == error
    unchanged = await json_of(await manage(client, "GET", registered))
    assert unchanged["redirect_uris"] == registered["redirect_uris"]


async def test_replace_without_client_id(open_app: Any, registered: dict[str, Any]):
    body = {k: v for k, v in registered.items() if k != "client_id"}
    response = await manage(open_app.test_client(), "PUT", registered, json=body)
    assert (await error_body(response, 400))["error"] == "invalid_client_metadata"


async def test_delete(open_app: Any, registered: dict[str, Any]):
    client = open_app.test_client()
    response = await manage(client, "DELETE", registered)
    assert response.status_code == 204
    assert await response.get_data() == b""
    for method in ("GET", "DELETE"):
        response = await manage(client, method, registered)
        assert (await error_body(response, 401))["error"] == "invalid_token"
    headers = basic(registered["client_id"], registered["client_secret"])
    answer = await client.post(
        "/api/v1/oauth/token", form={"grant_type": "client_credentials"}, headers=headers
    )
    assert (await error_body(answer, 401))["error"] == "invalid_client"


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
async def test_wrong_or_missing_token(open_app: Any, registered: dict[str, Any], method: str):
    client = open_app.test_client()
    other = await json_of(await register(client), 201)
    kwargs: dict[str, Any] = {"json": registered} if method == "PUT" else {}
    response = await manage(client, method, registered, headers={"X-None": "1"}, **kwargs)
    assert (await error_body(response, 401))["error"] == "invalid_token"
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="authly"'
    for token in (other["registration_access_token"], "reg_wrong", "eyJhbGciOi.x.y"):
        response = await manage(client, method, registered, headers=bearer(token), **kwargs)
        assert (await error_body(response, 401))["error"] == "invalid_token"
        _bad_token_answer(response)
    assert (await manage(client, "GET", registered)).status_code == 200  # untouched


async def test_operator_clients_have_no_registration_token(open_app: Any):
    client = open_app.test_client()
    for client_id in ("authly", "unknown-client"):
        response = await client.get(
            f"{REGISTER}/{client_id}", headers=bearer("reg_x"), scope_base=from_ip("127.0.0.1")
        )
        assert (await error_body(response, 401))["error"] == "invalid_token"


async def test_management_outlives_closing_registration(settings_factory: Any):
    opened = settings_factory(registration="open")
    async with running_app(opened) as app:
        document = await json_of(await register(app.test_client()), 201)
    async with running_app(opened.replace(registration="closed")) as app:
        client = app.test_client()
        await error_body(await register(client), 404)
        assert (await manage(client, "GET", document)).status_code == 200
        assert (await manage(client, "DELETE", document)).status_code == 204


async def test_registration_token_is_kept_hashed(open_app: Any, registered: dict[str, Any]):
    def column(conn: Any) -> Any:
        return conn.execute(
            "SELECT registration_token_hash FROM clients WHERE client_id = ?",
            (registered["client_id"],),
        ).fetchone()[0]

    stored = await services_of(open_app).db.run(column)
    assert stored
    assert registered["registration_access_token"] not in stored
    assert len(stored) == 64  # SHA-256, hex
