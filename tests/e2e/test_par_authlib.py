"""Pushed authorization requests (RFC 9126) with an independent client library (Authlib's
OAuth 2 client) against a real ``python -m authly serve`` process (hypercorn).

Authlib has no PAR helper: the test lets it build the authorization request (state,
S256 challenge), POSTs those parameters to the endpoint the server's metadata names
with Authlib's own client authentication, sends the browser to the authorization
endpoint with only ``client_id`` + ``request_uri``, and has Authlib check ``state`` and
exchange the code. A plain httpx client with a cookie jar plays the browser.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

# See tests/e2e/test_authlib_client.py: silence exactly Authlib's "httpx2" warning.
import authlib.deprecate  # noqa: F401
import httpx
import pytest

from tests.e2e.oauth_support import AUTHORIZE, ME, TOKEN, Spawn, start_server
from tests.e2e.server import authly_env
from tests.e2e.test_authlib_client import (
    REDIRECT,
    SECRET,
    oauth_client,
    query_of,
    through_pages,
)
from tests.support.processes import ServerProcess, free_port
from tests.support.store import register_client

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="The httpx module is deprecated")
    from authlib.integrations.httpx_client import OAuth2Client

pytestmark = pytest.mark.e2e

METADATA = "/.well-known/oauth-authorization-server"


def _clients(db: Path) -> None:
    register_client(db, "spa", redirect_uris=(REDIRECT,))
    register_client(
        db, "backend", redirect_uris=(REDIRECT,), secret=SECRET, auth_method="client_secret_basic"
    )


@pytest.fixture
def server(spawn: Spawn, tmp_path: Path) -> ServerProcess:
    _clients(tmp_path / "authly.db")
    return start_server(spawn, tmp_path)


def metadata_of(server: ServerProcess) -> dict[str, Any]:
    document = httpx.get(server.url(METADATA), timeout=10.0).json()
    assert document["pushed_authorization_request_endpoint"] == server.url("/api/v1/oauth/par")
    return document  # type: ignore[no-any-return]


def push(client: OAuth2Client, metadata: dict[str, Any], verifier: str) -> httpx.Response:
    """POST the authorization request Authlib builds to the PAR endpoint, with the
    client authentication Authlib uses at the token endpoint."""
    url, _ = client.create_authorization_url(
        metadata["authorization_endpoint"], code_verifier=verifier, state="par-state"
    )
    params = dict(parse_qsl(urlsplit(url).query))
    # Authlib's client authentication names the client itself (Basic, or client_id in
    # the body for "none"): a second client_id would be a repeated parameter.
    del params["client_id"]
    return client.post(  # type: ignore[no-any-return]
        metadata["pushed_authorization_request_endpoint"],
        data=params,
        auth=client.client_auth(client.token_endpoint_auth_method),
    )


def authorize_url(metadata: dict[str, Any], client_id: str, request_uri: str) -> str:
    query = urlencode({"client_id": client_id, "request_uri": request_uri})
    return f"{metadata['authorization_endpoint']}?{query}"


@pytest.mark.parametrize("client_id", ["backend", "spa"])
def test_push_sign_in_and_exchange(
    server: ServerProcess, browser: httpx.Client, client_id: str
) -> None:
    metadata = metadata_of(server)
    assert metadata["require_pushed_authorization_requests"] is False
    verifier = "a-pkce-verifier-for-par-" + "p" * 40
    kwargs: dict[str, Any] = {}
    if client_id == "backend":
        kwargs = {"client_secret": SECRET, "token_endpoint_auth_method": "client_secret_basic"}
    with oauth_client(client_id, **kwargs) as client:
        pushed = push(client, metadata, verifier)
        assert pushed.status_code == 201, pushed.text
        assert pushed.headers["cache-control"] == "no-store"
        body = pushed.json()
        assert body["expires_in"] == 60
        url = authorize_url(metadata, client_id, body["request_uri"])
        callback = through_pages(browser, url)
        answer = query_of(callback)
        assert answer["state"] == "par-state"
        assert answer["iss"] == server.base_url
        token = client.fetch_token(
            server.url(TOKEN),
            authorization_response=callback,
            state="par-state",
            code_verifier=verifier,
        )
        assert token["scope"] == "email offline_access profile"
        profile = client.get(server.url(ME))
        assert profile.status_code == 200, profile.text
        assert profile.json()["username"] == "admin"

        # The request_uri was single use: a second visit gets a page, not a redirect.
        again = browser.get(url)
        assert again.status_code == 400
        assert "location" not in again.headers
        assert again.headers["content-type"].startswith("text/html")


def test_a_client_that_does_not_authenticate_is_refused(server: ServerProcess) -> None:
    metadata = metadata_of(server)
    verifier = "another-pkce-verifier-for-par-" + "q" * 30
    for kwargs in (
        {"client_secret": "not-the-secret", "token_endpoint_auth_method": "client_secret_basic"},
        {"token_endpoint_auth_method": "none"},
    ):
        with oauth_client("backend", **kwargs) as client:
            refused = push(client, metadata, verifier)
            assert refused.status_code == 401, refused.text
            assert refused.json()["error"] == "invalid_client"
            assert "location" not in refused.headers


def test_a_server_that_requires_pushed_requests(
    spawn: Spawn, tmp_path: Path, browser: httpx.Client
) -> None:
    _clients(tmp_path / "authly.db")
    port = free_port()
    env = authly_env(
        tmp_path / "authly.db",
        AUTHLY_ISSUER=f"http://127.0.0.1:{port}",
        AUTHLY_REQUIRE_PAR="true",
    )
    server = spawn(env=env, port=port)
    server.wait_healthy()
    metadata = metadata_of(server)
    assert metadata["require_pushed_authorization_requests"] is True
    verifier = "a-third-pkce-verifier-for-par-" + "r" * 30
    with oauth_client("spa") as client:
        # The plain front-channel request is sent back with invalid_request ...
        url, state = client.create_authorization_url(server.url(AUTHORIZE), code_verifier=verifier)
        refused = browser.get(url)
        assert refused.status_code == 302
        answer = query_of(refused.headers["Location"])
        assert answer["error"] == "invalid_request"
        assert answer["state"] == state
        # ... and the pushed one goes through.
        pushed = push(client, metadata, verifier)
        assert pushed.status_code == 201, pushed.text
        callback = through_pages(
            browser, authorize_url(metadata, "spa", pushed.json()["request_uri"])
        )
        token = client.fetch_token(
            server.url(TOKEN),
            authorization_response=callback,
            state="par-state",
            code_verifier=verifier,
        )
        assert token["token_type"] == "Bearer"
