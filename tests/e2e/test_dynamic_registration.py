"""Dynamic client registration (RFC 7591, RFC 7592) against a real ``python -m authly
serve`` process: a client finds the registration endpoint through discovery, registers
with plain httpx, Authlib checks the metadata document against the server metadata
(``ClientMetadataClaims``), then Authlib's OAuth 2 client runs the authorization-code
flow with PKCE with the credentials it got; the client manages and deletes itself. With
``AUTHLY_REGISTRATION=token``, an operator creates an initial access token with the CLI.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import authlib.deprecate  # noqa: F401  (see tests/e2e/test_authlib_client.py)
import httpx
import pytest

from tests.e2e.oauth_support import AUTHORIZE, ME, TOKEN, Spawn
from tests.e2e.server import authly_env
from tests.e2e.test_admin_cli import Cli
from tests.e2e.test_authlib_client import REDIRECT, through_pages
from tests.support.processes import ServerProcess, free_port

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="The httpx module is deprecated")
    from authlib.integrations.httpx_client import OAuth2Client, OAuthError
    from authlib.oauth2.rfc7591 import ClientMetadataClaims

pytestmark = pytest.mark.e2e

DISCOVERY = "/.well-known/openid-configuration"


def start(spawn: Spawn, workdir: Path, mode: str) -> ServerProcess:
    port = free_port()
    env = authly_env(
        workdir / "authly.db",
        AUTHLY_ISSUER=f"http://127.0.0.1:{port}",
        AUTHLY_REGISTRATION=mode,
    )
    server = spawn(env=env, port=port)
    server.wait_healthy()
    return server


def checked_by_authlib(document: dict[str, Any], metadata: dict[str, Any]) -> None:
    """Authlib's own RFC 7591 metadata rules, with the options it derives from the
    server's metadata (scopes, grant and response types, auth methods supported)."""
    options = ClientMetadataClaims.get_claims_options(metadata)
    claims = ClientMetadataClaims(document, {}, options=options)
    claims.validate()


def code_flow(server: ServerProcess, client: OAuth2Client, verifier: str) -> dict[str, Any]:
    with httpx.Client(timeout=10.0, follow_redirects=False) as browser:
        url, state = client.create_authorization_url(server.url(AUTHORIZE), code_verifier=verifier)
        callback = through_pages(browser, url)
    assert f"state={state}" in callback
    token: dict[str, Any] = client.fetch_token(
        server.url(TOKEN), authorization_response=callback, code_verifier=verifier
    )
    return token


def test_open_registration_then_authlib_code_flow(spawn: Spawn, tmp_path: Path) -> None:
    server = start(spawn, tmp_path, "open")
    with httpx.Client(timeout=10.0) as http:
        metadata = http.get(server.url(DISCOVERY)).json()
        endpoint = metadata["registration_endpoint"]
        assert endpoint == server.url("/api/v1/oauth/register")
        request = {
            "client_name": "Authlib native app",
            "redirect_uris": [REDIRECT],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "scope": "openid profile offline_access",
            "client_uri": "https://app.example",  # not understood: ignored
        }
        response = http.post(endpoint, json=request)
        assert response.status_code == 201, response.text
        assert response.headers["Cache-Control"] == "no-store"
        document = response.json()
        checked_by_authlib(document, metadata)
        assert "client_secret" not in document
        assert "client_uri" not in document

        with OAuth2Client(
            client_id=document["client_id"],
            redirect_uri=REDIRECT,
            scope=document["scope"],
            code_challenge_method="S256",
            token_endpoint_auth_method="none",
            timeout=10.0,
        ) as client:
            token = code_flow(server, client, "dcr-public-verifier-" + "p" * 40)
            assert token["scope"] == "offline_access openid profile"
            assert "id_token" in token
            assert client.get(server.url(ME)).json()["username"] == "admin"

            # RFC 7592: the client reads and replaces its registration ...
            management = {"Authorization": f"Bearer {document['registration_access_token']}"}
            config = document["registration_client_uri"]
            assert http.get(config, headers=management).json() == document
            renamed = {**document, "client_name": "Renamed app"}
            answer = http.put(config, json=renamed, headers=management)
            assert answer.status_code == 200, answer.text
            assert answer.json()["client_name"] == "Renamed app"
            # ... and deletes it: its refresh token is then worthless.
            assert http.delete(config, headers=management).status_code == 204
            assert http.get(config, headers=management).status_code == 401
            with pytest.raises(OAuthError) as gone:
                client.refresh_token(server.url(TOKEN))
            assert gone.value.error == "invalid_client"


def test_token_registration_with_an_operator_token(spawn: Spawn, tmp_path: Path) -> None:
    server = start(spawn, tmp_path, "token")
    cli = Cli(tmp_path, server.base_url)
    cli.login()
    created = cli.json(
        "initial-token", "create", "--single-use", "--expires-in", "1h", "--description", "ci"
    )
    assert created["max_uses"] == 1
    listed = cli.ok("initial-token", "list")
    assert created["id"] in listed
    assert "active" in listed
    assert created["token"] not in listed

    with httpx.Client(timeout=10.0) as http:
        metadata = http.get(server.url(DISCOVERY)).json()
        endpoint = metadata["registration_endpoint"]
        request = {"client_name": "Authlib web app", "redirect_uris": [REDIRECT]}
        refused = http.post(endpoint, json=request)
        assert refused.status_code == 401
        assert refused.json()["error"] == "invalid_token"
        auth = {"Authorization": f"Bearer {created['token']}"}
        response = http.post(endpoint, json=request, headers=auth)
        assert response.status_code == 201, response.text
        document = response.json()
        checked_by_authlib(document, metadata)
        assert document["token_endpoint_auth_method"] == "client_secret_basic"
        again = http.post(endpoint, json=request, headers=auth)
        assert again.status_code == 401
        assert "used up" in again.json()["error_description"]
    assert "used_up" in cli.ok("initial-token", "list")
    assert "Revoked" in cli.ok("initial-token", "revoke", created["id"])
    assert "No initial access token" in cli.fails("initial-token", "revoke", created["id"])

    with OAuth2Client(
        client_id=document["client_id"],
        client_secret=document["client_secret"],
        redirect_uri=REDIRECT,
        scope="profile email",
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_basic",
        timeout=10.0,
    ) as client:
        token = code_flow(server, client, "dcr-confidential-verifier-" + "c" * 40)
        assert token["scope"] == "email profile"
        assert client.get(server.url(ME)).status_code == 200
