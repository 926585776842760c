"""Device authorization grants (RFC 8628): the codes, and the pending grants in the
session backend.

A device authorization request gets a *device code* (256 random bits, kept by the
device, presented when polling) and a *user code* (8 characters from a consonant-only
alphabet, shown as ``XXXX-XXXX``, typed by the user on another device). Input is
normalised: case, dashes and spaces do not matter.

Each pending grant lives in the session backend (so any instance sharing Redis or the
store can complete it) in a bounded pool of its own (``POOL``: public clients can
create them), as three entries:

- ``device:<sha256(device code)>``: the grant: client, scope, user code, status
  (``pending`` / ``approved`` / ``denied``), who decided, when they signed in. Written
  only at creation and by the one decision; kept ``EXPIRED_GRACE`` past the code's
  expiry so a late poll gets ``expired_token`` rather than ``invalid_grant``;
- ``device_poll:<same hash>``: the last poll time and the current interval. Polls
  write only this entry, so a poll can never overwrite a decision made meanwhile;
- ``device_user:<sha256(user code)>``: the index the verification page looks the code
  up by, until the code expires or is decided.

A decision *takes* the index entry (atomically: of two concurrent decisions exactly one
counts, and the user code is dead afterwards), then records itself in the grant. A
poll that finds the grant approved *takes* the grant: of concurrent polls exactly one
gets it, and so exactly one gets tokens. No backend key is a code itself.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from authly.backends.protocols import SessionStore
from authly.errors import (
    AccessDenied,
    AuthorizationPending,
    ExpiredToken,
    InvalidGrant,
    InvalidRequest,
    InvalidScope,
    SlowDown,
)

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:device_code"
USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"  # no vowels (no words), no 0/O or 1/I
USER_CODE_LENGTH = 8
DEVICE_CODE_TTL = 600.0
POLL_INTERVAL = 5
SLOW_DOWN_STEP = 5  # RFC 8628 §3.5: add 5 s to the interval on every slow_down
EXPIRED_GRACE = 600.0
POOL = "device"
DEFAULT_MAX_ENTRIES = 50_000
MAX_DEVICE_CODE = 128
MAX_USER_CODE_INPUT = 32

PENDING = "pending"
APPROVED = "approved"
DENIED = "denied"

# secrets.token_urlsafe(32): 43 base64url characters.
_DEVICE_CODE = re.compile(r"^[A-Za-z0-9_-]{43}$")
_SEPARATORS = re.compile(r"[\s-]+")


class UnknownUserCode(InvalidRequest):
    """Raised when a user code is unknown, expired or already answered."""

    default_description = (
        "That code is not valid or has expired. Check the code shown on your device "
        "and enter it again."
    )


class MalformedUserCode(InvalidRequest):
    """Raised when the text entered cannot be a user code at all (wrong length or
    letters): no lookup is made, so it does not count as a guess."""

    default_description = (
        f"A code has {USER_CODE_LENGTH} letters, like BCDF-GHJK. "
        "Check the code shown on your device and enter it again."
    )


def new_user_code() -> str:
    return "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(USER_CODE_LENGTH))


def normalise_user_code(text: str | None) -> str:
    """The user code in ``text`` (any case, dashes and spaces ignored); MalformedUserCode
    if it cannot be one."""
    if not text or len(text) > MAX_USER_CODE_INPUT or not text.isascii():
        raise MalformedUserCode()
    code = _SEPARATORS.sub("", text).upper()
    if len(code) != USER_CODE_LENGTH or any(c not in USER_CODE_ALPHABET for c in code):
        raise MalformedUserCode()
    return code


def format_user_code(code: str) -> str:
    """``BCDFGHJK`` -> ``BCDF-GHJK``, as shown to the user."""
    half = len(code) // 2
    return f"{code[:half]}-{code[half:]}"


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def _grant_key(device_hash: str) -> str:
    return "device:" + device_hash


def _poll_key(device_hash: str) -> str:
    return "device_poll:" + device_hash


def _index_key(user_code: str) -> str:
    return "device_user:" + _hash(user_code)


@dataclass(frozen=True)
class DeviceGrant:
    """One device authorization request, as the session backend holds it."""

    device_hash: str  # SHA-256 of the device code
    client_id: str
    client_name: str
    scope: str
    user_code: str  # normalised (no dash)
    expires_at: float
    status: str = PENDING
    user_id: str = ""  # who decided
    auth_time: float | None = None  # when they signed in
    error: str = ""  # why a denied grant was refused: access_denied | invalid_scope
    resources: tuple[str, ...] = ()  # RFC 8707: what the device asked for

    def data(self) -> dict[str, str]:
        return {
            "client_id": self.client_id,
            "client_name": self.client_name,
            "scope": self.scope,
            "user_code": self.user_code,
            "expires_at": repr(self.expires_at),
            "status": self.status,
            "user_id": self.user_id,
            "auth_time": "" if self.auth_time is None else repr(self.auth_time),
            "error": self.error,
            "resources": " ".join(self.resources),
        }

    @classmethod
    def from_data(cls, device_hash: str, data: dict[str, str]) -> DeviceGrant | None:
        try:
            auth_time = data.get("auth_time", "")
            grant = cls(
                device_hash=device_hash,
                client_id=data["client_id"],
                client_name=data.get("client_name", data["client_id"]),
                scope=data.get("scope", ""),
                user_code=data["user_code"],
                expires_at=float(data["expires_at"]),
                status=data.get("status", PENDING),
                user_id=data.get("user_id", ""),
                auth_time=float(auth_time) if auth_time else None,
                error=data.get("error", ""),
                resources=tuple(data.get("resources", "").split()),
            )
        except (KeyError, ValueError):
            return None
        return grant if grant.status in (PENDING, APPROVED, DENIED) else None


@dataclass(frozen=True)
class DeviceAuthorization:
    """What the device authorization endpoint hands out (RFC 8628 §3.2)."""

    device_code: str
    user_code: str  # normalised
    expires_in: int
    interval: int


class DeviceGrants:
    def __init__(
        self,
        store: SessionStore,
        *,
        ttl: float = DEVICE_CODE_TTL,
        interval: int = POLL_INTERVAL,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self.ttl = ttl
        self.interval = interval
        self.max_entries = max_entries
        self._now = now

    async def _add(self, key: str, data: dict[str, str], ttl: float) -> None:
        await self._store.add(key, data, ttl, pool=POOL, max_entries=self.max_entries)

    async def start(
        self, client_id: str, client_name: str, scope: str, resources: tuple[str, ...] = ()
    ) -> DeviceAuthorization:
        """A new pending grant for the client (for ``resources``, RFC 8707); its codes."""
        device_code = secrets.token_urlsafe(32)
        user_code = new_user_code()
        for _ in range(4):  # 20^8 codes: a live one is drawn again only by a fluke
            if await self._store.get(_index_key(user_code)) is None:
                break
            user_code = new_user_code()
        device_hash = _hash(device_code)
        now = self._now()
        grant = DeviceGrant(
            device_hash,
            client_id,
            client_name,
            scope,
            user_code,
            expires_at=now + self.ttl,
            resources=resources,
        )
        kept = self.ttl + EXPIRED_GRACE
        await self._add(_grant_key(device_hash), grant.data(), kept)
        poll = {"last_poll": "", "interval": str(self.interval)}
        await self._add(_poll_key(device_hash), poll, kept)
        index = {"device_hash": device_hash, "expires_at": repr(grant.expires_at)}
        await self._add(_index_key(user_code), index, self.ttl)
        return DeviceAuthorization(device_code, user_code, int(self.ttl), self.interval)

    async def find(self, user_code: str) -> DeviceGrant:
        """The pending grant with this (normalised) user code; UnknownUserCode if there
        is none: unknown, expired or already decided."""
        index = await self._store.get(_index_key(user_code))
        if not index or not index.get("device_hash"):
            raise UnknownUserCode()
        grant = await self._grant(index["device_hash"])
        if (
            grant is None
            or grant.user_code != user_code
            or grant.status != PENDING
            or grant.expires_at <= self._now()
        ):
            raise UnknownUserCode()
        return grant

    async def _grant(self, device_hash: str) -> DeviceGrant | None:
        data = await self._store.get(_grant_key(device_hash))
        return DeviceGrant.from_data(device_hash, data) if data else None

    async def decide(
        self, grant: DeviceGrant, *, user_id: str, auth_time: float, status: str, error: str = ""
    ) -> DeviceGrant:
        """Record the user's answer (``APPROVED``, or ``DENIED`` with ``error``); exactly
        one of concurrent answers counts, the others get UnknownUserCode."""
        if await self._store.take(_index_key(grant.user_code), pool=POOL) is None:
            raise UnknownUserCode()
        current = await self._grant(grant.device_hash)
        now = self._now()
        if current is None or current.status != PENDING or current.expires_at <= now:
            raise UnknownUserCode()
        decided = replace(current, status=status, user_id=user_id, auth_time=auth_time, error=error)
        remaining = current.expires_at + EXPIRED_GRACE - now
        await self._store.set(_grant_key(grant.device_hash), decided.data(), remaining)
        return decided

    async def poll(self, device_code: str, client_id: str) -> DeviceGrant:
        """The approved grant for this poll, taken (exactly one of concurrent polls
        gets it); otherwise the RFC 8628 §3.5 error that says why not."""
        if not _DEVICE_CODE.match(device_code):
            raise InvalidGrant("The device code is invalid.")
        device_hash = _hash(device_code)
        grant = await self._grant(device_hash)
        if grant is None:
            raise InvalidGrant("The device code is invalid, expired or was already used.")
        if grant.client_id != client_id:
            raise InvalidGrant("The device code was issued to another client.")
        now = self._now()
        if grant.expires_at <= now:
            raise ExpiredToken()
        if grant.status == DENIED:
            if grant.error == "invalid_scope":
                raise InvalidScope("The admin scope can only be granted by an administrator.")
            raise AccessDenied("The user denied the request.", status_code=400)
        if grant.status == APPROVED:
            taken = await self._store.take(_grant_key(device_hash), pool=POOL)
            approved = DeviceGrant.from_data(device_hash, taken) if taken else None
            if approved is None or approved.status != APPROVED:
                raise InvalidGrant("The device code was already used.")
            await self._store.take(_poll_key(device_hash), pool=POOL)
            return approved
        await self._pace(device_hash, grant, now)
        raise AuthorizationPending()

    async def _pace(self, device_hash: str, grant: DeviceGrant, now: float) -> None:
        """Record this poll; SlowDown (and a longer interval) if it came too soon."""
        key = _poll_key(device_hash)
        stored = await self._store.get(key)
        state = stored or {}
        try:
            last = float(state.get("last_poll") or 0.0)
            interval = int(state.get("interval") or self.interval)
        except ValueError:
            last, interval = 0.0, self.interval
        too_soon = last > 0.0 and now - last < interval
        if too_soon:
            interval += SLOW_DOWN_STEP
        remaining = grant.expires_at + EXPIRED_GRACE - now
        record = {"last_poll": repr(now), "interval": str(interval)}
        if stored is None:  # evicted: back into the pool, not among the sessions
            await self._add(key, record, remaining)
        else:
            await self._store.set(key, record, remaining)
        if too_soon:
            raise SlowDown(f"Polling too fast: wait at least {interval} seconds between requests.")
