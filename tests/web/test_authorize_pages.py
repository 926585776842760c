"""The authorization pages: login (rate limit, sessions), cookies and CSRF protection."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest

from authly.oauth.pending import binding_of
from authly.store import consents as consent_repo
from tests.conftest import services_of
from tests.html_forms import parse_forms
from tests.web.browser import (
    AUTHORIZE,
    PASSWORD,
    USER,
    Browser,
    answer,
    auth_params,
    exchange,
    html_of,
    no_redirect,
    pkce_pair,
    web_client,
)
from tests.web.helpers import create_user, me, running_app, set_active

# ---- login page --------------------------------------------------------------------------


async def test_wrong_password_shows_the_form_again(browser, alice):
    _, challenge = pkce_pair()
    page = await browser.authorize(auth_params(challenge))
    login = await browser.form(page, "/authorize/login")
    response = await browser.submit(login, username=USER, password="wrong-password")
    html = await html_of(response, 401)
    assert "Invalid username or password." in html
    retry = parse_forms(html)[0]
    assert retry.fields["username"] == USER
    assert retry.fields["password"] == ""
    assert "authly_session" not in response.headers.get("Set-Cookie", "")
    # The same request can still be completed.
    response = await browser.submit(retry, password=PASSWORD)
    assert response.status_code == 303


async def test_unknown_user_gets_the_same_message(browser, alice):
    _, challenge = pkce_pair()
    login = await browser.form(await browser.authorize(auth_params(challenge)), "/authorize/login")
    response = await browser.submit(login, username="mallory", password="whatever-pass")
    assert "Invalid username or password." in await html_of(response, 401)


async def test_disabled_user_cannot_sign_in(app, browser, alice):
    await set_active(app, alice.id, False)
    _, challenge = pkce_pair()
    login = await browser.form(await browser.authorize(auth_params(challenge)), "/authorize/login")
    response = await browser.submit(login, username=USER, password=PASSWORD)
    assert "Invalid username or password." in await html_of(response, 401)


@pytest.mark.parametrize("fields", [{"username": ""}, {"password": ""}, {"username": "  "}])
async def test_empty_credentials_are_400(browser, alice, fields):
    _, challenge = pkce_pair()
    login = await browser.form(await browser.authorize(auth_params(challenge)), "/authorize/login")
    values = {"username": USER, "password": PASSWORD, **fields}
    response = await browser.submit(login, **values)
    assert "Enter your username and password." in await html_of(response, 400)


async def test_login_page_is_rate_limited(browser, alice, settings):
    _, challenge = pkce_pair()
    login = await browser.form(await browser.authorize(auth_params(challenge)), "/authorize/login")
    for _ in range(settings.login_rate_limit):
        response = await browser.submit(login, username=USER, password="wrong-password")
        await html_of(response, 401)
    response = await browser.submit(login, username=USER, password=PASSWORD)
    html = await html_of(response, 429)
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= settings.login_rate_window
    assert re.search(rf"Try again in {retry_after} seconds", html)
    assert "authly_session" not in response.headers.get("Set-Cookie", "")


async def test_login_replaces_an_existing_session(browser, alice):
    _, challenge = pkce_pair()
    await browser.code_for(auth_params(challenge))
    first = _cookie(browser, "authly_session")
    # Sign in again through "not you?": a new session id, the old one ended.
    page = await browser.authorize(auth_params(challenge, scope="profile"))
    switch = await browser.form(page, "/authorize/logout")
    login_page = await browser.follow(await browser.submit(switch))
    assert "Sign in" in await html_of(login_page)
    assert _cookie(browser, "authly_session") is None
    await browser.sign_in(login_page)
    second = _cookie(browser, "authly_session")
    assert second is not None
    assert second != first
    assert await services_of(browser.app).sessions.get("browser:" + first) is None


async def test_sign_in_as_someone_else(app, browser, alice):
    await create_user(app, "bob", "bob-password-1")
    verifier, challenge = pkce_pair()
    page = await browser.sign_in(await browser.authorize(auth_params(challenge)))
    assert "Signed in as <strong>alice</strong>" in await html_of(page)
    switch = await browser.form(page, "/authorize/logout")
    login_page = await browser.follow(await browser.submit(switch))
    page = await browser.sign_in(login_page, "bob", "bob-password-1")
    assert "Signed in as <strong>bob</strong>" in await html_of(page)
    result = answer(await browser.consent(page))
    tokens = await exchange(browser.client, result["code"], verifier)
    profile = await (await me(browser.client, f"Bearer {tokens['access_token']}")).get_json()
    assert profile["username"] == "bob"


async def test_a_disabled_users_session_ends(app, browser, alice):
    _, challenge = pkce_pair()
    await browser.code_for(auth_params(challenge))
    await set_active(app, alice.id, False)
    response = await browser.authorize(auth_params(challenge))
    assert "Sign in" in await html_of(response)


async def test_consent_from_another_user_asks_again(app, browser, alice):
    """The consent page was shown to alice; if bob signs in meanwhile (another tab),
    alice's consent form must not approve for bob."""
    await create_user(app, "bob", "bob-password-1")
    _, challenge = pkce_pair()
    page = await browser.sign_in(await browser.authorize(auth_params(challenge)))
    consent_form = await browser.form(page, "/authorize/consent")
    other_tab = await browser.authorize(auth_params(challenge, scope="profile"))
    switch = await browser.form(other_tab, "/authorize/logout")
    await browser.sign_in(
        await browser.follow(await browser.submit(switch)), "bob", "bob-password-1"
    )
    response = await browser.submit(consent_form, "approve")
    assert response.status_code == 303
    page = await browser.follow(response)
    assert "Signed in as <strong>bob</strong>" in await html_of(page)


