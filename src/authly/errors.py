"""Errors raised by Authly's own layers.

The tree::

    AuthlyError
    ├── ConfigError            bad configuration; start-up stops with one line
    ├── StoreError             the embedded/shared store failed or is closed
    ├── BackendUnavailable     a Redis-backed feature could not answer in time
    └── OAuthError             (authly.oauth.errors) carries its RFC 6749 wire format

Foreign errors (sqlite3, redis-py, joserfc) are translated into these once, at the
module that talks to the foreign library; nothing above sees the foreign types.
"""

from __future__ import annotations


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


class BackendUnavailable(AuthlyError):
    """Raised when a Redis-backed call fails or misses its deadline."""
