"""Errors raised by Authly's own layers, drawn as a tree.

    AuthlyError
    ├── ConfigError            bad configuration; start-up stops with one line
    ├── StoreError             the embedded/shared store failed or is closed
    │   └── StoreUnavailable        the shared database cannot be reached (503)
    ├── BackendUnavailable     a Redis-backed call failed or missed its deadline
    └── OAuthError             an error with its RFC 6749 §5.2 wire format
        ├── InvalidRequest          400 invalid_request
        ├── InvalidClient           401 invalid_client + WWW-Authenticate: Basic
        ├── InvalidGrant            400 invalid_grant (401 on the first-party login)
        ├── UnauthorizedClient      400 unauthorized_client
        ├── UnsupportedGrantType    400 unsupported_grant_type
        ├── InvalidScope            400 invalid_scope
        ├── InvalidToken            401 invalid_token + WWW-Authenticate (RFC 6750 §3.1)
        ├── InsufficientScope       403 insufficient_scope + WWW-Authenticate (RFC 6750 §3.1)
        ├── RateLimitExceeded       429 too_many_requests + Retry-After
        ├── AccessDenied            403 access_denied (400 when polling a device grant)
        ├── AuthorizationPending    400 authorization_pending (RFC 8628 §3.5)
        ├── SlowDown                400 slow_down (RFC 8628 §3.5)
        ├── ExpiredToken            400 expired_token (RFC 8628 §3.5)
        ├── NotFound                404 not_found (admin API: no such client or scope)
        └── Conflict                409 conflict (admin API: duplicates, in-use)

Errors that only HTTP parsing raises (413, 415, 405, 503) live in ``authly.web.errors``;
the store's duplicate-key errors (``UsernameTaken``, ``ClientExists``, ``ScopeExists``)
and ``RedisUrlError`` live beside the code that raises them, all under ``AuthlyError``.
Foreign errors (sqlite3, psycopg, redis-py, joserfc) are translated into these once, at the
module that talks to the foreign library; nothing above sees the foreign types.
Domain code only raises; ``web/render.py`` turns any OAuthError into a response.
"""

from __future__ import annotations

import math


class AuthlyError(Exception):
    """Root of every error Authly raises on purpose."""


class ConfigError(AuthlyError):
    """Raised when a setting has a bad value; the message names the variable."""

    def __init__(self, variable: str, problem: str) -> None:
        self.variable = variable
        self.problem = problem
        super().__init__(f"{variable}: {problem}")


class StoreError(AuthlyError):
    """Raised when the store cannot run a query (closed, locked too long, broken)."""


class StoreUnavailable(StoreError):
    """Raised when the database server cannot be reached (connection lost, pool empty)."""


class BackendUnavailable(AuthlyError):
    """Raised when a Redis-backed call fails or misses its deadline."""


class OAuthError(AuthlyError):
    """Base: ``error`` code, HTTP ``status_code``, optional description and headers."""

    error = "server_error"
    status_code = 500
    default_description = "The server could not handle the request."

    def __init__(self, description: str | None = None, *, status_code: int | None = None) -> None:
        self.description = description or self.default_description
        if status_code is not None:
            self.status_code = status_code
        super().__init__(self.description)

    def headers(self) -> dict[str, str]:
        return {}

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


class InvalidRequest(OAuthError):
    """Raised when a request is malformed: missing, repeated or oversized parameters."""

    error = "invalid_request"
    status_code = 400
    default_description = "The request is missing a parameter or is malformed."


class InvalidClient(OAuthError):
    """Raised when client authentication fails (RFC 6749 §5.2)."""

    error = "invalid_client"
    status_code = 401
    default_description = "Client authentication failed."

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Basic realm="authly"'}  # RFC 6749 §5.2


class InvalidGrant(OAuthError):
    """Raised when credentials, a code or a refresh token are invalid."""

    error = "invalid_grant"
    status_code = 400
    default_description = "The provided grant is invalid, expired or revoked."


class UnauthorizedClient(OAuthError):
    """Raised when the client may not use the requested grant type."""

    error = "unauthorized_client"
    status_code = 400


class UnsupportedGrantType(OAuthError):
    """Raised for a grant_type this server does not implement."""

    error = "unsupported_grant_type"
    status_code = 400
    default_description = "The grant type is not supported."


class AccessDenied(OAuthError):
    """Raised when the caller is authenticated but not allowed (admin API)."""

    error = "access_denied"
    status_code = 403
    default_description = "Not allowed."


class AuthorizationPending(OAuthError):
    """Raised when a device grant is polled before the user has answered."""

    error = "authorization_pending"
    status_code = 400
    default_description = "The user has not answered yet; keep polling."


class SlowDown(OAuthError):
    """Raised when a device grant is polled sooner than its interval allows."""

    error = "slow_down"
    status_code = 400
    default_description = "Polling too fast; add 5 seconds to the interval."


class ExpiredToken(OAuthError):
    """Raised when a device code has expired before the user approved it."""

    error = "expired_token"
    status_code = 400
    default_description = "The device code has expired; start again."


class InvalidScope(OAuthError):
    """Raised when the requested scope is unknown or exceeds what may be granted."""

    error = "invalid_scope"
    status_code = 400
    default_description = "The requested scope is invalid or exceeds what may be granted."


class InvalidToken(OAuthError):
    """Raised when a bearer access token is missing, malformed, expired or revoked."""

    error = "invalid_token"
    status_code = 401
    default_description = "The access token is invalid or expired."

    def __init__(self, description: str | None = None, *, missing: bool = False) -> None:
        self.missing = missing
        super().__init__(description or ("Bearer token required." if missing else None))

    def headers(self) -> dict[str, str]:
        # RFC 6750 §3.1: no error code when the request carried no credentials at all.
        if self.missing:
            return {"WWW-Authenticate": 'Bearer realm="authly"'}
        return {
            "WWW-Authenticate": f'Bearer realm="authly", error="invalid_token", '
            f'error_description="{self.description}"'
        }


class InsufficientScope(OAuthError):
    """Raised when a valid bearer access token lacks the scope a resource needs."""

    error = "insufficient_scope"
    status_code = 403
    default_description = "The access token lacks the scope this resource requires."

    def __init__(self, scope: str, description: str | None = None) -> None:
        self.scope = scope
        super().__init__(description)

    def headers(self) -> dict[str, str]:
        return {
            "WWW-Authenticate": f'Bearer realm="authly", error="insufficient_scope", '
            f'error_description="{self.description}", scope="{self.scope}"'
        }


class RateLimitExceeded(OAuthError):
    """Raised when a rate limit is exhausted; carries Retry-After in whole seconds."""

    error = "too_many_requests"
    status_code = 429

    def __init__(self, retry_after: float, description: str | None = None) -> None:
        self.retry_after = max(1, math.ceil(retry_after))
        super().__init__(description or f"Too many attempts; retry in {self.retry_after} s.")

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class NotFound(OAuthError):
    """Raised for an unknown path."""

    error = "not_found"
    status_code = 404
    default_description = "No such endpoint."


class Conflict(OAuthError):
    """Raised when a change conflicts with what exists: a duplicate, or a resource in use."""

    error = "conflict"
    status_code = 409
    default_description = "The request conflicts with the current state of the resource."
