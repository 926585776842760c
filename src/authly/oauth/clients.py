"""OAuth clients: registration values, authentication and redirect-URI matching.

- Confidential clients authenticate with ``client_secret_basic`` or
  ``client_secret_post``; secrets are 256 random bits, stored as SHA-256, compared in
  constant time, shown once. Or with a signed JWT, ``client_secret_jwt`` or
  ``private_key_jwt`` (RFC 7523 §2.2): ``credentials_from`` reads the assertion, and
  oauth/assertions.py verifies it (oauth/client_auth.py puts the two together).
- Public clients use ``none`` and must use PKCE (required for everyone anyway).
- Redirect URIs match exactly, character for character, after a strict parse; the one
  exception is RFC 8252 §7.3: for a public (native) client whose registered URI is an
  ``http`` loopback IP literal, any port is accepted (oauth/redirect_uris.py).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote

from authly.errors import InvalidClient, InvalidRequest
from authly.oauth import redirect_uris
from authly.oauth.client_keys import ASSERTION_TYPE, JWT_METHODS
from authly.store.clients import ClientRow

SECRET_METHODS = ("client_secret_basic", "client_secret_post")
AUTH_METHODS = (*SECRET_METHODS, *JWT_METHODS, "none")
ASSERTION = "client_assertion"  # ClientCredentials.method of a JWT (either JWT method)


def new_client_secret() -> tuple[str, str]:
    """(secret shown once, hash stored)."""
    secret = secrets.token_urlsafe(32)
    return secret, hash_secret(secret)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def redirect_uri_matches(client: ClientRow, uri: str) -> bool:
    """Exact match; public clients also get RFC 8252's loopback port exception (see
    oauth/redirect_uris.py, which parses every URI strictly first)."""
    return redirect_uris.matches(
        client.redirect_uris, uri, any_loopback_port=not client.is_confidential
    )


@dataclass(frozen=True)
class ClientCredentials:
    """What a token-endpoint request presented to identify its client."""

    client_id: str | None
    secret: str | None
    method: str  # client_secret_basic | client_secret_post | client_assertion | none
    assertion: str | None = None


def credentials_from(authorization: str | None, params: Mapping[str, str]) -> ClientCredentials:
    """Read client credentials from Basic auth (RFC 6749 §2.3.1), the form body, or a
    client assertion (RFC 7521 §4.2: ``client_assertion_type`` + ``client_assertion``).

    Using two at once is refused (§2.3: MUST NOT use more than one method).
    """
    if "client_assertion_type" in params or "client_assertion" in params:
        return _assertion_credentials(authorization, params)
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "basic":
            if "client_secret" in params:
                raise InvalidRequest("Use one client authentication method, not two.")
            try:
                decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                raise InvalidClient("Malformed Basic credentials.") from None
            user, sep, password = decoded.partition(":")
            if not sep:
                raise InvalidClient("Malformed Basic credentials.")
            body_id = params.get("client_id")
            client_id = unquote(user)
            if body_id is not None and body_id != client_id:
                raise InvalidRequest("client_id in the body differs from the Basic credentials.")
            return ClientCredentials(client_id, unquote(password), "client_secret_basic")
    if "client_secret" in params:
        return ClientCredentials(
            params.get("client_id"), params["client_secret"], "client_secret_post"
        )
    return ClientCredentials(params.get("client_id"), None, "none")


def _assertion_credentials(
    authorization: str | None, params: Mapping[str, str]
) -> ClientCredentials:
    if "client_secret" in params or (
        authorization and authorization.partition(" ")[0].lower() == "basic"
    ):
        raise InvalidRequest("Use one client authentication method, not two.")
    kind, assertion = params.get("client_assertion_type"), params.get("client_assertion")
    if not kind or not assertion:
        raise InvalidRequest("client_assertion_type and client_assertion go together.")
    if kind != ASSERTION_TYPE:
        raise InvalidClient(f"client_assertion_type must be {ASSERTION_TYPE}.")
    return ClientCredentials(params.get("client_id"), None, ASSERTION, assertion)


def authenticate(client: ClientRow | None, creds: ClientCredentials) -> ClientRow:
    """The client, if the secret (or its absence) proves it; InvalidClient (401) otherwise.

    Unknown clients and wrong secrets get the same answer, and the secret comparison is
    constant-time over the hashes. A client assertion is verified by
    oauth/assertions.py, never here: it is refused.
    """
    if client is None:
        raise InvalidClient("Unknown client or bad credentials.")
    if creds.method == ASSERTION:
        raise InvalidClient("Client assertions are not accepted here.")
    if client.auth_method == "none":
        if creds.method != "none":
            raise InvalidClient("This public client does not use a secret.")
        return client
    if creds.method != client.auth_method or creds.secret is None:
        raise InvalidClient(f"This client must authenticate with {client.auth_method}.")
    expected = client.secret_hash or ""
    if not hmac.compare_digest(hash_secret(creds.secret), expected):
        raise InvalidClient("Unknown client or bad credentials.")
    return client