# ---- cookies -----------------------------------------------------------------------------


def _cookie(browser: Browser, name: str) -> str | None:
    for cookie in browser.client.cookie_jar:
        if cookie.name == name:
            return cookie.value  # type: ignore[no-any-return]
    return None


def _set_cookie(response, name: str) -> str:
    headers = [v for v in response.headers.get_all("Set-Cookie") if v.startswith(name + "=")]
    assert len(headers) == 1, headers
    return headers[0]


def _attributes(header: str) -> set[str]:
    return {part.strip().split("=")[0].lower() for part in header.split(";")[1:]}


async def _login_response(browser: Browser):
    _, challenge = pkce_pair()
    page = await browser.authorize(auth_params(challenge))
    login = await browser.form(page, "/authorize/login")
    return page, await browser.submit(login, username=USER, password=PASSWORD)


async def test_cookies_are_httponly_lax_and_not_secure_on_http(browser, alice):
    page, response = await _login_response(browser)
    binding = _set_cookie(page, "authly_browser")
    assert {"httponly", "samesite", "path"} <= _attributes(binding)
    assert "SameSite=Lax" in binding
    assert "Path=/api/v1/oauth/authorize" in binding
    assert "secure" not in _attributes(binding)
    session = _set_cookie(response, "authly_session")
    assert {"httponly", "samesite", "path", "max-age"} <= _attributes(session)
    assert "SameSite=Lax" in session
    assert "Path=/;" in session + ";"
    assert "Max-Age=28800" in session
    assert "secure" not in _attributes(session)


async def test_cookies_are_secure_when_the_issuer_is_https(settings_factory):
    settings = settings_factory(issuer="https://login.example")
    async with running_app(settings) as app:
        await web_client(app)
        await create_user(app, USER, PASSWORD)
        browser = Browser(app)
        page, response = await _login_response(browser)
        assert "secure" in _attributes(_set_cookie(page, "authly_browser"))
        session = _set_cookie(response, "authly_session")
        assert {"secure", "httponly", "samesite"} <= _attributes(session)
        assert "SameSite=Lax" in session


async def test_session_cookie_value_is_not_the_backend_key(browser, alice):
    await _login_response(browser)
    value = _cookie(browser, "authly_session")
    assert value is not None
    sessions = services_of(browser.app).sessions
    assert await sessions.get(value) is None
    assert await sessions.get("browser:" + value) is None


# ---- CSRF --------------------------------------------------------------------------------


async def _login_form(browser: Browser):
    _, challenge = pkce_pair()
    return await browser.form(await browser.authorize(auth_params(challenge)), "/authorize/login")


@pytest.mark.parametrize(
    "change",
    [
        {"csrf": ""},
        {"csrf": "A" * 43},
        {"csrf": "not-even-the-right-shape"},
        {"request_id": ""},
        {"request_id": "B" * 43},
    ],
)
async def test_login_without_a_valid_csrf_token_is_refused(browser, alice, change):
    login = await _login_form(browser)
    response = await browser.submit(login, username=USER, password=PASSWORD, **change)
    await html_of(response, 400)
    assert "Set-Cookie" not in response.headers
    no_redirect(response)


async def test_login_with_the_csrf_field_missing_is_refused(browser, alice):
    login = await _login_form(browser)
    values = login.values(username=USER, password=PASSWORD)
    del values["csrf"]
    response = await browser.client.post(login.action, form=values)
    assert "could not be verified" in await html_of(response, 400)
    assert "Set-Cookie" not in response.headers


