"""private_key_jwt and client_secret_jwt (RFC 7523 §2.2) with an independent client
library, Authlib's ``PrivateKeyJWT`` and ``ClientSecretJWT`` on its httpx OAuth 2 client,
against a real ``python -m authly serve`` process: the client_credentials grant,
introspection and revocation, inline keys and a jwks_uri served by a small HTTP server on
a free loopback port (as a client publishes its keys).

Authlib signs assertions valid for an hour with ``iat``: Authly accepts them within five
minutes of ``iat`` and remembers each ``jti`` that long (oauth/assertions.py).
"""

from __future__ import annotations

import base64
import json
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# See test_authlib_client.py: import the module that forces Authlib's warning first.
import authlib.deprecate  # noqa: F401
import httpx
import pytest

from tests.e2e.oauth_support import TOKEN, Spawn, start_server
from tests.support.assertions import ec_key, jwks_server, jwks_text, rsa_key
from tests.support.processes import ServerProcess
from tests.support.store import register_client

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="The httpx module is deprecated")
    from authlib.integrations.httpx_client import OAuth2Client, OAuthError
    from authlib.oauth2.rfc7523 import ClientSecretJWT, PrivateKeyJWT, private_key_jwt_sign

pytestmark = pytest.mark.e2e

INTROSPECT = "/api/v1/oauth/introspect"
REVOKE = "/api/v1/oauth/revoke"
SECRET = "client-secret-jwt-e2e-0123456789abcdefghijkl"
RSA = rsa_key(None)  # Authlib sends no kid: the server tries the client's keys of that type
EC = ec_key(None)
ROTATED = rsa_key(None)
SERVICE = {"grant_types": ("client_credentials",), "scopes": ("profile",)}


@pytest.fixture
def published() -> Iterator[tuple[Any, str]]:
    """The JWK Set of the jwks_uri client, served on a free loopback port."""
    with jwks_server(jwks_text(RSA)) as served:
        yield served


@pytest.fixture
def server(spawn: Spawn, tmp_path: Path, published: tuple[Any, str]) -> ServerProcess:
    db = tmp_path / "authly.db"
    register_client(db, "rsa-svc", auth_method="private_key_jwt", jwks=jwks_text(RSA), **SERVICE)
    register_client(db, "ec-svc", auth_method="private_key_jwt", jwks=jwks_text(EC), **SERVICE)
    register_client(db, "hmac-svc", auth_method="client_secret_jwt", secret=SECRET, **SERVICE)
    register_client(db, "uri-svc", auth_method="private_key_jwt", jwks_uri=published[1], **SERVICE)
    return start_server(spawn, tmp_path)


def private_key_client(client_id: str, key: Any, auth: Any) -> OAuth2Client:
    client = OAuth2Client(
        client_id=client_id,
        client_secret=key,
        token_endpoint_auth_method=auth.name,
        revocation_endpoint_auth_method=auth.name,  # Authlib's default there is Basic
        scope="profile",
        timeout=10.0,
    )
    client.register_client_auth_method(auth)
    return client


def access_claims(token: str) -> dict[str, Any]:
    part = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


@pytest.mark.parametrize(
    ("client_id", "key", "alg"),
    [("rsa-svc", RSA, "RS256"), ("rsa-svc", RSA, "PS256"), ("ec-svc", EC, "ES256")],
)
def test_private_key_jwt_client_credentials(
    server: ServerProcess, client_id: str, key: Any, alg: str
) -> None:
    token_url = server.url(TOKEN)
    with private_key_client(client_id, key, PrivateKeyJWT(token_url, alg=alg)) as client:
        token = client.fetch_token(token_url, grant_type="client_credentials")
        assert token["token_type"] == "Bearer"
        assert token["scope"] == "profile"
        assert access_claims(token["access_token"])["sub"] == client_id
        # Introspection and revocation authenticate the same way (aud: the token endpoint).
        active = client.introspect_token(server.url(INTROSPECT), token=token["access_token"])
        assert active.status_code == 200, active.text
        assert active.json()["active"] is True
        revoked = client.revoke_token(server.url(REVOKE), token=token["access_token"])
        assert revoked.status_code == 200, revoked.text
        gone = client.introspect_token(server.url(INTROSPECT), token=token["access_token"])
        assert gone.json() == {"active": False}


