"""Pending authorization requests: validated, waiting for the user to sign in and consent.

Each lives in the session backend under ``authz:<id>`` for at most ``PENDING_TTL``
(updates keep the original deadline), so the pages work across instances and, on
Redis, across restarts. Anonymous browsers create them, so they live in a bounded pool
of their own (``POOL``, at most ``max_entries``): a flood evicts older pending
requests, never a login session. It is single use: answering *takes* it atomically
(``claim``), so of two concurrent answers (two consent posts, approve and deny) exactly
one gets it.

CSRF (the forms of the login and consent pages): every form carries the request id and
its random ``csrf`` token, and the request is bound to the browser that started it by
the SHA-256 of a random cookie value (the *binding cookie*, ``SameSite=Lax`` so a
cross-site POST does not carry it). A POST is accepted only when both match, compared
in constant time; otherwise nothing changes. The binding also stops login CSRF: an
attacker's own pending request is bound to the attacker's browser, not the victim's.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from authly.backends.protocols import SessionStore
from authly.errors import InvalidRequest
from authly.oauth.authorization import AuthorizationRequest

PENDING_TTL = 600.0
POOL = "authz"
DEFAULT_MAX_ENTRIES = 50_000
# secrets.token_urlsafe(32): 43 base64url characters (request ids, CSRF tokens, cookies).
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{43}$")


class RequestExpired(InvalidRequest):
    """Raised when a pending request is unknown, expired or already answered."""

    default_description = (
        "This sign-in request has expired or was already used. "
        "Go back to the application and start again."
    )


class CsrfFailure(InvalidRequest):
    """Raised when a form's CSRF token or the browser binding cookie does not match."""

    default_description = (
        "The form could not be verified (its security token is missing or does not "
        "belong to this browser). Go back to the application and start again."
    )


def new_token() -> str:
    return secrets.token_urlsafe(32)


def well_formed(token: str | None) -> bool:
    return token is not None and _TOKEN.match(token) is not None


def binding_of(cookie_value: str) -> str:
    return hashlib.sha256(cookie_value.encode("ascii")).hexdigest()


@dataclass(frozen=True)
class Pending:
    id: str
    request: AuthorizationRequest
    csrf: str
    binding: str  # SHA-256 of the binding cookie of the browser that started it
    user_id: str  # who was shown the consent page ("" until then)
    expires_at: float


class PendingRequests:
    def __init__(
        self,
        store: SessionStore,
        *,
        ttl: float = PENDING_TTL,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self.ttl = ttl
        self.max_entries = max_entries
        self._now = now

    async def create(self, request: AuthorizationRequest, browser_cookie: str) -> Pending:
        pending = Pending(
            id=new_token(),
            request=request,
            csrf=new_token(),
            binding=binding_of(browser_cookie),
            user_id="",
            expires_at=self._now() + self.ttl,
        )
        await self._store.add(
            _key(pending.id),
            _data(pending),
            self.ttl,
            pool=POOL,
            max_entries=self.max_entries,
        )
        return pending

    async def _save(self, pending: Pending) -> None:
        remaining = pending.expires_at - self._now()
        if remaining <= 0:
            raise RequestExpired()
        await self._store.set(_key(pending.id), _data(pending), remaining)

    async def get(self, pending_id: str | None) -> Pending:
        """The live pending request ``pending_id``; RequestExpired otherwise."""
        if pending_id is None or not well_formed(pending_id):
            raise RequestExpired()
        data = await self._store.get(_key(pending_id))
        if not data:
            raise RequestExpired()
        try:
            pending = Pending(
                id=pending_id,
                request=AuthorizationRequest.from_session(data),
                csrf=data["csrf"],
                binding=data["binding"],
                user_id=data.get("user_id", ""),
                expires_at=float(data["expires_at"]),
            )
        except (KeyError, ValueError):
            raise RequestExpired() from None
        if pending.expires_at <= self._now():
            raise RequestExpired()
        return pending

    async def for_browser(self, pending_id: str | None, browser_cookie: str | None) -> Pending:
        """The pending request, if this browser (its binding cookie) started it."""
        pending = await self.get(pending_id)
        if not well_formed(browser_cookie) or not hmac.compare_digest(
            binding_of(browser_cookie or ""), pending.binding
        ):
            raise CsrfFailure()
        return pending

    async def for_form(
        self, pending_id: str | None, csrf: str | None, browser_cookie: str | None
    ) -> Pending:
        """The pending request a POSTed form belongs to, after the CSRF checks."""
        pending = await self.for_browser(pending_id, browser_cookie)
        if not well_formed(csrf) or not hmac.compare_digest(csrf or "", pending.csrf):
            raise CsrfFailure()
        return pending

    async def shown_to(self, pending: Pending, user_id: str) -> Pending:
        """Record who the consent page was shown to (the consent form must come from them)."""
        if pending.user_id == user_id:
            return pending
        updated = replace(pending, user_id=user_id)
        await self._save(updated)
        return updated

    async def claim(self, pending: Pending) -> None:
        """Take the request to answer it (code or error): exactly one of concurrent
        callers returns, the others get RequestExpired."""
        if await self._store.take(_key(pending.id), pool=POOL) is None:
            raise RequestExpired()


def _key(pending_id: str) -> str:
    return "authz:" + pending_id


def _data(pending: Pending) -> dict[str, str]:
    return {
        **pending.request.to_session(),
        "csrf": pending.csrf,
        "binding": pending.binding,
        "user_id": pending.user_id,
        "expires_at": repr(pending.expires_at),
    }