async def test_a_form_posted_from_another_browser_is_refused(app, browser, alice, settings):
    """Login CSRF: an attacker's own request id and token, posted by the victim's
    browser (which lacks the attacker's binding cookie), change nothing."""
    attacker_form = await _login_form(Browser(app))
    victim = Browser(app)
    await _login_form(victim)  # the victim has a binding cookie of its own
    response = await victim.submit(attacker_form, username=USER, password=PASSWORD)
    await html_of(response, 400)
    assert _cookie(victim, "authly_session") is None
    # No failed attempt was counted either.
    limiter = services_of(app).rate_limit
    decision = await limiter.check_rate_limit(
        f"login:user:{USER}", settings.login_rate_limit, settings.login_rate_window
    )
    assert decision.remaining == settings.login_rate_limit - 1


async def test_a_form_without_the_binding_cookie_is_refused(app, browser, alice):
    login = await _login_form(browser)
    cookieless = app.test_client()  # a fresh jar: no binding cookie
    response = await cookieless.post(
        login.action, form=login.values(username=USER, password=PASSWORD)
    )
    await html_of(response, 400)


async def test_consent_without_csrf_changes_nothing(app, browser, alice):
    _, challenge = pkce_pair()
    page = await browser.sign_in(await browser.authorize(auth_params(challenge)))
    consent_form = await browser.form(page, "/authorize/consent")
    for change in ({"csrf": ""}, {"csrf": "C" * 43}):
        response = await browser.submit(consent_form, "approve", **change)
        await html_of(response, 400)
        no_redirect(response)
    assert not await services_of(app).db.run(consent_repo.has, alice.id, "app", "email profile")
    # The genuine form still works.
    assert "code" in answer(await browser.submit(consent_form, "approve"))


async def test_consent_without_a_decision_is_400(browser, alice):
    _, challenge = pkce_pair()
    page = await browser.sign_in(await browser.authorize(auth_params(challenge)))
    consent_form = await browser.form(page, "/authorize/consent")
    response = await browser.client.post(consent_form.action, form=consent_form.values())
    assert "Choose Allow or Deny" in await html_of(response, 400)


async def test_continue_needs_the_same_browser(app, browser, alice):
    login = await _login_form(browser)
    url = f"{AUTHORIZE}/continue?request={login.fields['request_id']}"
    assert (await browser.client.get(url)).status_code == 200
    other = Browser(app)
    await _login_form(other)
    await html_of(await other.client.get(url), 400)


@pytest.mark.parametrize("request_id", ["", "x", "D" * 43, "../../etc"])
async def test_unknown_request_ids_are_400_pages(browser, alice, request_id):
    await _login_form(browser)
    response = await browser.client.get(
        f"{AUTHORIZE}/continue", query_string={"request": request_id}
    )
    assert "expired" in await html_of(response, 400)


async def test_expired_pending_request(app, browser, alice):
    login = await _login_form(browser)
    await services_of(app).sessions.delete("authz:" + login.fields["request_id"])
    response = await browser.submit(login, username=USER, password=PASSWORD)
    assert "expired or was already used" in await html_of(response, 400)


async def test_pending_request_is_bound_to_the_binding_cookie(app, browser, alice):
    login = await _login_form(browser)
    stored = await services_of(app).sessions.get("authz:" + login.fields["request_id"])
    assert stored is not None
    assert stored["binding"] == binding_of(_cookie(browser, "authly_browser"))
    assert stored["csrf"] == login.fields["csrf"]
    assert stored["state"] == "st-123"


@pytest.mark.parametrize("path", ["/authorize/login", "/authorize/consent", "/authorize/logout"])
async def test_form_endpoints_refuse_bad_bodies_with_pages(client, path):
    url = "/api/v1/oauth" + path
    response = await client.post(url, data=b"\xff\xfe", headers={"Content-Type": "text/plain"})
    await html_of(response, 415)
    response = await client.post(
        url, data=b"csrf=%ff", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    await html_of(response, 400)
    response = await client.post(
        url, data=b"a=1&a=2", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    await html_of(response, 400)


async def test_wrong_method_is_405(client):
    response = await client.get("/api/v1/oauth/authorize/login")
    assert response.status_code == 405


async def test_redirect_location_is_absolute_and_well_formed(browser, alice):
    _, challenge = pkce_pair()
    response = await browser.authorize(auth_params(challenge, response_type="token"))
    parts = urlsplit(response.headers["Location"])
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "app.example", "/cb")
