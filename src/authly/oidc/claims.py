"""Which standard claims a client gets (OIDC Core §5.4, §5.5). Pure: no I/O.

Scopes ask for groups of claims (§5.4); the ``claims`` request parameter (§5.5) asks for
individual ones, for the userinfo response and the ID token separately. A claim is
released only when the user has a value for it: absent claims are omitted, never
``null``. ``sub`` (the user's id: stable, never reassigned) is always released.

``value``/``values`` in an individual request are parsed and kept but do not filter what
is released (the claim is returned with the user's actual value); ``essential`` only
documents the client's wish: a claim the user lacks is omitted either way.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from authly.errors import InvalidRequest

SCOPE_CLAIMS: dict[str, tuple[str, ...]] = {
    "profile": (
        "name",
        "family_name",
        "given_name",
        "middle_name",
        "nickname",
        "preferred_username",
        "profile",
        "picture",
        "website",
        "gender",
        "birthdate",
        "zoneinfo",
        "locale",
        "updated_at",
    ),
    "email": ("email", "email_verified"),
    "address": ("address",),
    "phone": ("phone_number", "phone_number_verified"),
}
# Released in this order: sub, then the claims of profile, email, address, phone.
CLAIM_ORDER = ("sub", *(name for names in SCOPE_CLAIMS.values() for name in names))
STANDARD_CLAIMS = frozenset(CLAIM_ORDER)
TARGETS = ("userinfo", "id_token")
MAX_CLAIMS_REQUEST = 4096  # characters of the claims parameter
MAX_CLAIM_NAME = 128


@dataclass(frozen=True)
class ClaimSpec:
    """One individual claim request (§5.5.1): null in the JSON is the default spec."""

    essential: bool = False
    value: Any = None
    values: tuple[Any, ...] | None = None


@dataclass(frozen=True)
class ClaimsRequest:
    """A parsed ``claims`` parameter: claim name -> spec, per target."""

    userinfo: Mapping[str, ClaimSpec] = field(default_factory=dict)
    id_token: Mapping[str, ClaimSpec] = field(default_factory=dict)

    def names(self, target: str) -> frozenset[str]:
        """Every claim name requested for ``target`` ("userinfo" or "id_token")."""
        return frozenset(self.userinfo if target == "userinfo" else self.id_token)


def scope_claims(scopes: Iterable[str]) -> frozenset[str]:
    """The claim names the granted scopes stand for (§5.4), plus ``sub``."""
    names = {"sub"}
    for scope in scopes:
        names.update(SCOPE_CLAIMS.get(scope, ()))
    return frozenset(names)


def wanted_claims(scopes: Iterable[str], requested: Iterable[str] = ()) -> frozenset[str]:
    """The claim names to release: ``sub``, those of the scopes, and the individually
    ``requested`` standard claims (unknown names dropped)."""
    return scope_claims(scopes) | (frozenset(requested) & STANDARD_CLAIMS)


def release(
    user_claims: Mapping[str, Any], scopes: Iterable[str], requested: Iterable[str] = ()
) -> dict[str, Any]:
    """The claims to hand out: ``sub``, those of the scopes, and the individually
    ``requested`` standard claims, each only if the user has it (non-null)."""
    return release_wanted(user_claims, wanted_claims(scopes, requested))


def release_wanted(user_claims: Mapping[str, Any], wanted: frozenset[str]) -> dict[str, Any]:
    """``release`` for claim names already worked out by ``wanted_claims``."""
    released: dict[str, Any] = {"sub": user_claims["sub"]}
    for name in CLAIM_ORDER[1:]:
        value = user_claims.get(name)
        if name in wanted and value is not None:
            released[name] = value
    return released


def extra_claims(
    request: ClaimsRequest | None, target: str, user_claims: Mapping[str, Any]
) -> frozenset[str]:
    """The standard claims the claims request asks for ``target`` that the user has:
    released even without the scope that would otherwise carry them."""
    if request is None:
        return frozenset()
    asked = request.names(target) & STANDARD_CLAIMS
    return frozenset(n for n in asked if user_claims.get(n) is not None)


def parse_claims_request(text: str | None) -> ClaimsRequest | None:
    """Parse the ``claims`` request parameter (§5.5); None when absent or empty.

    Members other than ``userinfo`` and ``id_token`` are ignored (§5.5: not understood),
    as are unknown members of a claim's spec. Error handling: InvalidRequest when the
    text is not a JSON object of that shape, or too large.
    """
    if text is None or text == "":
        return None
    if len(text) > MAX_CLAIMS_REQUEST:
        raise InvalidRequest(f"claims is longer than {MAX_CLAIMS_REQUEST} characters.")
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        raise InvalidRequest("claims is not valid JSON.") from None
    if not isinstance(document, dict):
        raise InvalidRequest("claims must be a JSON object.")
    parsed: dict[str, dict[str, ClaimSpec]] = {}
    for target in TARGETS:
        member = document.get(target)
        if member is None:
            parsed[target] = {}
            continue
        if not isinstance(member, dict):
            raise InvalidRequest(f"claims.{target} must be a JSON object.")
        parsed[target] = {
            _claim_name(target, name): _spec(target, name, spec) for name, spec in member.items()
        }
    return ClaimsRequest(userinfo=parsed["userinfo"], id_token=parsed["id_token"])


def _claim_name(target: str, name: str) -> str:
    if not name or len(name) > MAX_CLAIM_NAME:
        raise InvalidRequest(f"claims.{target} has an empty or overlong claim name.")
    return name


def _spec(target: str, name: str, spec: Any) -> ClaimSpec:
    where = f"claims.{target}.{name[:64]}"
    if spec is None:
        return ClaimSpec()
    if not isinstance(spec, dict):
        raise InvalidRequest(f"{where} must be null or a JSON object.")
    essential = spec.get("essential", False)
    if not isinstance(essential, bool):
        raise InvalidRequest(f"{where}.essential must be true or false.")
    values = spec.get("values")
    if values is not None and not isinstance(values, list):
        raise InvalidRequest(f"{where}.values must be an array.")
    return ClaimSpec(
        essential=essential,
        value=spec.get("value"),
        values=tuple(values) if values is not None else None,
    )
