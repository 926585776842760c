"""OpenID Connect with an independent relying-party library against a real server.

Authlib plays the relying party as its own web integrations do: it reads the discovery
document, builds the authorization URL (state, nonce, S256 challenge), exchanges the
code, validates the ID token with its ``CodeIDToken`` rules (issuer, audience, expiry,
nonce, at_hash) against the published JWK Set, calls userinfo, and refreshes (a new ID
token about the same sign-in) — for each ID-token algorithm a client may choose. A
plain httpx client with a cookie jar plays the browser.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import authlib.deprecate  # noqa: F401  (see test_authlib_client.py)
import httpx
import pytest

from tests.e2e.oauth_support import Spawn, start_server
from tests.e2e.test_authlib_client import REDIRECT, through_pages
from tests.support.processes import ServerProcess
from tests.support.store import register_client

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="The httpx module is deprecated")
    warnings.filterwarnings("ignore", message="authlib.jose module is deprecated")
    from authlib.integrations.httpx_client import OAuth2Client
    from authlib.jose import JsonWebKey, jwt
    from authlib.oidc.core import CodeIDToken

pytestmark = pytest.mark.e2e

ALGS = ("RS256", "ES256", "EdDSA")
SCOPES = ("openid", "profile", "email", "offline_access")


@pytest.fixture
def server(spawn: Spawn, tmp_path: Path) -> ServerProcess:
    db = tmp_path / "authly.db"
    for alg in ALGS:
        register_client(
            db,
            f"rp-{alg.lower()}",
            redirect_uris=(REDIRECT,),
            scopes=SCOPES,
            id_token_signed_response_alg=alg,
        )
    return start_server(spawn, tmp_path)


def validated(token: dict[str, Any], metadata: dict[str, Any], client_id: str, nonce: str | None):
    jwks = httpx.get(metadata["jwks_uri"], timeout=10).json()
    params = {"client_id": client_id, "access_token": token["access_token"]}
    if nonce is not None:
        params["nonce"] = nonce
    claims = jwt.decode(
        token["id_token"],
        JsonWebKey.import_key_set(jwks),
        claims_cls=CodeIDToken,
        claims_options={"iss": {"essential": True, "value": metadata["issuer"]}},
        claims_params=params,
    )
    claims.validate()
    return claims


@pytest.mark.parametrize("alg", ALGS)
def test_discovery_code_flow_and_refresh_with_an_rp_library(
    server: ServerProcess, alg: str
) -> None:
    metadata = httpx.get(server.url("/.well-known/openid-configuration"), timeout=10).json()
    assert metadata["issuer"] == server.base_url
    assert alg in metadata["id_token_signing_alg_values_supported"]
    client_id = f"rp-{alg.lower()}"
    nonce = f"nonce-{alg}-0123456789"
    verifier = "an-oidc-pkce-verifier-" + "z" * 40
    with (
        httpx.Client(timeout=10.0, follow_redirects=False) as browser,
        OAuth2Client(
            client_id=client_id,
            redirect_uri=REDIRECT,
            scope=" ".join(SCOPES),
            code_challenge_method="S256",
            token_endpoint_auth_method="none",
            timeout=10.0,
        ) as client,
    ):
        url, _ = client.create_authorization_url(
            metadata["authorization_endpoint"], code_verifier=verifier, nonce=nonce
        )
        callback = through_pages(browser, url)
        token = client.fetch_token(
            metadata["token_endpoint"], authorization_response=callback, code_verifier=verifier
        )
        claims = validated(token, metadata, client_id, nonce)
        header = token["id_token"].split(".")[0]
        assert jwt_header(header)["alg"] == alg
        assert claims["aud"] == client_id
        assert claims["sid"]
        assert "auth_time" in claims

        # userinfo, GET with the bearer header (through the library) and POST with the
        # token in a form body (RFC 6750 §2.2)
        info = client.get(metadata["userinfo_endpoint"])
        assert info.status_code == 200, info.text
        assert info.json()["sub"] == claims["sub"]
        assert info.json()["preferred_username"] == "admin"
        posted = httpx.post(
            metadata["userinfo_endpoint"], data={"access_token": token["access_token"]}, timeout=10
        )
        assert posted.json() == info.json()

        renewed = client.refresh_token(metadata["token_endpoint"])
        again = validated(renewed, metadata, client_id, None)
        assert again["sub"] == claims["sub"]
        assert again["auth_time"] == claims["auth_time"]


def jwt_header(segment: str) -> dict[str, Any]:
    import base64
    import json

    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))  # type: ignore[no-any-return]