def test_the_endpoint_called_may_be_the_audience(server: ServerProcess) -> None:
    # Without a token endpoint, Authlib puts the URL it calls in aud.
    with private_key_client("rsa-svc", RSA, PrivateKeyJWT()) as client:
        token = client.fetch_token(server.url(TOKEN), grant_type="client_credentials")
        answer = client.introspect_token(server.url(INTROSPECT), token=token["access_token"])
        assert answer.json()["active"] is True


def test_client_secret_jwt_client_credentials(server: ServerProcess) -> None:
    token_url = server.url(TOKEN)
    for alg in ("HS256", "HS512"):
        with OAuth2Client(
            client_id="hmac-svc",
            client_secret=SECRET,
            token_endpoint_auth_method="client_secret_jwt",
            timeout=10.0,
        ) as client:
            client.register_client_auth_method(ClientSecretJWT(token_url, alg=alg))
            token = client.fetch_token(token_url, grant_type="client_credentials")
            assert access_claims(token["access_token"])["sub"] == "hmac-svc"


def test_a_wrong_secret_or_key_is_invalid_client(server: ServerProcess) -> None:
    token_url = server.url(TOKEN)
    with OAuth2Client(
        client_id="hmac-svc",
        client_secret="not-the-secret-" + "x" * 30,
        token_endpoint_auth_method="client_secret_jwt",
        timeout=10.0,
    ) as client:
        client.register_client_auth_method(ClientSecretJWT(token_url))
        with pytest.raises(OAuthError) as refused:
            client.fetch_token(token_url, grant_type="client_credentials")
        assert refused.value.error == "invalid_client"
    with (
        private_key_client("rsa-svc", rsa_key(None), PrivateKeyJWT(token_url)) as client,
        pytest.raises(OAuthError) as refused,
    ):
        client.fetch_token(token_url, grant_type="client_credentials")
    assert refused.value.error == "invalid_client"


def test_a_replayed_assertion_is_refused(server: ServerProcess) -> None:
    token_url = server.url(TOKEN)
    assertion = private_key_jwt_sign(RSA, client_id="rsa-svc", token_endpoint=token_url)
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion,
    }
    first = httpx.post(token_url, data=form, timeout=10.0)
    assert first.status_code == 200, first.text
    again = httpx.post(token_url, data=form, timeout=10.0)
    assert again.status_code == 401
    assert again.json()["error"] == "invalid_client"


def test_a_jwks_uri_client_and_its_key_rotation(
    server: ServerProcess, published: tuple[Any, str]
) -> None:
    handler, _ = published
    token_url = server.url(TOKEN)
    with private_key_client("uri-svc", RSA, PrivateKeyJWT(token_url)) as client:
        token = client.fetch_token(token_url, grant_type="client_credentials")
        assert access_claims(token["access_token"])["sub"] == "uri-svc"
        client.fetch_token(token_url, grant_type="client_credentials")
    assert handler.requests == 1  # the set is cached (AUTHLY cache slot)
    # The client starts publishing a second key, then signs with it: no cached key
    # verifies (Authlib sends no kid), so the server fetches the set again, once.
    handler.document = jwks_text(RSA, ROTATED)
    with private_key_client("uri-svc", ROTATED, PrivateKeyJWT(token_url)) as client:
        token = client.fetch_token(token_url, grant_type="client_credentials")
        assert access_claims(token["access_token"])["sub"] == "uri-svc"
    assert handler.requests == 2
    # A key the client never published: refused; within the cooldown no new fetch.
    with (
        private_key_client("uri-svc", rsa_key(None), PrivateKeyJWT(token_url)) as client,
        pytest.raises(OAuthError) as refused,
    ):
        client.fetch_token(token_url, grant_type="client_credentials")
    assert refused.value.error == "invalid_client"
    assert handler.requests == 2
