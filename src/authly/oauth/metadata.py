"""Authorization server metadata (RFC 8414), built from configuration only.

The ``issuer`` and every URL come from AUTHLY_ISSUER, never from request headers, and
the document lists only what this server actually serves.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from authly.backends.protocols import Cache
from authly.oauth.authorization import RESPONSE_MODES
from authly.oauth.client_keys import ASSERTION_ALGS
from authly.oauth.clients import AUTH_METHODS
from authly.oauth.dpop import ALGS as DPOP_ALGS
from authly.oauth.grants import GRANTS
from authly.oidc.discovery import openid_metadata
from authly.store import scopes as scope_repo
from authly.store.db import Database


def server_metadata(
    issuer: str, scopes: list[str], *, require_par: bool = False, registration: bool = False
) -> dict[str, Any]:
    """``require_par``: AUTHLY_REQUIRE_PAR (RFC 9126 §5); ``registration``: whether
    AUTHLY_REGISTRATION lets clients register (``token`` or ``open``; RFC 7591)."""
    api = f"{issuer}/api/v1/oauth"
    client_auth = [m for m in AUTH_METHODS if m != "none"]
    document: dict[str, Any] = {
        "issuer": issuer,
        "authorization_endpoint": f"{api}/authorize",
        "token_endpoint": f"{api}/token",
        "revocation_endpoint": f"{api}/revoke",
        "introspection_endpoint": f"{api}/introspect",
        "device_authorization_endpoint": f"{api}/device_authorization",  # RFC 8628 §4
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "scopes_supported": sorted(scopes),
        "response_types_supported": ["code"],
        "response_modes_supported": list(RESPONSE_MODES),
        "grant_types_supported": list(GRANTS),
        "token_endpoint_auth_methods_supported": list(AUTH_METHODS),
        # client_secret_jwt and private_key_jwt (RFC 7523 §2.2): the algorithms accepted.
        "token_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGS),
        "revocation_endpoint_auth_methods_supported": list(AUTH_METHODS),
        "revocation_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGS),
        "introspection_endpoint_auth_methods_supported": client_auth,
        "introspection_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGS),
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": True,
        # RFC 9126 §5 (oauth/par.py); a client may require it for itself too (§6).
        "pushed_authorization_request_endpoint": f"{api}/par",
        "require_pushed_authorization_requests": require_par,
        "dpop_signing_alg_values_supported": list(DPOP_ALGS),  # RFC 9449 §5.1
    }
    if registration:
        document["registration_endpoint"] = f"{api}/register"  # RFC 8414 §2, RFC 7591 §3
    return document


METADATA_KEY = "metadata:oauth-authorization-server"
OPENID_KEY = "metadata:openid-configuration"
METADATA_TTL = 300.0


class MetadataDocument:
    """The RFC 8414 document and the OpenID Provider metadata as JSON, cache-aside
    through the cache slot for ``ttl`` and ``openid_ttl`` seconds (AUTHLY_CACHE_TTL_METADATA
    and AUTHLY_CACHE_TTL_DISCOVERY; also their Cache-Control max-age, web/oidc.py); both
    invalidated when the scope registry changes."""

    def __init__(
        self,
        issuer: str,
        db: Database,
        cache: Cache,
        *,
        ttl: float = METADATA_TTL,
        openid_ttl: float = METADATA_TTL,
        require_par: bool = False,
        registration: bool = False,
    ):
        self._issuer = issuer
        self._require_par = require_par
        self._registration = registration
        self._db = db
        self._cache = cache
        self.ttl = ttl
        self.openid_ttl = openid_ttl

    async def json(self) -> str:
        """RFC 8414 ``/.well-known/oauth-authorization-server``."""
        return await self._cached(METADATA_KEY, lambda doc: doc, self.ttl)

    async def openid_json(self) -> str:
        """OpenID Connect Discovery ``/.well-known/openid-configuration``."""
        return await self._cached(OPENID_KEY, openid_metadata, self.openid_ttl)

    async def _cached(
        self, key: str, build: Callable[[dict[str, Any]], dict[str, Any]], ttl: float
    ) -> str:
        cached = await self._cache.get(key)
        if cached is not None:
            return cached
        scopes = [s.name for s in await self._db.run(scope_repo.list_all)]
        oauth = server_metadata(
            self._issuer, scopes, require_par=self._require_par, registration=self._registration
        )
        document = json.dumps(build(oauth), separators=(",", ":"))
        await self._cache.set(key, document, ttl)
        return document

    async def invalidate(self) -> None:
        await self._cache.delete(METADATA_KEY)
        await self._cache.delete(OPENID_KEY)
