"""One complete OpenID Connect session, as a relying party and a user live it.

A real ``authly serve`` process; Debian's Chromium (Playwright) as the user's browser;
Authlib as the independent relying-party library; a tiny loopback HTTP server as the
RP's redirect URI, post-logout URI and back-channel logout endpoint. In order:
discovery → authorization with nonce and PKCE in the browser → code exchange → ID
token validated by Authlib's rules and by joserfc against the JWKS → userinfo GET and
POST → refresh with a new ID token → RP-initiated logout in the browser → the logout
token received on the back channel → the session's refresh token refused.
"""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.e2e.oauth_support import Spawn, start_server
from tests.e2e.server import ADMIN_PASSWORD
from tests.e2e.test_browser_flow import CHROMIUM, Callback, chromium  # noqa: F401 (fixture)
from tests.e2e.test_oidc_rp import validated
from tests.support.store import register_client

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="The httpx module is deprecated")
    from authlib.integrations.httpx_client import OAuth2Client, OAuthError

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not os.access(CHROMIUM, os.X_OK),
        reason=f"{CHROMIUM} is missing (Debian package 'chromium'; .ci/run installs it)",
    ),
]

SCOPE = "openid profile email offline_access"
BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"


def test_a_whole_oidc_session_in_a_real_browser(
    spawn: Spawn,
    tmp_path: Path,
    chromium: Any,  # noqa: F811
) -> None:
    rp = Callback()
    base = f"http://127.0.0.1:{rp.port}"
    try:
        register_client(
            tmp_path / "authly.db",
            "rp",
            redirect_uris=(rp.redirect_uri,),
            scopes=tuple(SCOPE.split()),
            post_logout_redirect_uris=(f"{base}/logged-out",),
            backchannel_logout_uri=f"{base}/backchannel",
            backchannel_logout_session_required=True,
        )
        server = start_server(spawn, tmp_path)
        metadata = httpx.get(server.url("/.well-known/openid-configuration"), timeout=10).json()
        assert metadata["end_session_endpoint"] == server.url("/oidc/logout")
        assert metadata["backchannel_logout_supported"] is True
        context = chromium.new_context()
        try:
            page = context.new_page()
            page.set_default_timeout(15_000)
            _session(server, metadata, page, rp, base)
        finally:
            context.close()
    finally:
        rp.close()


def _session(server: Any, metadata: dict[str, Any], page: Any, rp: Callback, base: str) -> None:
    nonce = "browser-nonce-4f1d9a"
    verifier = "a-browser-oidc-verifier-" + "q" * 40
    with OAuth2Client(
        client_id="rp",
        redirect_uri=rp.redirect_uri,
        scope=SCOPE,
        code_challenge_method="S256",
        token_endpoint_auth_method="none",
        timeout=10.0,
    ) as client:
        url, _ = client.create_authorization_url(
            metadata["authorization_endpoint"], code_verifier=verifier, nonce=nonce
        )
        page.goto(url)
        page.fill("#username", "admin")
        page.fill("#password", ADMIN_PASSWORD)
        page.click("button[type=submit]")
        page.click("button[value=approve]")
        page.wait_for_url(f"{rp.redirect_uri}**")
        token = client.fetch_token(
            metadata["token_endpoint"], authorization_response=page.url, code_verifier=verifier
        )
        claims = validated(token, metadata, "rp", nonce)  # Authlib's CodeIDToken rules
        jwks = KeySet.import_key_set(httpx.get(metadata["jwks_uri"], timeout=10).json())
        assert jwt.decode(token["id_token"], jwks).claims["sub"] == claims["sub"]  # joserfc

        info = client.get(metadata["userinfo_endpoint"]).json()
        assert info["sub"] == claims["sub"]
        posted = httpx.post(
            metadata["userinfo_endpoint"], data={"access_token": token["access_token"]}, timeout=10
        ).json()
        assert posted == info

        renewed = client.refresh_token(metadata["token_endpoint"])
        again = validated(renewed, metadata, "rp", None)
        assert (again["sid"], again["auth_time"]) == (claims["sid"], claims["auth_time"])

        logout = httpx.URL(
            metadata["end_session_endpoint"],
            params={
                "id_token_hint": renewed["id_token"],
                "post_logout_redirect_uri": f"{base}/logged-out",
                "state": "bye-123",
            },
        )
        page.goto(str(logout))
        page.wait_for_url(f"{base}/logged-out**")
        assert "state=bye-123" in page.url

        logout_token = _received_logout_token(rp)
        decoded = jwt.decode(logout_token, jwks, algorithms=["RS256"])
        assert decoded.header["typ"] == "logout+jwt"
        assert decoded.claims["aud"] == "rp"
        assert decoded.claims["sub"] == claims["sub"]
        assert decoded.claims["sid"] == claims["sid"]
        assert BACKCHANNEL_EVENT in decoded.claims["events"]
        assert "nonce" not in decoded.claims

        with pytest.raises(OAuthError) as refused:
            client.refresh_token(metadata["token_endpoint"])
        assert refused.value.error == "invalid_grant"
    page.goto(metadata["authorization_endpoint"] + "?" + url.split("?", 1)[1])
    assert page.locator("#password").count() == 1  # signed out: the login page again


def _received_logout_token(rp: Callback) -> str:
    """The back channel is asynchronous (the user's logout never waits for it): wait
    for the delivery, bounded by a hang detector."""
    deadline = time.monotonic() + 30
    while not any("logout_token" in p for p in rp.posts):
        assert time.monotonic() < deadline, "no logout token received"
        time.sleep(0.05)
    (delivery,) = [p for p in rp.posts if "logout_token" in p]
    return delivery["logout_token"]
