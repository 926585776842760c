"""The authorization-code + PKCE flow with an independent client library (Authlib's
OAuth 2 client) against a real ``python -m authly serve`` process.

Authlib builds the authorization URL (state, S256 challenge), checks ``state`` on the
way back and exchanges the code; a plain httpx client with a cookie jar plays the
browser, submitting the pages' real forms.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

# Authlib warns at import that it would rather drive "httpx2", and its own module forces
# that warning category to "always": import that module first, then silence exactly that
# message around the import that triggers it.
import authlib.deprecate  # noqa: F401
import httpx
import pytest

from tests.e2e.oauth_support import AUTHORIZE, ME, TOKEN, Spawn, start_server
from tests.e2e.server import ADMIN_PASSWORD
from tests.html_forms import form_posting_to
from tests.support.processes import ServerProcess
from tests.support.store import register_client

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="The httpx module is deprecated")
    from authlib.integrations.httpx_client import OAuth2Client, OAuthError
    from authlib.oauth2.rfc6749.errors import MismatchingStateException

pytestmark = pytest.mark.e2e

REDIRECT = "http://127.0.0.1:8765/callback"  # never contacted: the "browser" stops there
SECRET = "confidential-secret-value-123"


@pytest.fixture
def server(spawn: Spawn, tmp_path: Path) -> ServerProcess:
    db = tmp_path / "authly.db"
    register_client(db, "spa", redirect_uris=(REDIRECT,))
    register_client(
        db, "backend", redirect_uris=(REDIRECT,), secret=SECRET, auth_method="client_secret_basic"
    )
    return start_server(spawn, tmp_path)


def oauth_client(client_id: str, **kwargs: Any) -> OAuth2Client:
    kwargs.setdefault("token_endpoint_auth_method", "none")
    return OAuth2Client(
        client_id=client_id,
        redirect_uri=REDIRECT,
        scope="profile email offline_access",
        code_challenge_method="S256",
        timeout=10.0,
        **kwargs,
    )


def through_pages(browser: httpx.Client, url: str, *, decision: str = "approve") -> str:
    """Sign in (unless already signed in) and answer the consent page (unless consent
    is remembered) like a user would; return the URL the server finally sends the
    browser to (the client's redirect URI)."""
    response = browser.get(url)
    for _ in range(6):
        if response.status_code in (302, 303):
            location = response.headers["Location"]
            if location.startswith(REDIRECT):
                return location  # type: ignore[no-any-return]
            response = browser.get(response.url.join(location))
            continue
        assert response.status_code == 200, response.text
        if "/authorize/login" in response.text:
            form = form_posting_to(response.text, "/authorize/login", str(response.url))
            values = form.values(username="admin", password=ADMIN_PASSWORD)
        else:
            form = form_posting_to(response.text, "/authorize/consent", str(response.url))
            values = form.values(decision)
        response = browser.post(form.action, data=values)
    raise AssertionError(f"no answer for the client after six steps: {response.text}")


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def test_public_client_code_flow_with_pkce(server: ServerProcess, browser: httpx.Client) -> None:
    verifier = "a-pkce-verifier-" + "v" * 50
    with oauth_client("spa") as client:
        url, state = client.create_authorization_url(server.url(AUTHORIZE), code_verifier=verifier)
        assert "code_challenge_method=S256" in url
        callback = through_pages(browser, url)
        answer = query_of(callback)
        assert answer["state"] == state
        assert answer["iss"] == server.base_url
        token = client.fetch_token(
            server.url(TOKEN), authorization_response=callback, code_verifier=verifier
        )
        assert token["token_type"] == "Bearer"
        assert token["scope"] == "email offline_access profile"
        profile = client.get(server.url(ME))
        assert profile.status_code == 200, profile.text
        assert profile.json()["username"] == "admin"

        # Scope escalation on refresh is refused (and spends nothing).
        with pytest.raises(OAuthError) as escalation:
            client.refresh_token(server.url(TOKEN), scope="profile email offline_access admin")
        assert escalation.value.error == "invalid_scope"
        # Refresh through the library: rotated, and the old one is then a reuse.
        old_refresh = token["refresh_token"]
        renewed = client.refresh_token(server.url(TOKEN))
        assert renewed["refresh_token"] != old_refresh
        assert client.get(server.url(ME)).status_code == 200
        with pytest.raises(OAuthError) as reuse:
            client.refresh_token(server.url(TOKEN), refresh_token=old_refresh)
        assert reuse.value.error == "invalid_grant"
        # Reuse revoked the whole family: the renewed pair is dead too.
        assert client.get(server.url(ME)).status_code == 401
        with pytest.raises(OAuthError) as after_reuse:
            client.refresh_token(server.url(TOKEN), refresh_token=renewed["refresh_token"])
        assert after_reuse.value.error == "invalid_grant"


def test_confidential_client_with_client_secret_basic(
    server: ServerProcess, browser: httpx.Client
) -> None:
    verifier = "another-pkce-verifier-" + "x" * 40
    with oauth_client(
        "backend", client_secret=SECRET, token_endpoint_auth_method="client_secret_basic"
    ) as client:
        url, _ = client.create_authorization_url(server.url(AUTHORIZE), code_verifier=verifier)
        callback = through_pages(browser, url)
        token = client.fetch_token(
            server.url(TOKEN), authorization_response=callback, code_verifier=verifier
        )
        assert client.get(server.url(ME)).json()["username"] == "admin"

        # The same code again: invalid_grant, and what it issued is revoked.
        with pytest.raises(OAuthError) as replay:
            client.fetch_token(
                server.url(TOKEN), authorization_response=callback, code_verifier=verifier
            )
        assert replay.value.error == "invalid_grant"
        revoked = httpx.get(
            server.url(ME), headers={"Authorization": f"Bearer {token['access_token']}"}
        )
        assert revoked.status_code == 401
        with pytest.raises(OAuthError) as refresh:
            client.refresh_token(server.url(TOKEN), refresh_token=token["refresh_token"])
        assert refresh.value.error == "invalid_grant"


def test_wrong_client_secret_is_invalid_client(
    server: ServerProcess, browser: httpx.Client
) -> None:
    verifier = "third-pkce-verifier-" + "y" * 40
    with oauth_client(
        "backend",
        client_secret="not-the-secret",
        token_endpoint_auth_method="client_secret_basic",
    ) as client:
        url, _ = client.create_authorization_url(server.url(AUTHORIZE), code_verifier=verifier)
        callback = through_pages(browser, url)
        with pytest.raises(OAuthError) as failure:
            client.fetch_token(
                server.url(TOKEN), authorization_response=callback, code_verifier=verifier
            )
        assert failure.value.error == "invalid_client"


def test_code_used_by_another_client(server: ServerProcess, browser: httpx.Client) -> None:
    verifier = "fourth-pkce-verifier-" + "z" * 40
    with oauth_client("spa") as spa:
        url, _ = spa.create_authorization_url(server.url(AUTHORIZE), code_verifier=verifier)
        callback = through_pages(browser, url)
    with oauth_client(
        "backend", client_secret=SECRET, token_endpoint_auth_method="client_secret_basic"
    ) as backend:
        with pytest.raises(OAuthError) as failure:
            backend.fetch_token(
                server.url(TOKEN), authorization_response=callback, code_verifier=verifier
            )
        assert failure.value.error == "invalid_grant"


def test_wrong_verifier_and_no_pkce(server: ServerProcess, browser: httpx.Client) -> None:
    verifier = "fifth-pkce-verifier-" + "q" * 40
    with oauth_client("spa") as client:
        url, _ = client.create_authorization_url(server.url(AUTHORIZE), code_verifier=verifier)
        callback = through_pages(browser, url)
        with pytest.raises(OAuthError) as failure:
            client.fetch_token(
                server.url(TOKEN),
                authorization_response=callback,
                code_verifier="wrong-" + "w" * 50,
            )
        assert failure.value.error == "invalid_grant"

    # A client that does not do PKCE at all is sent back with invalid_request.
    with OAuth2Client(client_id="spa", redirect_uri=REDIRECT, scope="profile") as no_pkce:
        url, state = no_pkce.create_authorization_url(server.url(AUTHORIZE))
        assert "code_challenge" not in url
        response = browser.get(url)
        assert response.status_code == 302
        answer = query_of(response.headers["Location"])
        assert answer["error"] == "invalid_request"
        assert answer["state"] == state
        assert answer["iss"] == server.base_url


def test_denied_consent_and_state_tampering(server: ServerProcess, browser: httpx.Client) -> None:
    verifier = "sixth-pkce-verifier-" + "d" * 40
    with oauth_client("spa") as client:
        url, state = client.create_authorization_url(server.url(AUTHORIZE), code_verifier=verifier)
        callback = through_pages(browser, url, decision="deny")
        answer = query_of(callback)
        assert answer["error"] == "access_denied"
        assert answer["state"] == state
        assert "code" not in answer

        # The library itself refuses an answer whose state is not the one it sent.
        url, _ = client.create_authorization_url(
            server.url(AUTHORIZE), code_verifier=verifier, state="expected-state"
        )
        callback = through_pages(browser, url)
        with pytest.raises(MismatchingStateException):
            client.fetch_token(
                server.url(TOKEN),
                authorization_response=callback.replace("expected-state", "forged-state"),
                state="expected-state",
                code_verifier=verifier,
            )


def test_redirect_uri_mismatch_is_never_redirected(
    server: ServerProcess, browser: httpx.Client
) -> None:
    with oauth_client("spa") as client:
        client.redirect_uri = "https://evil.example/callback"
        url, _ = client.create_authorization_url(server.url(AUTHORIZE), code_verifier="v" * 60)
        response = browser.get(url)
        assert response.status_code == 400
        assert "location" not in response.headers
        assert response.headers["content-type"].startswith("text/html")
