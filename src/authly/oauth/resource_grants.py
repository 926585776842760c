"""Resource indicators (RFC 8707) at the token endpoint, per grant (the rules are in
oauth/resources.py; oauth/grants.py and oauth/device_token.py call these).

- A grant that starts a new authorization (``client_credentials``, ``password``) takes
  the resources the request names, as the authorization endpoint does.
- A grant that redeems an authorization (``authorization_code``, the device code) may
  name a subset of what was granted; the access token gets those resources and the part
  of the granted scope they allow, the refresh token keeps everything granted.
- A refresh may name any subset of the family's resources, and ``scope`` a subset of the
  family's scope that they allow. It is checked *before* the refresh token is rotated,
  so a refused request does not spend it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from authly.oauth.resources import Targets, narrow, resolve
from authly.oauth.scopes import format_scope
from authly.store import refresh_tokens as refresh_repo
from authly.store.db import Database
from authly.tokens.refresh import MAX_REFRESH_TOKEN_LENGTH, hash_refresh_token


async def new_grant(
    db: Database, values: Sequence[str], scope: frozenset[str], *, explicit: bool
) -> tuple[tuple[str, ...], frozenset[str]]:
    """The resources a new grant names (InvalidTarget if one is unknown) and the part of
    ``scope`` they allow (InvalidScope for a scope the client asked for, ``explicit``,
    that none of them allows)."""
    targets = await resolve(db, values)
    return targets.resources, targets.check(scope, explicit=explicit)


@dataclass(frozen=True)
class Redemption:
    """What the access token of a redeemed authorization is for."""

    resources: tuple[str, ...]
    scope: str


async def redeem(
    db: Database, granted: tuple[str, ...], values: Sequence[str], scope: str
) -> Redemption:
    """The access token for a code or device grant of ``scope`` for ``granted``,
    narrowed to the resources ``values`` names (InvalidTarget if one was not granted)."""
    targets = await narrow(db, granted, values)
    return Redemption(targets.resources, format_scope(targets.allows(frozenset(scope.split()))))


@dataclass(frozen=True)
class RefreshLimits:
    """What a refresh may issue: the access token's resources (None: leave it to the
    family, the refresh will fail anyway) and the ceiling on its scope."""

    resources: tuple[str, ...] | None
    scope_limit: frozenset[str]


async def refresh_limits(
    db: Database,
    refresh_token: str,
    client_id: str,
    values: Sequence[str],
    scope: frozenset[str] | None,
    scope_limit: frozenset[str],
) -> RefreshLimits:
    """Check a refresh's ``resource`` and ``scope`` against the family before rotating.

    A token that is unknown, spent, revoked, expired or another client's is left to the
    rotation, which refuses it (and detects reuse) as ever.
    """
    info = None
    if 0 < len(refresh_token) <= MAX_REFRESH_TOKEN_LENGTH:
        info = await db.run(refresh_repo.lookup, hash_refresh_token(refresh_token), time.time())
    if info is None or not info.active or info.grant.client_id != client_id:
        return RefreshLimits(None, scope_limit)
    targets: Targets = await narrow(db, info.grant.resources, values)
    if scope is not None:
        targets.check(scope, explicit=True)
    wanted = scope if scope is not None else frozenset(info.grant.scope.split())
    return RefreshLimits(targets.resources, targets.allows(wanted & scope_limit))
