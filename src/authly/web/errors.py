"""Errors only the HTTP layer raises: about the request's form, not its meaning.

OAuthError (authly.errors)
├── InvalidRequest
│   ├── UnsupportedMediaType    415 invalid_request
│   ├── RequestTooLarge         413 invalid_request
│   └── InvalidBearerRequest    400 invalid_request + WWW-Authenticate (RFC 6750 §3.1)
├── MethodNotAllowed            405 method_not_allowed
└── TemporarilyUnavailable      503 temporarily_unavailable
"""

from __future__ import annotations

from authly.errors import InvalidRequest, OAuthError


class UnsupportedMediaType(InvalidRequest):
    """Raised when the body has the wrong Content-Type."""

    status_code = 415


class MethodNotAllowed(OAuthError):
    """Raised for a known path with the wrong method."""

    error = "method_not_allowed"
    status_code = 405
    default_description = "Method not allowed on this endpoint."


class RequestTooLarge(InvalidRequest):
    """Raised when the body exceeds AUTHLY_MAX_BODY_BYTES."""

    status_code = 413
    default_description = "The request body is too large."


class TemporarilyUnavailable(OAuthError):
    """Raised when a dependency (the store) cannot answer."""

    error = "temporarily_unavailable"
    status_code = 503
    default_description = "The server is temporarily unable to handle the request."


class InvalidBearerRequest(InvalidRequest):
    """Raised when a protected resource's request is malformed, e.g. it carries the
    access token in more than one way (RFC 6750 §2, §3.1)."""

    def headers(self) -> dict[str, str]:
        return {
            "WWW-Authenticate": f'Bearer realm="authly", error="invalid_request", '
            f'error_description="{self.description}"'
        }
