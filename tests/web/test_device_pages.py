"""The device verification page (RFC 8628 §3.3): sign-in with the authorization pages'
browser session, the code confirmation, CSRF, the guess limit and the messages."""

from __future__ import annotations

from typing import Any

import pytest

from tests.html_forms import form_posting_to, parse_forms, stylesheets
from tests.web.browser import PASSWORD, USER, Browser, auth_params, html_of, pkce_pair, web_client
from tests.web.device_support import VERIFY, DeviceBrowser, device_client, poll, start
from tests.web.helpers import create_user, error_body, from_ip, running_app

UNKNOWN = "That code is not valid or has expired."


@pytest.fixture
async def alice(app: Any) -> Any:
    await device_client(app)
    return await create_user(app, USER, PASSWORD)


@pytest.fixture
def browser(app: Any) -> DeviceBrowser:
    return DeviceBrowser(app)


def other_code(user_code: str) -> str:
    return "BBBB-BBBB" if user_code != "BBBB-BBBB" else "CCCC-CCCC"


async def pending(client: Any, device_code: str) -> bool:
    response = await poll(client, device_code)
    return (await response.get_json())["error"] in ("authorization_pending", "slow_down")


# ---- the happy path ----------------------------------------------------------------------


async def test_complete_uri_sign_in_confirm_and_allow(
    app: Any, browser: DeviceBrowser, alice: Any
) -> None:
    body = await start(browser.client, scope="openid profile email")
    response = await browser.open(body["user_code"])
    html = await html_of(response)
    assert "<h1>Sign in</h1>" in html
    assert "to connect a device" in html
    assert stylesheets(html) == ["/api/v1/oauth/static/style.css"]
    assert "<script" not in html
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("authly_device=")
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Path=/device" in cookie
    assert "Secure" not in cookie  # the test issuer is http

    confirm = await html_of(await browser.sign_in(response))
    assert "Connect a device?" in confirm
    assert f"<code>{body['user_code']}</code>" in confirm
    assert "Living-room TV" in confirm
    assert "Your username and account details" in confirm  # from the scope registry
    assert f"Signed in as <strong>{USER}</strong>" in confirm
    assert await pending(browser.client, body["device_code"])

    done = await html_of(await browser.decide(await browser.open(body["user_code"])))
    assert "Device connected" in done
    assert "Living-room TV can now access your account." in done
    tokens = await (await poll(browser.client, body["device_code"])).get_json()
    assert tokens["scope"] == "email openid profile"


async def test_entering_the_code_by_hand(browser: DeviceBrowser, alice: Any) -> None:
    body = await start(browser.client)
    entry = await browser.sign_in(await browser.open())
    html = await html_of(entry)
    assert "Enter the code shown on your device." in html
    form = form_posting_to(html, VERIFY)
    assert form.method == "get"
    typed = " " + body["user_code"].lower().replace("-", " ") + " "
    confirm = await html_of(await browser.submit(form, user_code=typed))
    assert f"<code>{body['user_code']}</code>" in confirm
    done = await html_of(await browser.decide(await browser.open(body["user_code"]), "deny"))
    assert "Access denied" in done
    assert "was refused access" in done


async def test_one_sign_in_for_the_authorize_pages_and_the_device_page(
    app: Any, alice: Any
) -> None:
    await web_client(app)
    browser = Browser(app)  # signs in on the authorization pages ...
    _, challenge = pkce_pair()
    await browser.sign_in(await browser.authorize(auth_params(challenge)))
    body = await start(browser.client)
    response = await browser.client.get(VERIFY, query_string={"user_code": body["user_code"]})
    assert "Connect a device?" in await html_of(response)  # ... and is signed in here


# ---- codes that do not work ------------------------------------------------------------------


async def test_unknown_and_malformed_codes(browser: DeviceBrowser, alice: Any) -> None:
    body = await start(browser.client)
    await browser.sign_in(await browser.open())
    html = await html_of(await browser.open(other_code(body["user_code"])), 400)
    assert UNKNOWN in html
    assert "Check the code shown on your device" in html
    assert form_posting_to(html, VERIFY).fields["user_code"] == other_code(body["user_code"])
    html = await html_of(await browser.open("BCD"), 400)
    assert "A code has 8 letters, like BCDF-GHJK." in html
    html = await html_of(await browser.open('<script>alert("x")</script>'), 400)
    assert "<script>" not in html
    assert "&lt;script&gt;" in html


async def test_a_code_answers_once(browser: DeviceBrowser, alice: Any) -> None:
    body = await start(browser.client)
    confirm = await browser.sign_in(await browser.open(body["user_code"]))
    form = await browser.form(confirm, "/device/decision")
    assert "Device connected" in await html_of(await browser.submit(form, "approve"))
    again = await browser.submit(form, "deny")
    assert UNKNOWN in await html_of(again, 400)
    assert (await (await poll(browser.client, body["device_code"])).get_json())["access_token"]


