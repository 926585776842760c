"""Fetching a ``private_key_jwt`` client's ``jwks_uri``, cache-aside through the cache slot.

- The document is kept in the cache slot for ``ttl`` seconds under
  ``client_jwks:<sha256 of the URI>`` (on Redis every instance shares one copy).
- A fetch is one GET with a deadline of ``timeout`` seconds (the request waits for it),
  no redirects, at most ``MAX_JWKS_BYTES``; anything but a 200 with a JWK Set fails.
- Concurrent misses for one URI wait for one fetch (a lock per URI in this process).
- A refetch forced by an assertion no cached key fits (the client may have rotated its
  keys) happens at most once per ``cooldown`` seconds per URI in this process, and a
  failed fetch is not retried within ``cooldown`` either, so assertions with made-up
  kids, or a client whose server is down, cannot make Authly fetch on every request.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx
import trio

from authly.backends.protocols import Cache
from authly.oauth.client_keys import MAX_JWKS_BYTES, PublicKey, usable_keys

log = logging.getLogger("authly")

JWKS_TTL = 300.0
FETCH_TIMEOUT = 3.0
COOLDOWN = 30.0
_MAX_REMEMBERED = 1000

Fetch = Callable[[str, float], Awaitable[str]]


class JwksUnavailable(Exception):
    """Raised when a jwks_uri cannot be fetched or holds no usable key."""


async def http_fetch(uri: str, timeout: float) -> str:
    """GET ``uri``; the body of a 200 answer of at most MAX_JWKS_BYTES, as text."""
    body = bytearray()
    too_large = False
    with trio.move_on_after(timeout) as deadline:
        try:
            async with (
                httpx.AsyncClient(follow_redirects=False, timeout=timeout) as http,
                http.stream("GET", uri, headers={"Accept": "application/json"}) as response,
            ):
                if response.status_code != 200:
                    raise JwksUnavailable(f"HTTP {response.status_code}")
                # Stopped by cancelling, not by leaving the loop: httpx's nested async
                # generators then finish instead of being left suspended.
                with trio.CancelScope() as reading:
                    async for chunk in response.aiter_bytes():
                        if not too_large:
                            body += chunk
                            too_large = len(body) > MAX_JWKS_BYTES
                            if too_large:
                                reading.cancel()
        except httpx.HTTPError as exc:
            raise JwksUnavailable(type(exc).__name__) from None
    if too_large:
        raise JwksUnavailable(f"larger than {MAX_JWKS_BYTES} bytes")
    if deadline.cancelled_caught:
        raise JwksUnavailable(f"no answer within {timeout:g} s")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise JwksUnavailable("not UTF-8") from None


@dataclass
class _Attempts:
    last: float  # monotonic time of the last fetch
    failure: str | None  # why it failed, or None
    forced: float = -math.inf  # monotonic time of the last refetch forced by a request


def cache_key(uri: str) -> str:
    return "client_jwks:" + hashlib.sha256(uri.encode("utf-8")).hexdigest()[:32]


class RemoteJwks:
    """The keys published at clients' ``jwks_uri`` (see the module docstring)."""

    def __init__(
        self,
        cache: Cache,
        *,
        ttl: float = JWKS_TTL,
        timeout: float = FETCH_TIMEOUT,
        cooldown: float = COOLDOWN,
        fetch: Fetch = http_fetch,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._cache = cache
        self._ttl = ttl
        self._timeout = timeout
        self._cooldown = cooldown
        self._fetch = fetch
        self._clock = clock
        self._locks: dict[str, trio.Lock] = {}
        self._attempts: dict[str, _Attempts] = {}

    async def keys(self, uri: str, *, refresh: bool = False) -> list[PublicKey]:
        """The usable keys at ``uri``; ``refresh`` fetches again unless a refresh did
        within the cooldown. JwksUnavailable when there are none."""
        document = None if refresh else await self._cache.get(cache_key(uri))
        if document is None:
            document = await self._fetch_once(uri, refresh=refresh)
        try:
            keys = usable_keys(document)
        except ValueError:
            keys = []
        if not keys:
            raise JwksUnavailable("it holds no usable signing key")
        return keys

    async def _fetch_once(self, uri: str, *, refresh: bool) -> str:
        lock = self._locks.setdefault(uri, trio.Lock())
        try:
            async with lock:
                cached = await self._cache.get(cache_key(uri))
                now = self._clock()
                attempt = self._attempts.get(uri)
                forced_lately = attempt is not None and now - attempt.forced < self._cooldown
                if cached is not None and (forced_lately or not refresh):
                    return cached  # fetched meanwhile, or refreshed lately
                if attempt and attempt.failure and now - attempt.last < self._cooldown:
                    raise JwksUnavailable(attempt.failure)
                return await self._fetch_and_keep(uri, forced=refresh)
        finally:
            if not lock.statistics().tasks_waiting and not lock.locked():
                self._locks.pop(uri, None)

    async def _fetch_and_keep(self, uri: str, *, forced: bool) -> str:
        self._remember(uri, None, forced=forced)
        try:
            document = await self._fetch(uri, self._timeout)
            if not usable_keys(document):
                raise JwksUnavailable("it holds no usable signing key")
        except ValueError:
            self._remember(uri, "it is not a JWK Set")
            log.warning("client jwks_uri %s: it is not a JWK Set", uri)
            raise JwksUnavailable("it is not a JWK Set") from None
        except JwksUnavailable as exc:
            self._remember(uri, str(exc))
            log.warning("client jwks_uri %s: %s", uri, exc)
            raise
        await self._cache.set(cache_key(uri), document, self._ttl)
        return document

    def _remember(self, uri: str, failure: str | None, *, forced: bool = False) -> None:
        """Record an attempt; the oldest records go first past _MAX_REMEMBERED URIs."""
        now = self._clock()
        previous = self._attempts.pop(uri, None)
        while len(self._attempts) >= _MAX_REMEMBERED:
            del self._attempts[next(iter(self._attempts))]
        last_forced = now if forced else previous.forced if previous else -math.inf
        self._attempts[uri] = _Attempts(now, failure, last_forced)
