"""GET/POST /api/v1/oauth/authorize and its pages (RFC 6749 §4.1, RFC 7636, RFC 9207)."""

from __future__ import annotations

import pytest

from authly.store import consents as consent_repo
from tests.conftest import ISSUER, services_of
from tests.html_forms import stylesheets
from tests.web.browser import (
    AUTHORIZE,
    PASSWORD,
    REDIRECT,
    USER,
    answer,
    auth_params,
    exchange,
    html_of,
    no_redirect,
    pkce_pair,
    web_client,
)
from tests.web.helpers import create_user, me

# ---- the whole flow ----------------------------------------------------------------------


async def test_login_consent_code_and_tokens(app, browser, alice):
    verifier, challenge = pkce_pair()
    response = await browser.authorize(auth_params(challenge))
    html = await html_of(response)
    assert "Sign in" in html
    assert "app" in html
    assert stylesheets(html) == ["/api/v1/oauth/static/style.css"]
    response = await browser.sign_in(response)
    html = await html_of(response)
    assert "Allow access?" in html
    assert "Your username and account details" in html  # from the scope registry
    assert "Your email address" in html
    assert f"Signed in as <strong>{USER}</strong>" in html
    result = answer(await browser.consent(response))
    assert set(result) == {"code", "state", "iss"}
    assert result["state"] == "st-123"
    assert result["iss"] == ISSUER
    tokens = await exchange(browser.client, result["code"], verifier)
    assert tokens["scope"] == "email profile"
    profile = await (await me(browser.client, f"Bearer {tokens['access_token']}")).get_json()
    assert profile["username"] == USER
    assert profile["id"] == alice.id


async def test_the_stylesheet_is_served(client):
    response = await client.get("/api/v1/oauth/static/style.css")
    assert response.status_code == 200
    assert response.mimetype == "text/css"


async def test_pages_are_not_cached_or_framed(browser, alice):
    _, challenge = pkce_pair()
    response = await browser.authorize(auth_params(challenge))
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["Referrer-Policy"] == "no-referrer"


async def test_post_to_authorize_works_like_get(browser, alice):
    verifier, challenge = pkce_pair()
    response = await browser.authorize(auth_params(challenge), method="POST")
    response = await browser.sign_in(response)
    result = answer(await browser.consent(response))
    assert result["state"] == "st-123"
    tokens = await exchange(browser.client, result["code"], verifier)
    assert tokens["token_type"] == "Bearer"


async def test_a_post_error_redirect_is_303(browser, alice):
    _, challenge = pkce_pair()
    response = await browser.authorize(auth_params(challenge, response_type="token"), method="POST")
    assert response.status_code == 303
    assert answer(response)["error"] == "unsupported_response_type"


async def test_post_to_authorize_needs_a_form_body(browser, alice):
    response = await browser.client.post(AUTHORIZE, json={"client_id": "app"})
    await html_of(response, 415)
    no_redirect(response)


async def test_logged_in_browser_with_remembered_consent_goes_straight_back(browser, alice):
    _, challenge = pkce_pair()
    await browser.code_for(auth_params(challenge))
    response = await browser.authorize(auth_params(challenge, state="second"))
    assert response.status_code == 302
    assert answer(response)["state"] == "second"


async def test_consent_is_remembered_per_scope_set(app, browser, alice):
    _, challenge = pkce_pair()
    await browser.code_for(auth_params(challenge, scope="profile"))
    db = services_of(app).db
    assert await db.run(consent_repo.has, alice.id, "app", "profile")
    # A different scope set asks again.
    response = await browser.authorize(auth_params(challenge, scope="profile email"))
    assert "Allow access?" in await html_of(response)
    # Order in the request does not matter: the set is what is remembered.
    await browser.consent(response)
    response = await browser.authorize(auth_params(challenge, scope="email profile"))
    assert response.status_code == 302
    assert "code" in answer(response)


async def test_first_party_clients_skip_consent(app, browser):
    await web_client(app, first_party=True)
    user = await create_user(app, USER, PASSWORD)
    _, challenge = pkce_pair()
    response = await browser.sign_in(await browser.authorize(auth_params(challenge)))
    assert response.status_code == 302
    assert "code" in answer(response)
    # Nothing was asked, so nothing is remembered.
    assert not await services_of(app).db.run(consent_repo.has, user.id, "app", "email profile")


async def test_consent_denied_is_access_denied(browser, alice):
    _, challenge = pkce_pair()
    page = await browser.sign_in(await browser.authorize(auth_params(challenge)))
    consent_form = await browser.form(page, "/authorize/consent")
    result = answer(await browser.submit(consent_form, "deny"))
    assert result["error"] == "access_denied"
    assert result["state"] == "st-123"
    assert result["iss"] == ISSUER
    assert "code" not in result
    # The request is answered: the same form cannot approve it afterwards.
    response = await browser.submit(consent_form, "approve")
    assert "expired or was already used" in await html_of(response, 400)
    no_redirect(response)


