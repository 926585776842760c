"""Redirect URIs: one strict parser for registration and for matching.

A redirect URI decides where a browser carries an authorization code, so Authly reads
it the way a browser would and refuses anything a browser might read differently
(RFC 9700 §4.1.3). The parser accepts only URIs already in their canonical form:

- printable ASCII from RFC 3986's set only: no space, ``\\`` (browsers read it as
  ``/``), ``"<>^`{|}``, control or non-ASCII characters; ``%`` only before two hex
  digits;
- a lower-case scheme; for ``http``/``https`` an authority with no userinfo (``@``),
  a lower-case host name whose labels are not empty, or a canonical dotted-quad IPv4 or
  bracketed IPv6 literal (``127.1`` or ``0x7f.0.0.1`` are IPv4 to a browser, not names),
  an optional port of 1 to 65535 written without leading zeros, and a path that starts
  with ``/`` and has no ``.``/``..`` segment (plain or percent-encoded);
- no fragment (RFC 6749 §3.1.2).

The parsed parts are rebuilt and must give back the presented text to the character.

Matching (RFC 6749 §3.1.2.3, OAuth 2.1 §2.3.1): the presented URI must be registered,
character for character. The one exception is RFC 8252 §7.3 for public (native)
clients: when the registered URI is ``http`` on a loopback IP literal, any port is
accepted, and only the port: scheme, host, path and query must be equal.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace

from authly.errors import InvalidRequest

MAX_LENGTH = 2000
# Schemes a browser would run or read locally rather than hand to an application.
FORBIDDEN_SCHEMES = frozenset({"javascript", "data", "vbscript", "file", "about", "blob"})

# RFC 3986 unreserved + reserved characters and "%" (checked again below).
_CHARS = re.compile(r"^[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+$")
_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_SCHEME = re.compile(r"^([a-z][a-z0-9+.\-]*):")
_HOST_LABEL = re.compile(r"^[a-z0-9]([a-z0-9\-]*[a-z0-9])?$")
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")
_PORT = re.compile(r"^[1-9][0-9]{0,4}$")
_DOT_SEGMENT = re.compile(r"^(\.|%2e){1,2}$", re.IGNORECASE)


class BadRedirectURI(InvalidRequest):
    """Raised when a redirect URI is not in the strict canonical form described above."""


@dataclass(frozen=True)
class RedirectURI:
    """A redirect URI in parts. ``host`` and ``port`` are empty/None for URIs without an
    authority (private-use schemes such as ``com.example.app:/cb``, RFC 8252 §7.1)."""

    scheme: str
    host: str
    port: int | None
    path: str
    query: str | None

    @property
    def has_authority(self) -> bool:
        return bool(self.host)

    def text(self) -> str:
        out = f"{self.scheme}:"
        if self.has_authority:
            out += "//" + self.host
            if self.port is not None:
                out += f":{self.port}"
        out += self.path
        if self.query is not None:
            out += "?" + self.query
        return out

    @property
    def is_loopback_ip(self) -> bool:
        """An ``http`` URI on a loopback IP literal (not ``localhost``: RFC 8252 §8.3)."""
        if self.scheme != "http":
            return False
        try:
            return ipaddress.ip_address(self.host.strip("[]")).is_loopback
        except ValueError:
            return False


def parse(uri: str) -> RedirectURI:
    """The parts of ``uri``; BadRedirectURI unless it is in strict canonical form."""
    if not uri or len(uri) > MAX_LENGTH:
        raise BadRedirectURI(f"A redirect URI has 1 to {MAX_LENGTH} characters.")
    if not _CHARS.match(uri) or _PERCENT.search(uri):
        raise BadRedirectURI(
            "A redirect URI may hold only printable ASCII URI characters (no spaces, "
            "backslashes or quotes) and %-escapes of two hex digits."
        )
    if "#" in uri:
        raise BadRedirectURI("A redirect URI must not have a fragment.")
    scheme_match = _SCHEME.match(uri)
    if scheme_match is None:
        raise BadRedirectURI("A redirect URI must be absolute, with a lower-case scheme.")
    scheme = scheme_match.group(1)
    rest = uri[scheme_match.end() :]
    rest, _, query_text = rest.partition("?")
    query = query_text if "?" in uri else None
    if scheme in ("http", "https"):
        if not rest.startswith("//"):
            raise BadRedirectURI("An http(s) redirect URI needs a host: scheme://host/path.")
        authority, slash, path = rest[2:].partition("/")
        host, port = _authority(authority)
        path = slash + path
        if not path:
            raise BadRedirectURI("An http(s) redirect URI needs a path (at least /).")
    else:
        if rest.startswith("//"):
            raise BadRedirectURI("Only http and https redirect URIs may name a host.")
        host, port, path = "", None, rest
    if any(_DOT_SEGMENT.match(segment) for segment in path.split("/")):
        raise BadRedirectURI("A redirect URI path must not have . or .. segments.")
    parsed = RedirectURI(scheme, host, port, path, query)
    if parsed.text() != uri:  # cannot happen with the rules above; kept as the invariant
        raise BadRedirectURI("A redirect URI must be in canonical form.")
    return parsed


def _authority(authority: str) -> tuple[str, int | None]:
    if "@" in authority:
        raise BadRedirectURI("A redirect URI must not carry user information (@).")
    if authority.startswith("["):
        inside, bracket, after = authority[1:].partition("]")
        host = f"[{inside}]"
        try:
            canonical = f"[{ipaddress.IPv6Address(inside).compressed}]"
        except ValueError:
            canonical = ""
        if not bracket or canonical != host:
            raise BadRedirectURI("A redirect URI's IPv6 host must be valid and compressed.")
    else:
        host = authority.partition(":")[0]
        after = authority[len(host) :]
        _check_host_name(host)
    if not after:
        return host, None
    if not after.startswith(":"):
        raise BadRedirectURI("A redirect URI's host is not valid.")
    return host, _port(after[1:])


def _check_host_name(host: str) -> None:
    labels = host.split(".")
    if not host or not all(_HOST_LABEL.match(label) for label in labels):
        raise BadRedirectURI(
            "A redirect URI's host must be a lower-case name of letters, digits and "
            "hyphens, or an IP address."
        )
    if _NUMERIC_LABEL.match(labels[-1]):
        # A browser reads any name ending in a number as an IPv4 address (WHATWG URL).
        try:
            canonical = str(ipaddress.IPv4Address(host))
        except ValueError:
            canonical = ""
        if canonical != host:
            raise BadRedirectURI("A redirect URI's IPv4 host must be four decimal numbers.")


def _port(text: str) -> int:
    if not _PORT.match(text) or int(text) > 65535:
        raise BadRedirectURI("A redirect URI's port must be a number from 1 to 65535.")
    return int(text)


def check_registrable(uri: str) -> str:
    """A redirect URI a client may register: strict form, not a scheme the browser runs
    itself, and ``http`` only on loopback hosts (RFC 8252 §7.3, OAuth 2.1 §2.3.1)."""
    parsed = parse(uri)
    if parsed.scheme in FORBIDDEN_SCHEMES:
        raise BadRedirectURI(f"The redirect URI scheme {parsed.scheme!r} is not allowed.")
    if parsed.scheme == "http" and not (parsed.host == "localhost" or parsed.is_loopback_ip):
        raise BadRedirectURI("http redirect URIs are allowed for loopback hosts only.")
    return uri


def matches(registered: Iterable[str], presented: str, *, any_loopback_port: bool) -> bool:
    """Whether ``presented`` is one of ``registered`` (see the module docstring)."""
    try:
        asked = parse(presented)
    except BadRedirectURI:
        return False
    registered = tuple(registered)
    if presented in registered:
        return True
    if not any_loopback_port or not asked.is_loopback_ip:
        return False
    for text in registered:
        try:
            candidate = parse(text)
        except BadRedirectURI:
            continue
        if candidate.is_loopback_ip and replace(candidate, port=asked.port) == asked:
            return True
    return False
