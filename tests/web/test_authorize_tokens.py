"""Codes from the authorization pages at the token endpoint: PKCE, replay, clients,
refresh (RFC 6749 §4.1.3, §6; RFC 7636 §4.6; RFC 9700 §4.5, §4.14)."""

from __future__ import annotations

import pytest

from authly.factory import create_app
from tests.conftest import services_of
from tests.web.browser import (
    PASSWORD,
    REDIRECT,
    TOKEN,
    USER,
    Browser,
    auth_params,
    exchange,
    pkce_pair,
    web_client,
)
from tests.web.helpers import basic, create_user, error_body, json_of, me, refresh


async def _code(browser: Browser, **overrides: str) -> tuple[str, str]:
    verifier, challenge = pkce_pair()
    result = await browser.code_for(auth_params(challenge, **overrides))
    return result["code"], verifier


async def _token_error(response, status: int, error: str) -> str:
    body = await error_body(response, status)
    assert body["error"] == error, body
    return body["error_description"]  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    "verifier",
    [None, "", "short", "x" * 129, "a" * 43 + "!", "wrong-verifier-" + "w" * 40],
)
async def test_wrong_or_missing_verifier_is_invalid_grant(browser, alice, verifier):
    code, _ = await _code(browser)
    data = {"grant_type": "authorization_code", "code": code, "client_id": "app"}
    data["redirect_uri"] = REDIRECT
    if verifier is not None:
        data["code_verifier"] = verifier
    response = await browser.client.post(TOKEN, form=data)
    await _token_error(response, 400, "invalid_grant")


async def test_another_requests_verifier_is_invalid_grant(browser, alice):
    code, _ = await _code(browser)
    _, other_verifier = await _code(browser)
    await exchange(browser.client, code, other_verifier, status=400)


async def test_code_replay_fails_and_revokes_what_it_issued(browser, alice):
    code, verifier = await _code(browser)
    tokens = await exchange(browser.client, code, verifier)
    bearer = f"Bearer {tokens['access_token']}"
    assert (await me(browser.client, bearer)).status_code == 200
    replay = await exchange(browser.client, code, verifier, status=400)
    assert replay["error"] == "invalid_grant"
    assert "already used" in replay["error_description"]
    await _token_error(await me(browser.client, bearer), 401, "invalid_token")
    await _token_error(
        await refresh(browser.client, tokens["refresh_token"], client_id="app"),
        400,
        "invalid_grant",
    )


async def test_code_used_by_another_client_fails(app, browser, alice):
    await web_client(app, client_id="other")
    code, verifier = await _code(browser)
    body = await exchange(browser.client, code, verifier, client_id="other", status=400)
    assert body["error"] == "invalid_grant"
    assert "another client" in body["error_description"]


async def test_code_with_another_redirect_uri_fails(app, browser):
    await web_client(app, redirect_uris=(REDIRECT, "https://app.example/other"))
    await create_user(app, USER, PASSWORD)
    code, verifier = await _code(browser)
    body = await exchange(
        browser.client, code, verifier, redirect_uri="https://app.example/other", status=400
    )
    assert body["error"] == "invalid_grant"


async def test_garbage_code_is_invalid_grant(browser, alice):
    _, verifier = pkce_pair()
    body = await exchange(browser.client, "no-such-code", verifier, status=400)
    assert body["error"] == "invalid_grant"


async def test_refresh_rotation_and_reuse_from_the_code_flow(browser, alice):
    code, verifier = await _code(browser)
    tokens = await exchange(browser.client, code, verifier)
    rotated = await json_of(await refresh(browser.client, tokens["refresh_token"], client_id="app"))
    assert rotated["refresh_token"] != tokens["refresh_token"]
    assert rotated["scope"] == "email profile"
    # The old token again: reuse, and the whole family (the new token too) is revoked.
    await _token_error(
        await refresh(browser.client, tokens["refresh_token"], client_id="app"),
        400,
        "invalid_grant",
    )
    await _token_error(
        await refresh(browser.client, rotated["refresh_token"], client_id="app"),
        400,
        "invalid_grant",
    )
    await _token_error(
        await me(browser.client, f"Bearer {rotated['access_token']}"), 401, "invalid_token"
    )


