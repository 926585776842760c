"""OpenID Connect logout: RP-initiated logout at /oidc/logout (confirmation page, CSRF,
post-logout redirect) and back-channel logout tokens delivered to a loopback receiver."""

from __future__ import annotations

import time
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from authly.oidc.id_tokens import BACKCHANNEL_LOGOUT_EVENT, IdTokens, SignIn
from tests.conftest import ISSUER, services_of
from tests.web.admin_client import CLIENTS, AdminClient, session_handle
from tests.web.browser import (
    PASSWORD,
    REDIRECT,
    USER,
    Browser,
    exchange,
    html_of,
    no_redirect,
    pkce_pair,
    web_client,
)
from tests.web.helpers import create_user, error_body, json_of, refresh
from tests.web.logout_receiver import LogoutReceiver
from tests.web.test_oidc_core import oidc_params, verify_id_token

LOGOUT = "/oidc/logout"
BYE = "https://app.example/bye"
ALGS = ["RS256", "ES256", "EdDSA"]


async def _rp(app: Any, **fields: Any) -> Any:
    fields.setdefault("post_logout_redirect_uris", (BYE,))
    await web_client(
        app, client_id="rp", scopes=("openid", "profile", "email", "offline_access"), **fields
    )
    return await create_user(app, USER, PASSWORD)


@pytest.fixture
async def rp(app: Any) -> Any:
    return await _rp(app)


async def _sign_in(browser: Browser) -> dict[str, Any]:
    """Sign in and consent through the pages; the tokens of the code exchange."""
    verifier, challenge = pkce_pair()
    result = await browser.code_for(oidc_params(challenge))
    return await exchange(browser.client, result["code"], verifier, client_id="rp")


async def _signed_in(browser: Browser) -> bool:
    """Whether the authorization endpoint still knows the browser (no login page)."""
    _, challenge = pkce_pair()
    response = await browser.authorize(oidc_params(challenge))
    if response.status_code != 200:
        return True  # straight back to the client with a code
    return "/authorize/login" not in await html_of(response)


async def _refresh_works(browser: Browser, refresh_token: str) -> bool:
    response = await refresh(browser.client, refresh_token, client_id="rp")
    return bool(response.status_code == 200)


async def _logout(browser: Browser, method: str = "GET", **params: str) -> Any:
    if method == "POST":
        return await browser.client.post(LOGOUT, form=params)
    return await browser.client.get(LOGOUT, query_string=params)


# ---- discovery ---------------------------------------------------------------------------


async def test_discovery_advertises_logout(client: Any) -> None:
    oidc = await json_of(await client.get("/.well-known/openid-configuration"))
    assert oidc["end_session_endpoint"] == f"{ISSUER}/oidc/logout"
    assert oidc["backchannel_logout_supported"] is True
    assert oidc["backchannel_logout_session_supported"] is True


# ---- RP-initiated logout -------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_a_valid_hint_logs_out_and_returns_with_state(
    browser: Browser, rp: Any, method: str
) -> None:
    tokens = await _sign_in(browser)
    response = await _logout(
        browser,
        method,
        id_token_hint=tokens["id_token"],
        post_logout_redirect_uri=BYE,
        state="bye-state",
    )
    assert response.status_code == (302 if method == "GET" else 303)
    assert response.headers["Location"] == f"{BYE}?state=bye-state"
    assert "authly_session=;" in response.headers["Set-Cookie"]
    assert not await _signed_in(browser)  # the login page again
    assert not await _refresh_works(browser, tokens["refresh_token"])
    userinfo = await browser.client.get(
        "/oidc/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert userinfo.status_code == 401  # the family's access token is revoked too


async def test_an_expired_hint_is_still_accepted(browser: Browser, rp: Any, app: Any) -> None:
    tokens = await _sign_in(browser)
    claims = await verify_id_token(browser, tokens["id_token"])
    s = services_of(app)
    past = IdTokens(s.keys, issuer=ISSUER, ttl=60, now=lambda: time.time() - 3600)
    expired = past.issue(
        client_id="rp",
        alg="RS256",
        sign_in=SignIn(claims["sub"], claims["auth_time"], claims["sid"]),
        access_token=tokens["access_token"],
    )
    response = await _logout(browser, id_token_hint=expired)
    assert "You are signed out" in await html_of(response)
    assert not await _signed_in(browser)


async def test_an_unregistered_uri_is_an_error_page_and_nothing_ends(
    browser: Browser, rp: Any
) -> None:
    tokens = await _sign_in(browser)
    for uri in ("https://evil.example/bye", REDIRECT, BYE + "/", BYE + "?x=1"):
        response = await _logout(
            browser, id_token_hint=tokens["id_token"], post_logout_redirect_uri=uri
        )
        assert "not registered" in await html_of(response, 400)
        no_redirect(response)
        assert "Set-Cookie" not in response.headers
    assert await _signed_in(browser)
    assert await _refresh_works(browser, tokens["refresh_token"])


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({"post_logout_redirect_uri": BYE}, id="uri-without-client"),
        pytest.param({"client_id": "nobody", "post_logout_redirect_uri": BYE}, id="unknown"),
        pytest.param({"id_token_hint": "not-a-jwt"}, id="garbage-hint"),
        pytest.param({"id_token_hint": "TAMPER"}, id="tampered-hint"),
        pytest.param({"id_token_hint": "HINT", "client_id": "other"}, id="client-mismatch"),
    ],
)
async def test_bad_requests_are_error_pages(
    browser: Browser, rp: Any, params: dict[str, str]
) -> None:
    tokens = await _sign_in(browser)
    token = tokens["id_token"]
    head, body, signature = token.split(".")
    replace = {"HINT": token, "TAMPER": f"{head}.{body}x.{signature}"}
    sent = {k: replace.get(v, v) for k, v in params.items()}
    response = await _logout(browser, **sent)
    await html_of(response, 400)
    no_redirect(response)
    assert await _signed_in(browser)


