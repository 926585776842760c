"""The device authorization grant (RFC 8628) through the app: the device authorization
endpoint, polling the token endpoint (§3.4, §3.5), and what the tokens carry."""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
from joserfc import jwt

from authly.factory import create_app
from tests.conftest import ISSUER, services_of
from tests.support.fakes import ReadGate
from tests.web.browser import PASSWORD, USER
from tests.web.device_support import (
    DEVICE_AUTHORIZATION,
    DEVICE_GRANT,
    DeviceBrowser,
    device_client,
    poll,
    start,
)
from tests.web.helpers import basic, create_user, error_body, json_of, me, refresh, set_active

SECRET = "device-client-secret-value-1"


@pytest.fixture
async def alice(app: Any) -> Any:
    await device_client(app)
    return await create_user(app, USER, PASSWORD)


def claims_of(app: Any, token: str) -> dict[str, Any]:
    return jwt.decode(token, services_of(app).keys.keyset).claims


async def poll_error(client: Any, device_code: str, client_id: str = "tv", **kw: Any) -> str:
    body = await error_body(await poll(client, device_code, client_id, **kw), 400)
    return str(body["error"])


# ---- the device authorization endpoint ---------------------------------------------------


async def test_device_authorization_response(client: Any, alice: Any) -> None:
    response = await client.post(DEVICE_AUTHORIZATION, form={"client_id": "tv"})
    body = await json_of(response)
    assert set(body) == {
        "device_code",
        "user_code",
        "verification_uri",
        "verification_uri_complete",
        "expires_in",
        "interval",
    }
    assert len(body["device_code"]) == 43
    assert len(body["user_code"]) == 9
    assert body["user_code"][4] == "-"
    assert body["verification_uri"] == f"{ISSUER}/device"
    assert body["verification_uri_complete"] == f"{ISSUER}/device?user_code={body['user_code']}"
    assert (body["expires_in"], body["interval"]) == (600, 5)
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Pragma"] == "no-cache"


async def test_the_endpoint_is_in_both_discovery_documents(client: Any) -> None:
    for path in ("/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"):
        document = await json_of(await client.get(path))
        assert document["device_authorization_endpoint"] == f"{ISSUER}{DEVICE_AUTHORIZATION}"
        assert DEVICE_GRANT in document["grant_types_supported"]


async def test_scope_is_checked_against_the_client(app: Any, client: Any, alice: Any) -> None:
    response = await client.post(
        DEVICE_AUTHORIZATION, form={"client_id": "tv", "scope": "profile reports:read"}
    )
    assert (await error_body(response, 400))["error"] == "invalid_scope"
    response = await client.post(DEVICE_AUTHORIZATION, form={"client_id": "tv", "scope": "a\\b"})
    assert (await error_body(response, 400))["error"] == "invalid_scope"
    # Without scope: the registry's default scopes the client has.
    body = await start(client)
    await DeviceBrowser(app).approve(body["user_code"])
    tokens = await json_of(await poll(client, body["device_code"]))
    assert tokens["scope"] == "email profile"


@pytest.mark.parametrize(
    ("form", "headers", "status", "error"),
    [
        ({}, {}, 401, "invalid_client"),
        ({"client_id": "nobody"}, {}, 401, "invalid_client"),
        ({"client_id": "tv", "client_secret": "x"}, {}, 401, "invalid_client"),
        ({"client_id": "box"}, {}, 401, "invalid_client"),  # confidential, no secret
        ({}, basic("box", "wrong"), 401, "invalid_client"),
        ({"client_id": "web"}, {}, 400, "unauthorized_client"),
        ({"client_id": "tv", "scope": "x", "extra": "1"}, {}, 400, "invalid_scope"),
    ],
)
async def test_device_authorization_refusals(
    app: Any, client: Any, form: dict[str, str], headers: dict[str, str], status: int, error: str
) -> None:
    await device_client(app)
    await device_client(app, "box", secret=SECRET, auth_method="client_secret_basic")
    await device_client(
        app, "web", grant_types=("authorization_code",), redirect_uris=("https://w.example/cb",)
    )
    response = await client.post(DEVICE_AUTHORIZATION, form=form, headers=headers)
    assert (await error_body(response, status))["error"] == error