async def test_failed_guesses_are_limited_per_address(settings_factory: Any) -> None:
    async with running_app(settings_factory(login_rate_limit=3)) as app:
        await device_client(app)
        await create_user(app, USER, PASSWORD)
        browser = DeviceBrowser(app)
        body = await start(browser.client)
        await browser.sign_in(await browser.open())
        wrong = other_code(body["user_code"])

        async def lookup(code: str, address: str = "10.1.1.1") -> Any:
            query = {"user_code": code}
            return await browser.client.get(VERIFY, query_string=query, scope_base=from_ip(address))

        for _ in range(3):
            assert UNKNOWN in await html_of(await lookup(wrong), 400)
            await html_of(await lookup("AB"), 400)  # malformed: not a guess
        limited = await lookup(body["user_code"])
        html = await html_of(limited, 429)
        assert "Too many wrong codes from your network. Try again in" in html
        assert int(limited.headers["Retry-After"]) > 0
        # Another address is not limited; a right code is never counted.
        for _ in range(5):
            assert "Connect a device?" in await html_of(await lookup(body["user_code"], "10.2.2.2"))


# ---- sign-in, CSRF, the answer form ------------------------------------------------------------


async def test_wrong_password_and_empty_fields(browser: DeviceBrowser, alice: Any) -> None:
    page = await browser.open("bcdf-ghjk")
    login = await browser.form(page, "/device/login")
    assert login.fields["user_code"] == "bcdf-ghjk"
    response = await browser.submit(login, username=USER, password="wrong")
    html = await html_of(response, 401)
    assert "Invalid username or password." in html
    assert form_posting_to(html, "/device/login").fields["username"] == USER
    response = await browser.submit(login, username="", password="")
    assert "Enter your username and password." in await html_of(response, 400)


@pytest.mark.parametrize("path", ["/device/login", "/device/decision", "/device/logout"])
async def test_posts_need_the_browser_token(browser: DeviceBrowser, alice: Any, path: str) -> None:
    body = await start(browser.client)
    confirm = await browser.sign_in(await browser.open(body["user_code"]))
    form = await browser.form(confirm, "/device/decision")
    values = form.values("approve", username=USER, password=PASSWORD)
    forged = await browser.client.post(path, form={**values, "csrf": "0" * 64})
    assert "The form could not be verified" in await html_of(forged, 400)
    # Another browser (no authly_device cookie) with the right token fails too.
    stranger = DeviceBrowser(browser.client.app)
    response = await stranger.client.post(path, form=values)
    assert "The form could not be verified" in await html_of(response, 400)
    assert await pending(browser.client, body["device_code"])


async def test_the_answer_must_come_from_the_user_shown(
    app: Any, browser: DeviceBrowser, alice: Any
) -> None:
    await create_user(app, "bob", "bob-password-1")
    body = await start(browser.client)
    confirm = await browser.sign_in(await browser.open(body["user_code"]))
    decision = await browser.form(confirm, "/device/decision")
    assert decision.fields["user"] == alice.id
    switch = await browser.form(confirm, "/device/logout")
    signed_out = await browser.follow(await browser.submit(switch))
    assert "<h1>Sign in</h1>" in await html_of(signed_out)
    await browser.sign_in(signed_out, "bob", "bob-password-1")
    response = await browser.submit(decision, "approve")  # alice's page, bob signed in
    assert response.status_code == 303
    again = await html_of(await browser.follow(response))
    assert "Signed in as <strong>bob</strong>" in again
    assert await pending(browser.client, body["device_code"])


async def test_a_decision_needs_allow_or_deny(browser: DeviceBrowser, alice: Any) -> None:
    body = await start(browser.client)
    confirm = await browser.sign_in(await browser.open(body["user_code"]))
    form = await browser.form(confirm, "/device/decision")
    response = await browser.submit(form, decision="maybe")
    assert "Choose Allow or Deny." in await html_of(response, 400)
    response = await browser.client.post("/device/decision", json={"decision": "approve"})
    await html_of(response, 415)
    assert await pending(browser.client, body["device_code"])


async def test_signed_out_answer_goes_back_to_sign_in(browser: DeviceBrowser, alice: Any) -> None:
    body = await start(browser.client)
    confirm = await browser.sign_in(await browser.open(body["user_code"]))
    form = await browser.form(confirm, "/device/decision")
    jar = browser.client.cookie_jar
    session = [c for c in jar if c.name == "authly_session"]
    assert len(session) == 1
    jar.clear(session[0].domain, session[0].path, session[0].name)
    response = await browser.submit(form, "approve")
    assert response.status_code == 303
    page = await html_of(await browser.follow(response))
    login = form_posting_to(page, "/device/login")
    assert login.fields["user_code"] == body["user_code"]
    assert len(parse_forms(page)) == 1
    assert await pending(browser.client, body["device_code"])


async def test_device_page_errors_are_html_routing_errors_json(client: Any) -> None:
    response = await client.get("/device/nope")
    assert (await error_body(response, 404))["error"] == "not_found"
    response = await client.put(VERIFY)
    assert (await error_body(response, 405))["error"] == "method_not_allowed"
