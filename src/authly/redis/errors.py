"""What a Redis call can end with, and the kind each failure is counted under
(``authly_redis_errors_total{kind}``): defined here, raised by the actor."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from authly.errors import AuthlyError, BackendUnavailable

# Error replies that mean "Redis will not serve us now", not "this command is wrong".
REFUSALS = frozenset(
    {"WRONGPASS", "NOAUTH", "NOPERM", "LOADING", "MASTERDOWN", "READONLY", "MISCONF", "OOM", "BUSY"}
    | {"CLUSTERDOWN", "TRYAGAIN"}
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


def describe(exc: BaseException, mask: Callable[[str], str]) -> str:
    """Why a call failed, in Redis's words where it gave some (its error code first),
    else the exception's class and text; passed through ``mask`` (the URL's passwords)."""
    code = getattr(exc, "status_code", None)
    text = str(exc)
    if code and not text.startswith(code):
        text = f"{code} {text}"
    elif not code:
        text = f"{exc.__class__.__name__}: {text}" if text else exc.__class__.__name__
    return mask(text)


def reply_error(reply: Exception, mask: Callable[[str], str]) -> Exception:
    """What the caller of one command gets for an error reply: BackendUnavailable when
    the reply means Redis refuses us now (REFUSALS), else RedisCommandError (a bug)."""
    if isinstance(reply, BackendUnavailable):  # a cluster node failed (actor._pipeline)
        return reply
    text = describe(reply, mask) if getattr(reply, "status_code", None) else mask(str(reply))
    code = text.split(" ", 1)[0]
    if code in REFUSALS:
        return with_kind(
            BackendUnavailable(text), "auth" if code in AUTH_REFUSALS else "unavailable"
        )
    return RedisCommandError(text)


def connection_lost(
    exc: BaseException, mask: Callable[[str], str], *, auth: bool
) -> ConnectionLost:
    """The error for a failed connection; counted as ``auth`` when Redis refused our
    credentials (``auth``, or a WRONGPASS/NOAUTH/NOPERM text), else ``connection``."""
    text = describe(exc, mask)
    auth = auth or text.split(" ", 1)[0] in AUTH_REFUSALS
    return with_kind(ConnectionLost(text), "auth" if auth else "connection")
