"""Helpers for a resource server (a protected API) that trusts Authly.

Framework-neutral and free of I/O: use them from any web framework, or none. They
build what RFC 9728 (OAuth 2.0 Protected Resource Metadata) asks a resource server to
publish, the ``WWW-Authenticate`` challenge of RFC 6750 §3 / RFC 9728 §5.1 that leads a
client to it, and check an access token (RFC 9068 JWT) against Authly's JWK Set::

    from authly.resource_server import ResourceServer

    api = ResourceServer(issuer="https://auth.example.com",
                         resource="https://api.example.com/mcp")
    # a request without a (valid) token:
    #   401, WWW-Authenticate: api.challenge()
    #   -> Bearer resource_metadata="https://auth.example.com/api/v1/oauth/resource-metadata?resource=https%3A%2F%2Fapi.example.com%2Fmcp"
    claims = api.verify(token, jwks)   # jwks: GET https://auth.example.com/.well-known/jwks.json

The metadata document lives at Authly (``metadata_url``): Authly serves it for every
registered resource. A resource server that prefers to serve it itself, at
``/.well-known/oauth-protected-resource`` on its own host (RFC 9728 §3), returns
``protected_resource_metadata(...)`` there and points ``challenge(metadata_url=...)``
at it.

This module imports nothing from the rest of Authly (only joserfc), so a resource
server can use it without running the server's code.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

# Where Authly serves the RFC 9728 document of a registered resource.
METADATA_PATH = "/api/v1/oauth/resource-metadata"
ACCESS_TOKEN_ALGS = ("RS256",)  # what Authly signs access tokens with
LEEWAY = 30  # seconds of clock skew, as Authly itself allows


def metadata_url(issuer: str, resource: str) -> str:
    """The URL of ``resource``'s protected resource metadata at Authly ``issuer``."""
    return f"{issuer.rstrip('/')}{METADATA_PATH}?resource={quote(resource, safe='')}"


def protected_resource_metadata(
    resource: str,
    issuer: str,
    scopes: Iterable[str] = (),
    *,
    name: str | None = None,
    bearer_methods: Sequence[str] = ("header",),
) -> dict[str, Any]:
    """The RFC 9728 §2 document for ``resource``, protected by Authly ``issuer``."""
    document: dict[str, Any] = {
        "resource": resource,
        "authorization_servers": [issuer],
        "scopes_supported": list(scopes),
        "bearer_methods_supported": list(bearer_methods),
    }
    if name:
        document["resource_name"] = name
    return document


def _quoted(value: str) -> str:
    """An RFC 9110 quoted-string of ``value`` (printable ASCII only; quotes escaped)."""
    text = "".join(c if " " <= c <= "~" else "?" for c in value)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def www_authenticate(
    resource_metadata: str,
    *,
    error: str | None = None,
    description: str | None = None,
    scope: str | None = None,
) -> str:
    """A ``WWW-Authenticate`` value: ``Bearer resource_metadata="..."`` (RFC 9728
    §5.1), with RFC 6750 §3's ``error``, ``error_description`` and ``scope`` when given
    (no ``error`` when the request carried no token at all, RFC 6750 §3.1)."""
    params = [f"resource_metadata={_quoted(resource_metadata)}"]
    if error:
        params.append(f"error={_quoted(error)}")
    if description:
        params.append(f"error_description={_quoted(description)}")
    if scope:
        params.append(f"scope={_quoted(scope)}")
    return "Bearer " + ", ".join(params)


class TokenRejected(Exception):
    """An access token the resource server must refuse: answer ``status`` with the
    ``WWW-Authenticate`` header that ``ResourceServer.challenge_for`` builds."""

    def __init__(self, error: str, description: str, status: int = 401, scope: str = "") -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status
        self.scope = scope


def verify_access_token(
    token: str,
    jwks: Mapping[str, Any],
    *,
    issuer: str,
    resource: str,
    required_scopes: Iterable[str] = (),
    now: Callable[[], float] = time.time,
) -> dict[str, Any]:
    """The claims of ``token`` if Authly ``issuer`` signed it (a key of ``jwks``) as an
    access token (``typ: at+jwt``) for ``resource`` (its ``aud`` names it), unexpired,
    with every scope of ``required_scopes``; TokenRejected otherwise (``invalid_token``,
    401, or ``insufficient_scope``, 403). Revocation is not checked: tokens are short
    lived; ask Authly's introspection endpoint where that matters."""
    try:
        keys = KeySet.import_key_set(dict(jwks))  # type: ignore[arg-type]
        decoded = jwt.decode(token, keys, algorithms=list(ACCESS_TOKEN_ALGS))
    except (JoseError, ValueError, TypeError, KeyError):
        raise TokenRejected("invalid_token", "The access token is malformed or unsigned.") from None
    if decoded.header.get("typ") != "at+jwt":
        raise TokenRejected("invalid_token", "The token is not an access token.")
    registry = jwt.JWTClaimsRegistry(
        now=lambda: int(now()),
        leeway=LEEWAY,
        iss={"essential": True, "value": issuer},
        aud={"essential": True, "value": resource},
        exp={"essential": True},
        sub={"essential": True},
    )
    try:
        registry.validate(decoded.claims)
    except JoseError:
        raise TokenRejected(
            "invalid_token", "The access token is expired or not meant for this resource."
        ) from None
    granted = str(decoded.claims.get("scope", "")).split()
    missing = [s for s in required_scopes if s not in granted]
    if missing:
        raise TokenRejected(
            "insufficient_scope",
            "The access token lacks a scope this request needs.",
            status=403,
            scope=" ".join(missing),
        )
    return dict(decoded.claims)


@dataclass(frozen=True)
class ResourceServer:
    """One protected resource: its identifier, the Authly that protects it, and where
    its metadata is (Authly's copy unless ``metadata_location`` is given)."""

    issuer: str
    resource: str
    scopes: tuple[str, ...] = ()
    name: str | None = None
    metadata_location: str | None = field(default=None)

    @property
    def metadata_url(self) -> str:
        return self.metadata_location or metadata_url(self.issuer, self.resource)

    def metadata(self) -> dict[str, Any]:
        """The RFC 9728 document, for a resource server that serves it itself."""
        return protected_resource_metadata(self.resource, self.issuer, self.scopes, name=self.name)

    def challenge(self) -> str:
        """The ``WWW-Authenticate`` value of a 401 to a request without a token."""
        return www_authenticate(self.metadata_url)

    def challenge_for(self, rejected: TokenRejected) -> str:
        """The ``WWW-Authenticate`` value of the answer to a refused token."""
        return www_authenticate(
            self.metadata_url,
            error=rejected.error,
            description=rejected.description,
            scope=rejected.scope or None,
        )

    def verify(
        self, token: str, jwks: Mapping[str, Any], *, required_scopes: Iterable[str] = ()
    ) -> dict[str, Any]:
        """``verify_access_token`` for this resource."""
        return verify_access_token(
            token,
            jwks,
            issuer=self.issuer,
            resource=self.resource,
            required_scopes=required_scopes,
        )
