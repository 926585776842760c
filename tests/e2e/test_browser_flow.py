"""The authorization-code + PKCE flow in a real headless Chromium (Playwright driving
Debian's /usr/bin/chromium) against a real ``python -m authly serve`` process.

The client's redirect URI is a tiny HTTP server the test runs on a free loopback port;
what the browser lands on there is how the test captures the code.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.e2e.oauth_support import (
    AUTHORIZE,
    TOKEN,
    Spawn,
    profile,
    start_server,
)
from tests.e2e.server import ADMIN_PASSWORD
from tests.support.store import register_client
from tests.web.browser import pkce_pair

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not os.access(CHROMIUM, os.X_OK),
        reason=f"{CHROMIUM} is missing (Debian package 'chromium'; .ci/run installs it)",
    ),
]


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    # Once trio-asyncio is imported (the Redis tests import it), its policy hands out
    # trio-asyncio loops, which Playwright's greenlet-driven loop cannot use: give this
    # thread plain asyncio while the browser runs, then hand it back.
    asyncio.set_event_loop_policy(asyncio.DefaultEventLoopPolicy())
    try:
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                yield browser
            finally:
                browser.close()
    finally:
        asyncio.set_event_loop_policy(None)


class Callback:
    """The client's redirect URI: a tiny HTTP server on a free loopback port that
    records every request the browser makes to it."""

    def __init__(self) -> None:
        urls: list[str] = []
        posts: list[dict[str, str]] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # response_mode=form_post
                length = int(self.headers.get("Content-Length", "0"))
                form = parse_qs(self.rfile.read(length).decode(), strict_parsing=True)
                posts.append({k: v[0] for k, v in form.items()})
                self.do_GET()

            def do_GET(self) -> None:
                if self.path.startswith("/callback"):  # not /favicon.ico
                    urls.append(self.path)
                body = b"<!doctype html><title>client</title><h1>client callback</h1>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.urls = urls
        self.posts = posts
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self.redirect_uri = f"http://127.0.0.1:{self.port}/callback"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def params(self) -> dict[str, str]:
        assert len(self.urls) == 1, self.urls
        parts = urlsplit(self.urls[0])
        assert parts.path == "/callback"
        query = parse_qs(parts.query, strict_parsing=True)
        return {k: v[0] for k, v in query.items()}


@pytest.fixture
def setup(spawn: Spawn, tmp_path: Path, chromium: Any) -> Iterator[tuple[Any, Any, Callback]]:
    callback = Callback()
    try:
        register_client(tmp_path / "authly.db", "webapp", redirect_uris=(callback.redirect_uri,))
        server = start_server(spawn, tmp_path)
        context = chromium.new_context()
        try:
            page = context.new_page()
            page.set_default_timeout(15_000)
            yield server, page, callback
        finally:
            context.close()
    finally:
        callback.close()


def _authorize_url(server: Any, callback: Callback, challenge: str, state: str) -> str:
    query = httpx.QueryParams(
        response_type="code",
        client_id="webapp",
        redirect_uri=callback.redirect_uri,
        scope="profile email offline_access",
        state=state,
        code_challenge=challenge,
        code_challenge_method="S256",
    )
    return f"{server.url(AUTHORIZE)}?{query}"


def test_login_consent_and_token_in_a_real_browser(setup: Any, tmp_path: Path) -> None:
    server, page, callback = setup
    verifier, challenge = pkce_pair()
    page.goto(_authorize_url(server, callback, challenge, "browser-state-1"))

    # The login page, styled, no script needed; a wrong password first.
    assert page.title() == "Sign in · Authly"
    assert "webapp app" in page.inner_text("main")
    background = page.eval_on_selector("button.primary", "b => getComputedStyle(b).backgroundColor")
    assert background == "rgb(37, 99, 235)"  # the stylesheet was applied (CSP allows it)
    page.fill("#username", "admin")
    page.fill("#password", "not-the-password")
    page.click("button[type=submit]")
    assert "Invalid username or password." in page.inner_text(".alert")
    assert page.input_value("#username") == "admin"
    page.fill("#password", ADMIN_PASSWORD)
    page.click("button[type=submit]")

    # The consent page lists the scopes with their descriptions.
    page.wait_for_selector("text=Allow access?")
    scopes = page.inner_text("ul.scopes")
    for description in ("Your username and account details", "Your email address"):
        assert description in scopes
    assert "Stay signed in (refresh tokens)" in scopes
    page.click("button[value=approve]")
    page.wait_for_url(f"{callback.redirect_uri}**")

    result = callback.params()
    assert result["state"] == "browser-state-1"
    assert result["iss"] == server.base_url
    with httpx.Client(timeout=10.0) as http:
        response = http.post(
            server.url(TOKEN),
            data={
                "grant_type": "authorization_code",
                "code": result["code"],
                "redirect_uri": callback.redirect_uri,
                "client_id": "webapp",
                "code_verifier": verifier,
            },
        )
        assert response.status_code == 200, response.text
        tokens = response.json()
        assert tokens["scope"] == "email offline_access profile"
        me = profile(server.base_url, tokens["access_token"])
        assert me.status_code == 200, me.text
        assert me.json()["username"] == "admin"
        # The code is single use: a replay fails and revokes the tokens it gave.
        again = http.post(
            server.url(TOKEN),
            data={
                "grant_type": "authorization_code",
                "code": result["code"],
                "redirect_uri": callback.redirect_uri,
                "client_id": "webapp",
                "code_verifier": verifier,
            },
        )
        assert again.status_code == 400
        assert again.json()["error"] == "invalid_grant"
        assert profile(server.base_url, tokens["access_token"]).status_code == 401

    # Signed in and consented: the next authorization goes straight back to the client.
    callback.urls.clear()
    _, challenge = pkce_pair()
    page.goto(_authorize_url(server, callback, challenge, "browser-state-2"))
    page.wait_for_url(f"{callback.redirect_uri}**")
    assert callback.params()["state"] == "browser-state-2"

    cookies = {c["name"]: c for c in page.context.cookies()}
    session = cookies["authly_session"]
    assert session["httpOnly"] is True
    assert session["sameSite"] == "Lax"
    assert session["secure"] is False  # the issuer is http://127.0.0.1


def test_denying_consent_in_a_real_browser(setup: Any) -> None:
    server, page, callback = setup
    _, challenge = pkce_pair()
    page.goto(_authorize_url(server, callback, challenge, "deny-state"))
    page.fill("#username", "admin")
    page.fill("#password", ADMIN_PASSWORD)
    page.click("button[type=submit]")
    page.click("button[value=deny]")
    page.wait_for_url(f"{callback.redirect_uri}**")
    result = callback.params()
    assert result["error"] == "access_denied"
    assert result["state"] == "deny-state"
    assert result["iss"] == server.base_url
    assert "code" not in result


def test_an_open_redirect_attempt_stays_on_an_error_page(setup: Any) -> None:
    server, page, callback = setup
    _, challenge = pkce_pair()
    url = _authorize_url(server, callback, challenge, "s").replace(
        "redirect_uri=http", "redirect_uri=https%3A%2F%2Fevil.example%2Fcb%3Fx%3Dhttp"
    )
    response = page.goto(url)
    assert response.status == 400
    assert page.url.startswith(server.base_url)
    assert "not registered" in page.inner_text(".alert")
    assert callback.urls == []


def test_a_backslash_loopback_redirect_cannot_steal_a_code(
    spawn: Spawn, tmp_path: Path, chromium: Any
) -> None:
    """Security review, defect 1. A public native client registered with
    ``http://127.0.0.1/callback`` (any port, RFC 8252); the user signs in and consents
    once. Then the attacker's link, with its own PKCE challenge, names
    ``http://127.0.0.1:<attacker>\\@127.0.0.1/callback``: a browser reads ``\\`` as ``/``
    and would carry the code to the attacker's port. Chromium must stay on Authly's
    error page and the attacker's server must see nothing."""
    victim, attacker = Callback(), Callback()
    try:
        register_client(
            tmp_path / "authly.db", "native", redirect_uris=("http://127.0.0.1/callback",)
        )
        server = start_server(spawn, tmp_path)
        context = chromium.new_context()
        try:
            page = context.new_page()
            page.set_default_timeout(15_000)

            def authorize_url(redirect_uri: str, challenge: str) -> str:
                query = httpx.QueryParams(
                    response_type="code",
                    client_id="native",
                    redirect_uri=redirect_uri,
                    scope="profile",
                    state="s",
                    code_challenge=challenge,
                    code_challenge_method="S256",
                )
                return f"{server.url(AUTHORIZE)}?{query}"

            _, challenge = pkce_pair()
            page.goto(authorize_url(victim.redirect_uri, challenge))
            page.fill("#username", "admin")
            page.fill("#password", ADMIN_PASSWORD)
            page.click("button[type=submit]")
            page.click("button[value=approve]")
            page.wait_for_url(f"{victim.redirect_uri}**")
            assert "code" in victim.params()

            _, attacker_challenge = pkce_pair()
            evil = f"http://127.0.0.1:{attacker.port}\\@127.0.0.1/callback"
            response = page.goto(authorize_url(evil, attacker_challenge))
            assert response is not None
            assert response.status == 400
            assert page.url.startswith(server.base_url)
            assert "not registered" in page.inner_text(".alert")
            assert attacker.urls == []
            assert len(victim.urls) == 1
        finally:
            context.close()
    finally:
        victim.close()
        attacker.close()


def test_form_post_submits_itself_in_a_real_browser(setup: Any) -> None:
    """response_mode=form_post: Chromium runs the page's one script (allowed by its
    hash in the CSP) and POSTs the code to the client, without a click."""
    server, page, callback = setup
    verifier, challenge = pkce_pair()
    url = _authorize_url(server, callback, challenge, "fp-state") + "&response_mode=form_post"
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    page.goto(url)
    page.fill("#username", "admin")
    page.fill("#password", ADMIN_PASSWORD)
    page.click("button[type=submit]")
    page.click("button[value=approve]")
    page.wait_for_url(f"{callback.redirect_uri}**")
    assert callback.urls == ["/callback"]  # the POST (answered like a GET), no query
    (posted,) = callback.posts
    assert posted["state"] == "fp-state"
    assert posted["iss"] == server.base_url
    assert not [m for m in console if "Content Security Policy" in m], console
    token = httpx.post(
        server.url(TOKEN),
        data={
            "grant_type": "authorization_code",
            "code": posted["code"],
            "code_verifier": verifier,
            "client_id": "webapp",
            "redirect_uri": callback.redirect_uri,
        },
        timeout=10,
    )
    assert token.status_code == 200, token.text
