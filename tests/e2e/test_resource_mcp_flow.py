"""An MCP-style client against a real server: it meets a resource server's 401, follows
``WWW-Authenticate: Bearer resource_metadata="..."`` (RFC 9728 §5.1) to the metadata
Authly serves, discovers Authly (RFC 8414), registers (RFC 7591, when Authly offers it)
or uses a pre-registered public client, authorizes with PKCE and ``resource`` (RFC
8707), and calls the resource with the token. The resource server is a tiny
``http.server`` built with ``authly.resource_server``: it checks the token's signature
against Authly's JWKS and that ``aud`` is its own identifier.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from authly.resource_server import ResourceServer, TokenRejected
from authly.store import scopes as scope_repo
from authly.store.conn import SqliteConn
from authly.store.db import connect
from authly.store.migrations import migrate
from authly.store.scopes import Scope
from tests.e2e.oauth_support import Spawn
from tests.e2e.server import ADMIN_PASSWORD, authly_env
from tests.e2e.test_authlib_client import REDIRECT, through_pages
from tests.support.processes import ServerProcess, free_port
from tests.support.store import register_client

pytestmark = pytest.mark.e2e

SCOPE = "mcp:tools"
CLIENT = "mcp-inspector"


class McpResource:
    """A protected MCP endpoint on a loopback port: 401 with the challenge without a
    valid token, 200 with the token's subject when the token is for it."""

    def __init__(self) -> None:
        self.port = 0
        self.api: ResourceServer | None = None
        self.jwks: dict[str, Any] | None = None
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    def start(self) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, body, challenge = owner.answer(self.headers.get("Authorization", ""))
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                if challenge:
                    self.send_header("WWW-Authenticate", challenge)
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def protect_with(self, issuer: str) -> None:
        self.api = ResourceServer(issuer=issuer, resource=self.url, scopes=(SCOPE,))

    def answer(self, authorization: str) -> tuple[int, dict[str, Any], str]:
        api = self.api
        assert api is not None
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return 401, {"error": "unauthorized"}, api.challenge()
        if self.jwks is None:
            with httpx.Client(timeout=10.0) as http:
                self.jwks = http.get(f"{api.issuer}/.well-known/jwks.json").json()
        try:
            claims = api.verify(token, self.jwks, required_scopes=[SCOPE])
        except TokenRejected as rejected:
            return rejected.status, {"error": rejected.error}, api.challenge_for(rejected)
        return 200, {"sub": claims["sub"], "aud": claims["aud"], "tools": ["echo"]}, ""

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


@pytest.fixture
def resource() -> Iterator[McpResource]:
    server = McpResource()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _seed(db: Path) -> None:
    """The scope the MCP server uses, and a pre-registered public client."""
    register_client(
        db, CLIENT, redirect_uris=(REDIRECT,), scopes=(SCOPE, "offline_access"), name="Inspector"
    )
    sqlite = connect(str(db))
    try:
        conn = SqliteConn(sqlite)
        migrate(conn)
        scope_repo.insert(conn, Scope(SCOPE, "Use the MCP server's tools", False), time.time())
    finally:
        sqlite.close()


@pytest.fixture
def authly(spawn: Spawn, tmp_path: Path, resource: McpResource) -> ServerProcess:
    db = tmp_path / "authly.db"
    _seed(db)
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    env = authly_env(db, AUTHLY_ISSUER=issuer, AUTHLY_REGISTRATION="open")
    server = spawn(env=env, port=port)
    server.wait_healthy()
    resource.protect_with(issuer)
    # The operator registers the MCP server as a resource, through the admin API.
    with httpx.Client(base_url=issuer, timeout=10.0) as http:
        login = {"username": "admin", "password": ADMIN_PASSWORD}
        handle = http.post("/api/v1/admin/session", json=login).json()["session"]
        created = http.post(
            "/api/v1/admin/resources",
            json={"resource": resource.url, "name": "MCP tools", "scopes": [SCOPE]},
            headers={"Authorization": f"Bearer {handle}"},
        )
        assert created.status_code == 201, created.text
    return server