async def test_an_access_token_is_not_an_id_token_hint(browser: Browser, rp: Any) -> None:
    tokens = await _sign_in(browser)
    response = await _logout(browser, id_token_hint=tokens["access_token"])
    await html_of(response, 400)
    assert await _signed_in(browser)


async def test_without_a_hint_the_user_confirms(browser: Browser, rp: Any) -> None:
    tokens = await _sign_in(browser)
    page = await _logout(browser, client_id="rp", post_logout_redirect_uri=BYE, state="s1")
    html = await html_of(page)
    assert "Sign out?" in html
    assert "<strong>rp</strong> asks" in html
    assert await _signed_in(browser)  # a GET alone changes nothing
    form = await browser.form(page, "/oidc/logout/confirm")
    # A forged POST (no token, or a made-up one) changes nothing.
    for forged in ({}, {"csrf": "A" * 43}):
        response = await browser.client.post("/oidc/logout/confirm", form=forged)
        await html_of(response, 400)
        no_redirect(response)
    assert await _signed_in(browser)
    assert await _refresh_works(browser, tokens["refresh_token"])
    response = await browser.submit(form)
    assert response.status_code == 303
    assert response.headers["Location"] == f"{BYE}?state=s1"
    assert not await _signed_in(browser)
    # The form is single use.
    again = await browser.submit(form)
    assert "You are signed out" in await html_of(again)


async def test_the_confirmation_belongs_to_the_browser_shown_it(
    app: Any, browser: Browser, rp: Any
) -> None:
    await _sign_in(browser)
    form = await browser.form(await _logout(browser), "/oidc/logout/confirm")
    other = Browser(app)  # another browser, signed in as the same user
    await _sign_in(other)
    response = await other.submit(form)
    await html_of(response, 400)
    assert await _signed_in(other)
    assert await _signed_in(browser)


async def test_a_hint_about_another_session_asks_first(app: Any, browser: Browser, rp: Any) -> None:
    old = await _sign_in(browser)
    other = Browser(app)
    await _sign_in(other)
    response = await _logout(other, id_token_hint=old["id_token"])
    assert "Sign out?" in await html_of(response)
    assert await _signed_in(other)


async def test_without_a_session_it_just_returns(browser: Browser, rp: Any) -> None:
    response = await _logout(browser, client_id="rp", post_logout_redirect_uri=BYE, state="x")
    assert response.headers["Location"] == f"{BYE}?state=x"
    response = await _logout(browser)
    assert "You are signed out" in await html_of(response)


# ---- back-channel logout -----------------------------------------------------------------


async def _jwks(browser: Browser) -> KeySet:
    return KeySet.import_key_set(await json_of(await browser.client.get("/.well-known/jwks.json")))


async def _metric(browser: Browser, result: str) -> float:
    text = await (await browser.client.get("/metrics")).get_data(as_text=True)
    line = f'authly_backchannel_logout_total{{result="{result}"}} '
    values = [float(row[len(line) :]) for row in text.splitlines() if row.startswith(line)]
    assert values, text
    return values[0]


