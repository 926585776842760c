"""Client assertions (RFC 7523 §2.2) for the tests: keys, JWK Sets and signed JWTs, a
tiny HTTP server on a loopback port that publishes a JWK Set (a client's jwks_uri), and a
fake fetch for the jwks_uri fetcher (its clock: tests/support/fakes.py)."""

from __future__ import annotations

import contextlib
import http.server
import json
import secrets
import threading
import time
from collections.abc import Iterator
from typing import Any

import trio
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey, RSAKey

from authly.oauth.jwks_fetch import JwksUnavailable

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def rsa_key(kid: str | None = "rsa-1") -> RSAKey:
    key = RSAKey.generate_key(2048, auto_kid=False)
    return RSAKey.import_key({**key.as_dict(private=True), **({"kid": kid} if kid else {})})


def ec_key(kid: str | None = "ec-1") -> ECKey:
    key = ECKey.generate_key("P-256", auto_kid=False)
    return ECKey.import_key({**key.as_dict(private=True), **({"kid": kid} if kid else {})})


def public_jwks(*keys: RSAKey | ECKey) -> dict[str, Any]:
    return {"keys": [k.as_dict(private=False) for k in keys]}


def jwks_text(*keys: RSAKey | ECKey) -> str:
    return json.dumps(public_jwks(*keys))


def sign(
    key: RSAKey | ECKey | OctKey | str,
    client_id: str,
    aud: str | list[str],
    *,
    alg: str = "RS256",
    lifetime: float = 60,
    header: dict[str, Any] | None = None,
    **claims: Any,
) -> str:
    """A client assertion from ``client_id`` for ``aud``; ``claims`` add to or replace
    the defaults (a value of None leaves that claim out). A str key is an HMAC secret."""
    if isinstance(key, str):
        key = OctKey.import_key(key.encode())
    now = int(time.time())
    body: dict[str, Any] = {
        "iss": client_id,
        "sub": client_id,
        "aud": aud,
        "iat": now,
        "exp": now + lifetime,
        "jti": secrets.token_urlsafe(16),
    }
    body.update(claims)
    body = {k: v for k, v in body.items() if v is not None}
    head: dict[str, Any] = {"alg": alg}
    if not isinstance(key, OctKey) and key.kid:
        head["kid"] = key.kid
    head.update(header or {})
    head = {k: v for k, v in head.items() if v is not None}
    return jwt.encode(head, body, key, algorithms=[alg])


def assertion_form(assertion: str, **params: str) -> dict[str, str]:
    return {"client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion, **params}


class _JwksHandler(http.server.BaseHTTPRequestHandler):
    document = "{}"
    status = 200
    requests = 0

    def do_GET(self) -> None:
        type(self).requests += 1
        body = self.document.encode()
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def jwks_server(document: str) -> Iterator[tuple[type[_JwksHandler], str]]:
    """An HTTP server on a free loopback port serving ``document`` at any path; yields
    its handler class (set ``document``/``status``, read ``requests``) and its URL."""
    handler = type("JwksHandler", (_JwksHandler,), {"document": document})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield handler, f"http://127.0.0.1:{server.server_address[1]}/jwks.json"
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


class Fetcher:
    """A jwks_uri fetch that hands out ``documents`` in turn (the last one again once
    they are used up; ``"fail"`` fails) and counts its calls; clear ``release`` to hold
    fetches until it is set."""

    def __init__(self, *documents: str) -> None:
        self.documents = list(documents)
        self.calls = 0
        self.release = trio.Event()
        self.release.set()

    async def __call__(self, uri: str, timeout: float) -> str:
        self.calls += 1
        await self.release.wait()
        document = self.documents[min(self.calls, len(self.documents)) - 1]
        if document == "fail":
            raise JwksUnavailable("HTTP 500")
        return document


URI = "https://app.example/jwks.json"