@pytest.mark.parametrize("scope", ["profile email offline_access", "admin", "profile payments"])
async def test_scope_escalation_on_refresh_is_refused(browser, alice, scope):
    code, verifier = await _code(browser)
    tokens = await exchange(browser.client, code, verifier)
    response = await refresh(browser.client, tokens["refresh_token"], client_id="app", scope=scope)
    await _token_error(response, 400, "invalid_scope")


async def test_refresh_may_narrow_scope(browser, alice):
    code, verifier = await _code(browser)
    tokens = await exchange(browser.client, code, verifier)
    narrowed = await json_of(
        await refresh(browser.client, tokens["refresh_token"], client_id="app", scope="email")
    )
    assert narrowed["scope"] == "email"


async def test_refresh_by_another_client_is_refused(app, browser, alice):
    await web_client(app, client_id="other")
    code, verifier = await _code(browser)
    tokens = await exchange(browser.client, code, verifier)
    await _token_error(
        await refresh(browser.client, tokens["refresh_token"], client_id="other"),
        400,
        "invalid_grant",
    )


async def test_confidential_client_with_basic_auth(app, browser):
    await web_client(
        app, client_id="conf", secret="conf-secret-value", auth_method="client_secret_basic"
    )
    await create_user(app, USER, PASSWORD)
    code, verifier = await _code(browser, client_id="conf")
    # Wrong secret: invalid_client (401) - and the code is not spent by it.
    response = await browser.client.post(
        TOKEN,
        form={
            "grant_type": "authorization_code",
            "code": code,
            "code_verifier": verifier,
            "redirect_uri": REDIRECT,
        },
        headers=basic("conf", "wrong-secret"),
    )
    await _token_error(response, 401, "invalid_client")
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    # No secret at all: also invalid_client.
    await exchange(browser.client, code, verifier, client_id="conf", status=401)
    tokens = await exchange(
        browser.client, code, verifier, client_id="", headers=basic("conf", "conf-secret-value")
    )
    assert tokens["scope"] == "email profile"


async def test_public_native_client_on_any_loopback_port(app, browser):
    """RFC 8252 §7.3: a loopback redirect URI matches on any port."""
    await web_client(app, client_id="native", redirect_uris=("http://127.0.0.1/callback",))
    await create_user(app, USER, PASSWORD)
    verifier, challenge = pkce_pair()
    redirect_uri = "http://127.0.0.1:53124/callback"
    result = await browser.code_for(
        auth_params(challenge, client_id="native", redirect_uri=redirect_uri)
    )
    tokens = await exchange(
        browser.client, result["code"], verifier, client_id="native", redirect_uri=redirect_uri
    )
    assert tokens["token_type"] == "Bearer"


async def test_offline_access_scope_flows_through(browser, alice):
    code, verifier = await _code(browser, scope="profile offline_access")
    tokens = await exchange(browser.client, code, verifier)
    assert tokens["scope"] == "offline_access profile"


# ---- across instances -----------------------------------------------------------------


@pytest.mark.redis
async def test_the_flow_moves_between_instances_on_redis(tmp_path, redis_server):
    """The pending request and the login session live in Redis: a flow started on one
    instance is finished on another (and the code is redeemed on a third view of it)."""
    from tests.supervisor_helpers import steady_redis_settings

    settings = steady_redis_settings(tmp_path, redis_server.url)
    async with create_app(settings).test_app() as one, create_app(settings).test_app() as two:
        await web_client(one)
        await create_user(one, USER, PASSWORD)
        verifier, challenge = pkce_pair()
        on_one, on_two = Browser(one), Browser(two)
        page = await on_one.authorize(auth_params(challenge))
        on_two.client.cookie_jar = on_one.client.cookie_jar  # the same browser
        page = await on_two.sign_in(page)
        assert "Allow access?" in await page.get_data(as_text=True)
        response = await on_one.consent(page)
        assert response.status_code == 303
        location = response.headers["Location"]
        code = location.split("code=")[1].split("&")[0]
        await exchange(on_two.client, code, verifier)
        assert services_of(one).sessions.backend_name == "redis"
