"""Resource indicators (RFC 8707): which protected resource a token is for.

A client names the resource(s) with ``resource`` (it may repeat) on the authorization
request (also pushed, RFC 9126, and the device authorization request, RFC 8628) and on
the token request. The rules:

- **Syntax.** Each value is an absolute URI without a fragment (RFC 8707 §2), at most
  ``MAX_IDENTIFIER`` characters; at most ``MAX_REQUESTED`` per request. Otherwise
  ``invalid_target`` (400).
- **Registry.** Each value must be a registered resource (store/resources.py), compared
  character for character; otherwise ``invalid_target``.
- **Scope.** A resource lists the scopes a token for it may carry. With resources named,
  a scope is allowed when one of them allows it, or when it is about Authly itself:
  ``openid`` and ``offline_access`` always, and with ``openid`` the userinfo scopes
  (``profile``, ``email``, ``address``, ``phone``: the token's ``aud`` then also names the
  issuer, tokens/access.py, so userinfo accepts it). A ``scope`` the client asked for
  explicitly that is not allowed is ``invalid_scope``; the default scope (no ``scope``
  parameter) is narrowed to what is allowed, silently.
- **Audience.** The access token's ``aud`` is the resource (a string), or the resources
  (an array); without ``resource`` it stays the issuer (tokens/access.py).
- **Token endpoint** (§2.2). Resources named there must be among those granted by the
  authorization (code, device grant, refresh-token family), else ``invalid_target``;
  they narrow the access token (its scope becomes what they allow, silently), while the
  refresh token keeps every resource and scope granted. Without ``resource`` the token
  is for every resource granted that is still registered. A grant made without
  ``resource`` was for the default audience: no ``resource`` may be named later.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from authly.errors import InvalidRequest, InvalidScope, OAuthError
from authly.oauth.scopes import describe_scope
from authly.oidc.claims import SCOPE_CLAIMS
from authly.store import resources as resource_repo
from authly.store.db import Database

PARAMETER = "resource"
MAX_IDENTIFIER = 2000
MAX_REQUESTED = 10
# Scopes about Authly itself, never about a resource (see the module docstring).
AUTHLY_SCOPES = frozenset({"openid", "offline_access"})
USERINFO_SCOPES = frozenset(SCOPE_CLAIMS)

# RFC 3986 unreserved + reserved characters and "%" (a fragment's "#" is refused first).
_URI_CHARS = re.compile(r"^[A-Za-z0-9\-._~:/?\[\]@!$&'()*+,;=%]+$")
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:.")


class InvalidTarget(OAuthError):
    """RFC 8707 §2: the requested resource is invalid, unknown, malformed or was not
    granted."""

    error = "invalid_target"
    status_code = 400
    default_description = "The requested resource is invalid or unknown."


def identifier_problem(text: str) -> str | None:
    """Why ``text`` cannot be a resource identifier (RFC 8707 §2); None if it can."""
    if not text:
        return "is empty"
    if len(text) > MAX_IDENTIFIER:
        return f"is longer than {MAX_IDENTIFIER} characters"
    if "#" in text:
        return "must not have a fragment"
    if not _URI_CHARS.match(text) or _BAD_PERCENT.search(text):
        return "must be a URI of printable ASCII characters (no spaces or quotes)"
    if not _SCHEME.match(text):
        return "must be an absolute URI (with a scheme, e.g. https://api.example.com)"
    return None


def _shown(text: str) -> str:
    return repr(text if len(text) <= 100 else text[:97] + "...")


def check_requested(values: Sequence[str]) -> tuple[str, ...]:
    """The ``resource`` values of a request, well formed and without duplicates (order
    kept); InvalidTarget otherwise."""
    if len(values) > MAX_REQUESTED:
        raise InvalidTarget(f"At most {MAX_REQUESTED} resource parameters may be given.")
    for value in values:
        problem = identifier_problem(value)
        if problem is not None:  # not echoed: it may hold anything
            raise InvalidTarget(f"A resource parameter {problem}.")
    return tuple(dict.fromkeys(values))


def split_form(pairs: Iterable[tuple[str, str]]) -> tuple[dict[str, str], tuple[str, ...]]:
    """A form body's parameters, and its ``resource`` values apart: ``resource`` may
    repeat (RFC 8707 §2), any other repeated parameter is refused (RFC 6749 §3.2)."""
    params: dict[str, str] = {}
    resources: list[str] = []
    for name, value in pairs:
        if name == PARAMETER:
            resources.append(value)
        elif name in params:
            raise InvalidRequest(f"Parameter {name[:64]!r} is repeated.")
        else:
            params[name] = value
    return params, tuple(resources)


def join(resources: Iterable[str]) -> str:
    """Resources as stored in a session or row: space-separated (a URI has no space)."""
    return " ".join(resources)


def split(text: str | None) -> tuple[str, ...]:
    return tuple((text or "").split())


@dataclass(frozen=True)
class Targets:
    """The resources a token is for, and the scopes they allow together.
    ``resources == ()``: none named, the default audience, no scope restriction."""

    resources: tuple[str, ...] = ()
    scopes: frozenset[str] = frozenset()

    def allows(self, scope: frozenset[str]) -> frozenset[str]:
        """The part of ``scope`` a token for these resources may carry."""
        if not self.resources:
            return scope
        permitted = self.scopes | AUTHLY_SCOPES
        if "openid" in scope:
            permitted |= USERINFO_SCOPES
        return scope & permitted

    def check(self, scope: frozenset[str], *, explicit: bool) -> frozenset[str]:
        """``scope`` if these resources allow all of it. Otherwise: InvalidScope for a
        scope the client asked for (``explicit``), else the part they allow."""
        allowed = self.allows(scope)
        if explicit and allowed != scope:
            extra = describe_scope(scope - allowed)
            raise InvalidScope(f"Scope not allowed for the requested resource(s): {extra}")
        return allowed


async def resolve(db: Database, values: Sequence[str]) -> Targets:
    """The registered resources ``values`` name (InvalidTarget if one is malformed or
    unknown); ``Targets()`` when none is named."""
    requested = check_requested(values)
    if not requested:
        return Targets()
    found = await db.run(resource_repo.get_many, requested)
    for identifier in requested:
        if identifier not in found:
            raise InvalidTarget(f"The resource {_shown(identifier)} is not registered.")
    scopes = frozenset(s for r in found.values() for s in r.scopes)
    return Targets(requested, scopes)


async def narrow(db: Database, granted: tuple[str, ...], values: Sequence[str]) -> Targets:
    """What a token request may have (RFC 8707 §2.2): the resources it names, each among
    those ``granted`` (InvalidTarget otherwise); when it names none, every granted
    resource that is still registered (InvalidTarget if none is left)."""
    requested = check_requested(values)
    for identifier in requested:
        if identifier not in granted:
            raise InvalidTarget(
                f"The resource {_shown(identifier)} was not granted by this authorization."
            )
    if requested:
        return await resolve(db, requested)
    if not granted:
        return Targets()
    found = await db.run(resource_repo.get_many, granted)
    still = tuple(r for r in granted if r in found)
    if not still:
        raise InvalidTarget("The resources this authorization was for are no longer registered.")
    return Targets(still, frozenset(s for r in still for s in found[r].scopes))


def consent_key(scope: str, resources: tuple[str, ...]) -> str:
    """What a remembered consent is keyed on: the scope, and the resources when any (a
    newline cannot occur in either, so no two requests share a key by accident)."""
    return scope if not resources else f"{scope}\nresources: {join(resources)}"


@dataclass(frozen=True)
class ResourceLine:
    """A resource as the consent page shows it."""

    identifier: str
    name: str


async def describe_resources(db: Database, resources: str) -> list[ResourceLine]:
    """The resources of a request (space-separated) with their registered names."""
    identifiers = split(resources)
    if not identifiers:
        return []
    found = await db.run(resource_repo.get_many, identifiers)
    return [ResourceLine(i, found[i].name if i in found else i) for i in identifiers]