async def test_consent_form_is_single_use(browser, alice):
    _, challenge = pkce_pair()
    page = await browser.sign_in(await browser.authorize(auth_params(challenge)))
    consent_form = await browser.form(page, "/authorize/consent")
    assert "code" in answer(await browser.submit(consent_form, "approve"))
    again = await browser.submit(consent_form, "approve")
    await html_of(again, 400)
    no_redirect(again)


async def test_empty_state_is_not_echoed(browser, alice):
    _, challenge = pkce_pair()
    result = await browser.code_for(auth_params(challenge, state=None))
    assert set(result) == {"code", "iss"}


async def test_existing_query_of_the_redirect_uri_is_kept(app, browser):
    await web_client(app, client_id="q", redirect_uris=("https://app.example/cb?tenant=7",))
    await create_user(app, USER, PASSWORD)
    _, challenge = pkce_pair()
    params = auth_params(challenge, client_id="q", redirect_uri="https://app.example/cb?tenant=7")
    result = await browser.code_for(params)
    assert result["tenant"] == "7"
    assert "code" in result


async def test_state_with_special_characters_is_echoed_exactly(browser, alice):
    _, challenge = pkce_pair()
    state = "a b&c=d/é?#%"
    assert (await browser.code_for(auth_params(challenge, state=state)))["state"] == state


async def test_omitted_redirect_uri_uses_the_single_registered_one(browser, alice):
    verifier, challenge = pkce_pair()
    result = await browser.code_for(auth_params(challenge, redirect_uri=None))
    # It was not sent, so it must not be sent at the token endpoint either (§4.1.3).
    await exchange(browser.client, result["code"], verifier, redirect_uri=None)


async def test_admin_scope_needs_an_admin_user(browser, alice):
    _, challenge = pkce_pair()
    page = await browser.sign_in(await browser.authorize(auth_params(challenge, scope="admin")))
    result = answer(page)
    assert result["error"] == "invalid_scope"
    assert result["state"] == "st-123"


# ---- errors that must not redirect (RFC 6749 §4.1.2.1, first paragraph) --------------------


@pytest.mark.parametrize("client_id", [None, "", "nobody", "x" * 200])
async def test_unknown_client_is_an_html_page(browser, alice, client_id):
    _, challenge = pkce_pair()
    response = await browser.authorize(auth_params(challenge, client_id=client_id))
    html = await html_of(response, 400)
    assert "Unknown client" in html
    no_redirect(response)


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "https://evil.example/cb",
        "https://evil.example",
        "https://app.example/cb.evil.example",
        "https://app.example.evil.example/cb",
        "https://app.example/cb/../x",
        "https://app.example/cb/",
        "https://app.example/CB",
        "https://APP.example/cb",
        "https://app.example:8443/cb",
        "http://app.example/cb",
        "https://app.example/cb?next=https://evil.example",
        "https://app.example/cb#frag",
        "https://app.example/cb@evil.example",
        "https://evil.example@app.example/cb",
        "//evil.example/cb",
        "/cb",
        "javascript:alert(1)",
    ],
)
async def test_unregistered_redirect_uri_is_an_html_page(browser, alice, redirect_uri):
    _, challenge = pkce_pair()
    response = await browser.authorize(auth_params(challenge, redirect_uri=redirect_uri))
    html = await html_of(response, 400)
    assert "redirect_uri is not registered" in html
    assert "evil.example" not in html
    no_redirect(response)


NATIVE = "http://127.0.0.1/callback"


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "http://evil.example:9999\\@127.0.0.1/callback",  # the review's attack
        "http://evil.example:9999@127.0.0.1:5000/callback",
        "http://127.0.0.1:5000\\@evil.example/callback",
        "http://127.0.0.1:5000/callback#x",
        "http://127.0.0.1:99999/callback",
        "http://127.0.0.1:-1/callback",
        "http://127.0.0.1:abc/callback",
        "http://127.1:5000/callback",
        "http://127.0.0.1:5000/x/../callback",
    ],
)
async def test_loopback_redirect_uri_tricks_are_refused(app, browser, alice, redirect_uri):
    """Security review, defect 1: a public client with a loopback redirect URI, a user
    who already consented, and an attacker's link with its own PKCE challenge. Only the
    port may differ; anything a browser could read as another host is an HTML page."""
    await web_client(app, client_id="native", redirect_uris=(NATIVE,))
    verifier, challenge = pkce_pair()
    params = auth_params(challenge, client_id="native", redirect_uri=NATIVE)
    first = await browser.code_for(params)  # signs in and consents once
    await exchange(browser.client, first["code"], verifier, client_id="native", redirect_uri=NATIVE)
    _, attacker_challenge = pkce_pair()
    attack = auth_params(attacker_challenge, client_id="native", redirect_uri=redirect_uri)
    response = await browser.authorize(attack)
    html = await html_of(response, 400)
    assert "redirect_uri is not registered" in html
    no_redirect(response)
    # while the legitimate any-port form still gets a code without a click
    ok = await browser.authorize(
        auth_params(challenge, client_id="native", redirect_uri="http://127.0.0.1:5000/callback")
    )
    assert answer(ok, "http://127.0.0.1:5000/callback")["code"]


