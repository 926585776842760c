"""Scope strings (RFC 6749 §3.3): space-delimited, case-sensitive tokens."""

from __future__ import annotations

import re

from authly.errors import InvalidScope

# scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
_SCOPE_TOKEN = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]+$")


def parse_scope(text: str | None) -> frozenset[str] | None:
    """Parse a scope parameter; None when absent. Raises InvalidScope when malformed."""
    if text is None or text == "":
        return None  # an empty scope parameter is the same as none (as on /auth/login)
    tokens = text.split(" ")
    if any(not _SCOPE_TOKEN.match(t) for t in tokens):
        raise InvalidScope("scope must be space-separated tokens of printable ASCII")
    return frozenset(tokens)


def format_scope(scopes: frozenset[str] | set[str]) -> str:
    return " ".join(sorted(scopes))


def describe_scope(scopes: frozenset[str] | set[str], limit: int = 200) -> str:
    """A scope list for an error message, cut short so a request cannot fill it."""
    text = format_scope(scopes)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def resolve_scope(
    requested: frozenset[str] | None, allowed: frozenset[str], default: frozenset[str]
) -> frozenset[str]:
    """Requested scope if all of it is allowed; the default scope when none was asked."""
    if requested is None:
        return default
    extra = requested - allowed
    if extra:
        raise InvalidScope(f"scope not allowed: {describe_scope(extra)}")
    return requested