@pytest.mark.parametrize("alg", ["RS256", "EdDSA"])
async def test_back_channel_logout_token_is_delivered_with_a_retry(
    app: Any, browser: Browser, nursery: Any, alg: str
) -> None:
    receiver = LogoutReceiver(statuses=[500, 200])
    await receiver.start(nursery)
    await _rp(
        app,
        backchannel_logout_uri=receiver.uri,
        backchannel_logout_session_required=True,
        id_token_signed_response_alg=alg,
    )
    tokens = await _sign_in(browser)
    keys = await _jwks(browser)
    id_claims = jwt.decode(tokens["id_token"], keys, algorithms=ALGS).claims
    response = await _logout(browser, id_token_hint=tokens["id_token"])
    assert "You are signed out" in await html_of(response)  # answered before delivery

    first, second = await receiver.next(), await receiver.next()
    assert (first.status, second.status) == (500, 200)
    for received in (first, second):
        assert received.method == "POST"
        assert received.path == "/backchannel-logout"
        assert received.headers["content-type"] == "application/x-www-form-urlencoded"
    assert first.form == second.form  # the same token, retried
    (token,) = second.form["logout_token"]
    decoded = jwt.decode(token, keys, algorithms=ALGS)
    assert decoded.header["typ"] == "logout+jwt"
    assert decoded.header["alg"] == alg
    claims = decoded.claims
    assert claims["iss"] == ISSUER
    assert claims["aud"] == "rp"
    assert claims["sub"] == id_claims["sub"]
    assert claims["sid"] == id_claims["sid"]
    assert claims["events"] == {BACKCHANNEL_LOGOUT_EVENT: {}}
    assert claims["jti"]
    assert claims["iat"] <= claims["exp"]
    assert "nonce" not in claims

    await services_of(app).backchannel.wait_settled(1)
    assert await _metric(browser, "delivered") == 1
    assert await _metric(browser, "failed") == 0


async def test_a_refusing_receiver_is_counted_as_failed(
    app: Any, browser: Browser, nursery: Any
) -> None:
    receiver = LogoutReceiver(statuses=[400])
    await receiver.start(nursery)
    await _rp(app, backchannel_logout_uri=receiver.uri)
    tokens = await _sign_in(browser)
    await _logout(browser, id_token_hint=tokens["id_token"])
    assert (await receiver.next()).status == 400  # 4xx: not retried
    await services_of(app).backchannel.wait_settled(1)
    assert await _metric(browser, "failed") == 1


async def test_clients_without_a_backchannel_uri_get_nothing(
    app: Any, browser: Browser, rp: Any
) -> None:
    tokens = await _sign_in(browser)
    await _logout(browser, id_token_hint=tokens["id_token"])
    assert services_of(app).backchannel.settled == 0


# ---- registration --------------------------------------------------------------------------


async def test_admin_api_registers_the_logout_fields(client: Any) -> None:
    admin = AdminClient(client, await session_handle(client))
    body = {
        "name": "RP",
        "client_type": "public",
        "redirect_uris": ["https://rp.example/cb"],
        "post_logout_redirect_uris": ["https://rp.example/bye", "http://127.0.0.1/bye"],
        "backchannel_logout_uri": "https://rp.example/bc",
        "backchannel_logout_session_required": True,
    }
    created = await json_of(await admin.post(CLIENTS, json=body), 201)
    assert created["post_logout_redirect_uris"] == body["post_logout_redirect_uris"]
    assert created["backchannel_logout_uri"] == "https://rp.example/bc"
    assert created["backchannel_logout_session_required"] is True
    path = f"{CLIENTS}/{created['client_id']}"
    changed = await json_of(await admin.patch(path, json={"backchannel_logout_uri": None}))
    assert changed["backchannel_logout_uri"] is None
    assert changed["post_logout_redirect_uris"] == body["post_logout_redirect_uris"]
    for bad in (
        {"post_logout_redirect_uris": ["https://rp.example/bye#frag"]},
        {"post_logout_redirect_uris": ["http://rp.example/bye"]},
        {"post_logout_redirect_uris": "https://rp.example/bye"},
        {"backchannel_logout_uri": "http://rp.example/bc"},
        {"backchannel_logout_uri": "com.example.app:/bc"},
        {"backchannel_logout_uri": 5},
        {"backchannel_logout_session_required": "yes"},
    ):
        refused = await admin.patch(path, json=bad)
        assert (await error_body(refused, 400))["error"] == "invalid_request", bad