async def test_mismatch_wins_over_other_errors(browser, alice):
    """With a bad redirect URI even a redirectable error must not be redirected."""
    response = await browser.authorize(
        {"client_id": "app", "redirect_uri": "https://evil.example/cb", "response_type": "token"}
    )
    await html_of(response, 400)
    no_redirect(response)


async def test_omitted_redirect_uri_with_several_registered_is_a_page(app, browser):
    await web_client(app, client_id="multi", redirect_uris=(REDIRECT, "https://app.example/2"))
    _, challenge = pkce_pair()
    response = await browser.authorize(auth_params(challenge, client_id="multi", redirect_uri=None))
    assert "redirect_uri is required" in await html_of(response, 400)
    no_redirect(response)


@pytest.mark.parametrize("name", ["client_id", "redirect_uri"])
async def test_repeated_client_id_or_redirect_uri_is_a_page(browser, alice, name):
    _, challenge = pkce_pair()
    query = auth_params(challenge)
    response = await browser.client.get(
        AUTHORIZE, query_string=[*query.items(), (name, query[name])]
    )
    assert "repeated" in await html_of(response, 400)
    no_redirect(response)


async def test_markup_in_the_client_name_is_escaped(app, browser):
    await web_client(app, client_id="<script>alert(1)</script>")
    await create_user(app, USER, PASSWORD)
    _, challenge = pkce_pair()
    response = await browser.authorize(
        auth_params(challenge, client_id="<script>alert(1)</script>")
    )
    html = await html_of(response)
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


# ---- errors sent back to the client (RFC 6749 §4.1.2.1) ------------------------------------


@pytest.mark.parametrize(
    ("overrides", "error", "text"),
    [
        ({"response_type": None}, "invalid_request", "response_type is required"),
        ({"response_type": "token"}, "unsupported_response_type", "response_type=code"),
        ({"response_type": "code id_token"}, "unsupported_response_type", "response_type"),
        ({"code_challenge": None}, "invalid_request", "code_challenge is required"),
        ({"code_challenge_method": None}, "invalid_request", "S256"),
        ({"code_challenge_method": "plain"}, "invalid_request", "S256"),
        ({"code_challenge_method": "s256"}, "invalid_request", "S256"),
        ({"code_challenge": "short"}, "invalid_request", "43 base64url"),
        ({"scope": "profile payments"}, "invalid_scope", "payments"),
        ({"scope": 'profile "quoted"'}, "invalid_scope", "scope"),
        ({"state": "s" * 1025}, "invalid_request", "state is too long"),
    ],
)
async def test_redirectable_errors(browser, alice, overrides, error, text):
    _, challenge = pkce_pair()
    params = auth_params(challenge, **overrides)
    response = await browser.authorize(params)
    assert response.status_code == 302
    result = answer(response)
    assert result["error"] == error
    assert text in result["error_description"]
    assert result["iss"] == ISSUER
    if len(params.get("state", "")) <= 1024:
        assert result["state"] == "st-123"
    assert "code" not in result


async def test_plain_pkce_with_a_plain_verifier_as_challenge_is_refused(browser, alice):
    verifier, _ = pkce_pair()
    params = auth_params(verifier[:43], code_challenge_method="plain")
    result = answer(await browser.authorize(params))
    assert result["error"] == "invalid_request"


async def test_client_without_the_code_grant_is_unauthorized_client(app, browser):
    await web_client(app, client_id="cc", grant_types=("refresh_token",))
    _, challenge = pkce_pair()
    result = answer(await browser.authorize(auth_params(challenge, client_id="cc")))
    assert result["error"] == "unauthorized_client"


async def test_repeated_other_parameter_is_redirected_invalid_request(browser, alice):
    _, challenge = pkce_pair()
    query = auth_params(challenge)
    response = await browser.client.get(
        AUTHORIZE, query_string=[*query.items(), ("scope", "admin")]
    )
    result = answer(response)
    assert result["error"] == "invalid_request"
    assert "scope" in result["error_description"]


async def test_errors_come_before_any_login(browser, alice):
    """A bad request never shows the login page (or stores anything)."""
    _, challenge = pkce_pair()
    response = await browser.authorize(auth_params(challenge, code_challenge=None))
    assert response.status_code == 302
    assert "Set-Cookie" not in response.headers
