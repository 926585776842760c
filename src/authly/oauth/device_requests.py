"""The device authorization request (RFC 8628 §3.1, §3.2) and the verification page's
rules (§3.3, §5).

- The device authorization endpoint authenticates the client as the token endpoint does
  (and counts against the same per-IP and per-client budgets), requires the client to
  be registered for the device code grant, and resolves ``scope`` against the client's
  scopes (the registry's default scopes the client has when it is absent).
- On the verification page, a user code that is well formed but matches nothing is a
  *failed guess*: at most ``max_failures`` per ``window_seconds`` per client IP
  (AUTHLY_LOGIN_RATE_LIMIT / _WINDOW, the failed-login budget). Each lookup reserves a
  slot first and hands it back when the code was right, so concurrent guesses cannot
  exceed the budget and a user who types the right code is never counted.
- Forms on the page are protected by a token derived from a random cookie of the
  browser (``SameSite=Lax``, so a cross-site POST does not carry it): a form is accepted
  only when its token is the one derived from the cookie the browser sends.
- The ``admin`` scope is granted only by an administrator (as everywhere): a
  non-administrator's approval is recorded as a refusal that the device learns as
  ``invalid_scope``.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from authly.backends.protocols import RateLimiter
from authly.errors import RateLimitExceeded, UnauthorizedClient
from authly.oauth import resource_grants
from authly.oauth.device import (
    APPROVED,
    DENIED,
    GRANT_TYPE,
    DeviceGrant,
    DeviceGrants,
    UnknownUserCode,
    format_user_code,
    normalise_user_code,
)
from authly.oauth.grants import TokenContext, authenticate_client, limit_client, limit_ip
from authly.oauth.pending import CsrfFailure, well_formed
from authly.oauth.scopes import format_scope, parse_scope, resolve_scope
from authly.store import scopes as scope_repo
from authly.store.users import User
from authly.users.roles import ADMIN_SCOPE


async def device_authorization(
    ctx: TokenContext, params: Mapping[str, str], *, verification_uri: str
) -> dict[str, Any]:
    """The RFC 8628 §3.2 response body for a device authorization request."""
    await limit_ip(ctx)
    client = await authenticate_client(
        ctx.client_auth or ctx.db, ctx.authorization, params, endpoint="device_authorization"
    )
    await limit_client(ctx, client)
    if GRANT_TYPE not in client.grant_types:
        raise UnauthorizedClient("This client may not use the device authorization grant.")
    requested = parse_scope(params.get("scope"))
    allowed = frozenset(client.scopes)
    default: frozenset[str] = frozenset()
    if requested is None:
        registry = await ctx.db.run(scope_repo.list_all)
        default = frozenset(s.name for s in registry if s.is_default) & allowed
    scope_set = resolve_scope(requested, allowed, default)
    resources, scope_set = await resource_grants.new_grant(  # RFC 8707
        ctx.db, ctx.resources, scope_set, explicit=requested is not None
    )
    scope = format_scope(scope_set)
    if ctx.devices is None:
        raise UnauthorizedClient("The device authorization grant is not available here.")
    started = await ctx.devices.start(client.client_id, client.name, scope, resources)
    user_code = format_user_code(started.user_code)
    return {
        "device_code": started.device_code,
        "user_code": user_code,
        "verification_uri": verification_uri,
        "verification_uri_complete": f"{verification_uri}?user_code={user_code}",
        "expires_in": started.expires_in,
        "interval": started.interval,
    }


def form_token(binding_cookie: str) -> str:
    """The token the verification page's forms carry for the browser with this cookie."""
    return hashlib.sha256(b"authly-device-form:" + binding_cookie.encode("ascii")).hexdigest()


def check_form(binding_cookie: str | None, token: str | None) -> None:
    """CsrfFailure unless ``token`` was derived from the browser's ``binding_cookie``."""
    if binding_cookie is None or not well_formed(binding_cookie) or not token:
        raise CsrfFailure()
    if not hmac.compare_digest(form_token(binding_cookie), token):
        raise CsrfFailure()


@dataclass(frozen=True)
class GuessLimits:
    max_failures: int
    window_seconds: float


class Verification:
    """What the verification page does with a user code: look it up (rate limited per
    client IP) and record the signed-in user's answer."""

    def __init__(self, grants: DeviceGrants, limiter: RateLimiter, limits: GuessLimits):
        self._grants = grants
        self._limiter = limiter
        self._limits = limits

    async def lookup(self, text: str | None, client_ip: str) -> DeviceGrant:
        """The pending grant for the code the user typed.

        Error handling: MalformedUserCode (not a code at all; not counted),
        RateLimitExceeded (too many failed guesses from this address),
        UnknownUserCode (a failed guess: counted).
        """
        user_code = normalise_user_code(text)
        key = f"device:ip:{client_ip}"
        limits = self._limits
        decision = await self._limiter.check_rate_limit(
            key, limits.max_failures, limits.window_seconds
        )
        if not decision.allowed:
            seconds = max(1, math.ceil(decision.retry_after))
            raise RateLimitExceeded(
                seconds, f"Too many wrong codes from your network. Try again in {seconds} seconds."
            )
        try:
            grant = await self._grants.find(user_code)
        except UnknownUserCode:
            raise  # a failed guess keeps its slot
        except Exception:
            await self._refund(key, decision.member)
            raise
        await self._refund(key, decision.member)
        return grant

    async def _refund(self, key: str, member: str | None) -> None:
        if member is not None:
            await self._limiter.refund(key, member)

    async def answer(
        self, grant: DeviceGrant, user: User, auth_time: float, *, approve: bool
    ) -> DeviceGrant:
        """Record the answer of ``user`` (signed in at ``auth_time``); UnknownUserCode if
        the code was answered meanwhile or has expired."""
        if approve and ADMIN_SCOPE in grant.scope.split(" ") and not user.is_admin:
            return await self._grants.decide(
                grant, user_id=user.id, auth_time=auth_time, status=DENIED, error="invalid_scope"
            )
        status = APPROVED if approve else DENIED
        error = "" if approve else "access_denied"
        return await self._grants.decide(
            grant, user_id=user.id, auth_time=auth_time, status=status, error=error
        )