def _resource_metadata_url(challenge: str) -> str:
    assert challenge.startswith("Bearer "), challenge
    match = re.search(r'resource_metadata="([^"]+)"', challenge)
    assert match, challenge
    return match.group(1)


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _client_id(http: httpx.Client, discovery: dict[str, Any], mode: str) -> str:
    if mode == "preregistered":
        return CLIENT
    endpoint = discovery.get("registration_endpoint")
    if not endpoint:
        pytest.skip("this server does not advertise dynamic client registration")
    metadata = {
        "client_name": "MCP client",
        "redirect_uris": [REDIRECT],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
        "scope": f"{SCOPE} offline_access",
    }
    registered = http.post(endpoint, json=metadata)
    assert registered.status_code == 201, registered.text
    return str(registered.json()["client_id"])


@pytest.mark.parametrize("mode", ["preregistered", "dynamic"])
def test_mcp_client_discovers_authly_from_the_resource(
    authly: ServerProcess, resource: McpResource, mode: str
) -> None:
    with (
        httpx.Client(timeout=10.0) as http,
        httpx.Client(timeout=10.0, follow_redirects=False) as browser,
    ):
        # 1. The MCP server refuses, naming its metadata.
        refused = http.get(resource.url)
        assert refused.status_code == 401
        metadata_url = _resource_metadata_url(refused.headers["WWW-Authenticate"])
        assert metadata_url.startswith(authly.base_url)
        # 2. Its metadata names the resource (RFC 9728 §3.3: must be what we called)
        #    and the authorization server.
        prm = http.get(metadata_url).json()
        assert prm["resource"] == resource.url
        assert prm["scopes_supported"] == [SCOPE]
        [issuer] = prm["authorization_servers"]
        # 3. The authorization server's own metadata (RFC 8414).
        discovery = http.get(f"{issuer}/.well-known/oauth-authorization-server").json()
        assert discovery["issuer"] == issuer
        assert "S256" in discovery["code_challenge_methods_supported"]
        client_id = _client_id(http, discovery, mode)
        # 4. Authorization code with PKCE, for the resource.
        verifier, challenge = _pkce()
        query = {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": REDIRECT,
            "scope": " ".join(prm["scopes_supported"] + ["offline_access"]),
            "state": "mcp-state",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "resource": resource.url,
        }
        callback = through_pages(
            browser, f"{discovery['authorization_endpoint']}?{urlencode(query)}"
        )
        answer = {k: v[0] for k, v in parse_qs(urlsplit(callback).query).items()}
        assert answer["state"] == "mcp-state"
        assert answer["iss"] == issuer
        # 5. The code for a token, naming the resource again.
        form = {
            "grant_type": "authorization_code",
            "code": answer["code"],
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
            "client_id": client_id,
            "resource": resource.url,
        }
        tokens = http.post(discovery["token_endpoint"], data=form).json()
        assert tokens["scope"] == f"{SCOPE} offline_access", tokens
        # 6. The MCP server accepts it: signature through the JWKS, aud is its URL.
        bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
        called = http.get(resource.url, headers=bearer)
        assert called.status_code == 200, called.text
        assert called.json()["aud"] == resource.url
        # A token for Authly itself is not for the MCP server.
        refreshed = http.post(
            discovery["token_endpoint"],
            data={
                "grant_type": "refresh_token",
                "refresh_token": tokens["refresh_token"],
                "client_id": client_id,
            },
        ).json()
        assert (
            http.get(
                resource.url, headers={"Authorization": f"Bearer {refreshed['access_token']}"}
            ).status_code
            == 200
        )
        wrong = http.post(
            discovery["token_endpoint"],
            data={
                "grant_type": "refresh_token",
                "refresh_token": refreshed["refresh_token"],
                "client_id": client_id,
                "resource": f"{issuer}/api",
            },
        )
        assert wrong.status_code == 400
        assert wrong.json()["error"] == "invalid_target"
