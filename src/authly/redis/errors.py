"""What a Redis call can end with, and the kind each failure is counted under
(``authly_redis_errors_total{kind}``): defined here, raised by the actor."""

from __future__ import annotations

from typing import TypeVar

from authly.errors import AuthlyError, BackendUnavailable

# Error replies that mean "Redis will not serve us now", not "this command is wrong".
REFUSALS = frozenset(
    {"WRONGPASS", "NOAUTH", "NOPERM", "LOADING", "MASTERDOWN", "READONLY", "MISCONF", "OOM", "BUSY"}
)
AUTH_REFUSALS = frozenset({"WRONGPASS", "NOAUTH", "NOPERM"})
E = TypeVar("E", bound=BaseException)
_KIND = "_authly_error_kind"  # the observer's error kind, set on the errors the actor raises


class RedisCommandError(AuthlyError):
    """Raised when Redis answered one command with an error reply."""


class ConnectionLost(BackendUnavailable):
    """The connection failed (closed, refused, AUTH or TLS refused at connect); the actor
    has dropped every pooled connection, so the next call starts on a fresh one."""


def with_kind(error: E, kind: str) -> E:
    setattr(error, _KIND, kind)
    return error


def error_kind(error: BaseException) -> str:
    """The observer's kind for an error a call ended with (``ERROR_KINDS``)."""
    kind = getattr(error, _KIND, None)
    if kind is not None:
        return str(kind)
    return "command" if isinstance(error, RedisCommandError) else "other"