async def test_bad_bodies_are_json_errors(client: Any, alice: Any) -> None:
    response = await client.post(DEVICE_AUTHORIZATION, json={"client_id": "tv"})
    assert (await error_body(response, 415))["error"] == "invalid_request"
    response = await client.post(
        DEVICE_AUTHORIZATION,
        data="client_id=tv&client_id=tv",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert (await error_body(response, 400))["error"] == "invalid_request"
    response = await client.get(DEVICE_AUTHORIZATION)
    assert (await error_body(response, 405))["error"] == "method_not_allowed"


# ---- polling and the tokens --------------------------------------------------------------


async def test_pending_approve_tokens_once(app: Any, client: Any, alice: Any) -> None:
    body = await start(client, scope="openid profile offline_access")
    assert await poll_error(client, body["device_code"]) == "authorization_pending"
    started = time.time()
    await DeviceBrowser(app).approve(body["user_code"])
    response = await poll(client, body["device_code"])
    tokens = await json_of(response)
    assert response.headers["Cache-Control"] == "no-store"
    assert set(tokens) == {
        "access_token",
        "token_type",
        "expires_in",
        "refresh_token",
        "scope",
        "id_token",
    }
    assert tokens["scope"] == "offline_access openid profile"
    access = claims_of(app, tokens["access_token"])
    assert (access["sub"], access["client_id"]) == (alice.id, "tv")
    id_token = claims_of(app, tokens["id_token"])
    assert (id_token["sub"], id_token["aud"], id_token["iss"]) == (alice.id, "tv", ISSUER)
    assert started - 1 <= id_token["auth_time"] <= time.time()
    assert "nonce" not in id_token
    assert "sid" not in id_token  # not tied to the browser session that approved
    profile = await json_of(await me(client, f"Bearer {tokens['access_token']}"))
    assert profile["username"] == USER
    # Tokens exactly once; the refresh token works (with a new ID token).
    assert await poll_error(client, body["device_code"]) == "invalid_grant"
    renewed = await json_of(await refresh(client, tokens["refresh_token"], client_id="tv"))
    assert claims_of(app, renewed["id_token"])["sub"] == alice.id


async def test_no_refresh_token_without_the_grant(app: Any, client: Any) -> None:
    await device_client(app, grant_types=(DEVICE_GRANT,))
    await create_user(app, USER, PASSWORD)
    body = await start(client, scope="profile")
    await DeviceBrowser(app).approve(body["user_code"])
    tokens = await json_of(await poll(client, body["device_code"]))
    assert set(tokens) == {"access_token", "token_type", "expires_in", "scope"}


async def test_confidential_client_polls_with_its_secret(app: Any, client: Any) -> None:
    await device_client(app, "box", secret=SECRET, auth_method="client_secret_basic")
    await create_user(app, USER, PASSWORD)
    response = await client.post(DEVICE_AUTHORIZATION, form={}, headers=basic("box", SECRET))
    body = await json_of(response)
    await DeviceBrowser(app).approve(body["user_code"])
    wrong = await poll(client, body["device_code"], "", headers=basic("box", "wrong"))
    assert (await error_body(wrong, 401))["error"] == "invalid_client"
    tokens = await json_of(
        await poll(client, body["device_code"], "", headers=basic("box", SECRET))
    )
    assert claims_of(app, tokens["access_token"])["client_id"] == "box"


async def test_slow_down_adds_five_seconds(app: Any, client: Any, alice: Any) -> None:
    body = await start(client)
    assert await poll_error(client, body["device_code"]) == "authorization_pending"
    response = await poll(client, body["device_code"])
    error = await error_body(response, 400)
    assert error["error"] == "slow_down"
    assert "10 seconds" in error["error_description"]
    assert (await error_body(await poll(client, body["device_code"]), 400))[
        "error_description"
    ].endswith("15 seconds between requests.")


async def test_access_denied(app: Any, client: Any, alice: Any) -> None:
    body = await start(client)
    html = await DeviceBrowser(app).approve(body["user_code"], "deny")
    assert "Access denied" in html
    assert await poll_error(client, body["device_code"]) == "access_denied"
    assert await poll_error(client, body["device_code"]) == "access_denied"


async def _expire(app: Any, device_code: str) -> None:
    sessions = services_of(app).sessions
    key = "device:" + hashlib.sha256(device_code.encode()).hexdigest()
    data = await sessions.get(key)
    assert data is not None
    data["expires_at"] = repr(time.time() - 1)
    await sessions.set(key, data, 60)


async def test_expired_token(app: Any, client: Any, alice: Any) -> None:
    body = await start(client)
    await _expire(app, body["device_code"])
    assert await poll_error(client, body["device_code"]) == "expired_token"
    browser = DeviceBrowser(app)
    response = await browser.sign_in(await browser.open(body["user_code"]))
    assert "That code is not valid or has expired." in await response.get_data(as_text=True)


async def test_invalid_and_foreign_device_codes(app: Any, client: Any, alice: Any) -> None:
    await device_client(app, "radio")
    body = await start(client)
    assert await poll_error(client, body["device_code"], "radio") == "invalid_grant"
    for code in ("not-a-code", "A" * 43, "é" * 43):
        assert await poll_error(client, code) == "invalid_grant"
    missing = await client.post(
        "/api/v1/oauth/token", form={"grant_type": DEVICE_GRANT, "client_id": "tv"}
    )
    assert (await error_body(missing, 400))["error"] == "invalid_request"
    long = await poll(client, "x" * 129)
    assert (await error_body(long, 400))["error"] == "invalid_request"
    # The foreign poll neither spent nor paced the code for its client.
    assert await poll_error(client, body["device_code"]) == "authorization_pending"


async def test_a_client_without_the_grant_cannot_poll(app: Any, client: Any, alice: Any) -> None:
    body = await start(client)
    await device_client(
        app, "web", grant_types=("authorization_code",), redirect_uris=("https://w.example/cb",)
    )
    assert await poll_error(client, body["device_code"], "web") == "unauthorized_client"


async def test_a_user_disabled_after_approving(app: Any, client: Any, alice: Any) -> None:
    body = await start(client)
    await DeviceBrowser(app).approve(body["user_code"])
    await set_active(app, alice.id, False)
    assert await poll_error(client, body["device_code"]) == "invalid_grant"


async def test_admin_scope_from_a_non_admin_is_invalid_scope(
    app: Any, client: Any, alice: Any
) -> None:
    body = await start(client, scope="admin profile")
    html = await DeviceBrowser(app).approve(body["user_code"])
    assert "administrator access" in html
    assert await poll_error(client, body["device_code"]) == "invalid_scope"


# ---- two polls racing after approval -------------------------------------------------------


@pytest.fixture
async def race_app(backend_settings: Any) -> AsyncIterator[Any]:
    async with create_app(backend_settings).test_app() as test_app:
        await device_client(test_app)
        await create_user(test_app, USER, PASSWORD)
        yield test_app


@pytest.mark.both_stores
async def test_two_polls_after_approval_exactly_one_gets_tokens(race_app: Any) -> None:
    app = race_app
    client = app.test_client()
    body = await start(client, scope="openid profile offline_access")
    await DeviceBrowser(app).approve(body["user_code"])
    services = services_of(app)
    gate = ReadGate(services.sessions, 2, "device:")  # every poll sees the approval
    services.sessions = gate  # type: ignore[assignment]
    gate.closed = True
    responses: list[Any] = []

    async def one_poll() -> None:
        responses.append(await poll(client, body["device_code"]))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(one_poll)
        nursery.start_soon(one_poll)
    assert gate._arrived >= 2  # both polls read the approved grant before either took it
    assert sorted(r.status_code for r in responses) == [200, 400]
    winner = next(r for r in responses if r.status_code == 200)
    loser = next(r for r in responses if r.status_code == 400)
    assert (await error_body(loser, 400))["error"] == "invalid_grant"
    tokens = await json_of(winner)
    assert {"access_token", "refresh_token", "id_token"} <= set(tokens)
