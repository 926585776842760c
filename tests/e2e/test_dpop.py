"""DPoP (RFC 9449) against a real ``python -m authly serve`` process: a client that
signs its proofs with joserfc and talks plain httpx (Authlib's OAuth 2 client has no
DPoP), with and without server nonces (AUTHLY_DPOP_NONCE).

The flow: an authorization request naming ``dpop_jkt``, the pages through a cookie-
keeping httpx "browser", the code exchanged with a proof, userinfo with the DPoP
scheme (and refused as a bearer token), a refresh bound to the key, introspection
showing ``cnf``, and a confidential client's client_credentials token.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from tests.e2e.oauth_support import AUTHORIZE, TOKEN, Spawn
from tests.e2e.server import authly_env
from tests.e2e.test_authlib_client import REDIRECT, query_of, through_pages
from tests.support.dpop import DPoPKey
from tests.support.processes import ServerProcess, free_port
from tests.support.store import register_client

pytestmark = pytest.mark.e2e

SECRET = "backend-secret-value-123"
USERINFO = "/oidc/userinfo"
INTROSPECT = "/api/v1/oauth/introspect"


class DPoPClient:
    """httpx with DPoP proofs: one key, the last nonce the server gave, one retry on
    ``use_dpop_nonce`` (RFC 9449 §8)."""

    def __init__(self, http: httpx.Client, key: DPoPKey) -> None:
        self.http = http
        self.key = key
        self.nonce: str | None = None
        self.nonce_retries = 0

    def request(
        self, method: str, url: str, *, access_token: str | None = None, **kwargs: Any
    ) -> httpx.Response:
        target = url.split("?", 1)[0]
        for attempt in (1, 2):
            proof = self.key.proof(method, target, access_token=access_token, nonce=self.nonce)
            headers = {"DPoP": proof}
            if access_token is not None:
                headers["Authorization"] = f"DPoP {access_token}"
            response = self.http.request(method, url, headers=headers, **kwargs)
            self.nonce = response.headers.get("DPoP-Nonce", self.nonce)
            if attempt == 1 and _asks_for_nonce(response):
                self.nonce_retries += 1
                continue
            return response
        raise AssertionError("unreachable")


def _asks_for_nonce(response: httpx.Response) -> bool:
    if response.status_code == 400:
        return bool(response.json().get("error") == "use_dpop_nonce")
    return 'error="use_dpop_nonce"' in response.headers.get("WWW-Authenticate", "")


@pytest.fixture(params=[False, True], ids=["no-nonce", "nonce"])
def server(request: Any, spawn: Spawn, tmp_path: Path) -> ServerProcess:
    db = tmp_path / "authly.db"
    register_client(
        db,
        "native",
        redirect_uris=(REDIRECT,),
        scopes=("openid", "profile", "email", "offline_access"),
    )
    register_client(
        db,
        "backend",
        secret=SECRET,
        auth_method="client_secret_basic",
        grant_types=("client_credentials",),
        scopes=("profile",),
    )
    port = free_port()
    env = authly_env(
        db,
        AUTHLY_ISSUER=f"http://127.0.0.1:{port}",
        AUTHLY_DPOP_NONCE="true" if request.param else "false",
    )
    started = spawn(env=env, port=port)
    started.wait_healthy()
    started.nonces = request.param  # type: ignore[attr-defined]
    return started


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10.0, follow_redirects=False) as client:
        yield client


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def test_dpop_bound_tokens_end_to_end(server: ServerProcess, http: httpx.Client) -> None:
    key = DPoPKey("ES256")
    dpop = DPoPClient(http, key)
    verifier, challenge = pkce()
    params = {
        "response_type": "code",
        "client_id": "native",
        "redirect_uri": REDIRECT,
        "scope": "openid profile offline_access",
        "state": "s-1",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "dpop_jkt": key.jkt,
    }
    metadata = http.get(server.url("/.well-known/openid-configuration")).json()
    assert "ES256" in metadata["dpop_signing_alg_values_supported"]
    with httpx.Client(timeout=10.0, follow_redirects=False) as browser:
        callback = through_pages(browser, server.url(AUTHORIZE) + "?" + urlencode(params))
    code = query_of(callback)["code"]
    form = {
        "grant_type": "authorization_code",
        "client_id": "native",
        "code": code,
        "code_verifier": verifier,
        "redirect_uri": REDIRECT,
    }
    tokens = dpop.request("POST", server.url(TOKEN), data=form)
    assert tokens.status_code == 200, tokens.text
    body = tokens.json()
    assert body["token_type"] == "DPoP"
    access = body["access_token"]

    info = dpop.request("GET", server.url(USERINFO), access_token=access)
    assert info.status_code == 200, info.text
    assert info.json()["sub"]
    as_bearer = http.get(server.url(USERINFO), headers={"Authorization": f"Bearer {access}"})
    assert as_bearer.status_code == 401
    assert as_bearer.headers["WWW-Authenticate"].startswith('DPoP error="invalid_token"')

    refresh = {"grant_type": "refresh_token", "client_id": "native"}
    stolen = http.post(server.url(TOKEN), data={**refresh, "refresh_token": body["refresh_token"]})
    assert stolen.status_code == 400
    assert stolen.json()["error"] == "invalid_grant"
    renewed = dpop.request(
        "POST", server.url(TOKEN), data={**refresh, "refresh_token": body["refresh_token"]}
    )
    assert renewed.status_code == 200, renewed.text
    assert renewed.json()["token_type"] == "DPoP"

    introspected = http.post(
        server.url(INTROSPECT),
        data={"token": renewed.json()["access_token"]},
        auth=("backend", SECRET),
    )
    assert introspected.json()["cnf"] == {"jkt": key.jkt}
    assert introspected.json()["token_type"] == "DPoP"

    service = DPoPClient(http, DPoPKey("EdDSA"))
    service.nonce = dpop.nonce  # one nonce for the whole server
    issued = service.request(
        "POST",
        server.url(TOKEN),
        data={"grant_type": "client_credentials"},
        auth=("backend", SECRET),
    )
    assert issued.status_code == 200, issued.text
    assert issued.json()["token_type"] == "DPoP"

    if server.nonces:  # type: ignore[attr-defined]
        assert dpop.nonce is not None
        assert dpop.nonce_retries >= 1  # the first proof had no nonce
    else:
        assert dpop.nonce is None
        assert dpop.nonce_retries == 0
