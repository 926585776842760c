"""Client assertions: a client authenticates with a JWT it signed (RFC 7523 §2.2 and §3,
RFC 7521 §4.2, OpenID Connect Core §9), sent as ``client_assertion`` with
``client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer``.

What is checked, in order; every failure is InvalidClient (401):

1. the text is a compact JWS whose ``alg`` fits the client's registered method:
   RS256, PS256 or ES256 for ``private_key_jwt``; HS256, HS384 or HS512 for
   ``client_secret_jwt`` (never ``none``, never a MAC for a key pair);
2. the signature verifies with one of the client's keys (``kid`` picks it; an unknown
   ``kid``, or no ``kid`` and no key that verifies, makes a ``jwks_uri`` be fetched
   again, once) or with its secret;
3. ``iss`` and ``sub`` are the client_id; ``aud`` names the issuer, the token endpoint or
   the endpoint called; ``exp`` is present and not past; ``iat`` and ``nbf`` are not in
   the future (each with ``LEEWAY`` seconds for clock skew);
4. the assertion is accepted for at most ``MAX_LIFETIME`` seconds: until ``exp``, and
   when it carries ``iat`` no later than ``MAX_LIFETIME`` after it; one without ``iat``
   must expire within ``MAX_LIFETIME`` (so the replay record below stays short-lived even
   for libraries that sign for an hour);
5. ``jti`` is present and used once: it is recorded in the cache slot
   (``jti:client:<client_id>:<jti>``) until the assertion could no longer be accepted.
   The cache's ``exists`` then ``set`` is not atomic, so within one process a set of
   in-flight jtis refuses a second request that arrives while the first is checking.
   With per-instance memory caches another instance does not see the record; with the
   cache on Redis every instance does (docs/decisions.md).
"""

from __future__ import annotations

import functools
import json
import math
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from joserfc import jws, jwt
from joserfc.errors import JoseError

from authly.backends.protocols import Cache
from authly.errors import InvalidClient
from authly.oauth import client_keys
from authly.oauth.client_keys import (
    PRIVATE_KEY_ALGS,
    PRIVATE_KEY_JWT,
    SECRET_ALGS,
    PublicKey,
    VerifyKey,
)
from authly.oauth.jwks_fetch import JwksUnavailable, RemoteJwks
from authly.store.clients import ClientRow

LEEWAY = 30.0  # seconds of clock skew allowed on exp, iat and nbf
MAX_LIFETIME = 300.0  # how long one assertion may be accepted
MAX_ASSERTION = 8192  # characters
MAX_JTI = 256
OAUTH_API = "/api/v1/oauth"  # where the token, revocation and introspection endpoints are


@dataclass(frozen=True)
class Checked:
    """What an accepted assertion leaves behind: its jti, and until when (wall clock)
    that jti must be remembered."""

    jti: str
    remember_until: float


def _number(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidClient(f"The client assertion's {name} must be a number (NumericDate).")
    return float(value)


def check_claims(
    claims: Mapping[str, Any], *, client_id: str, audiences: Collection[str], now: float
) -> Checked:
    """Steps 3 to 5's claim checks (module docstring), pure; InvalidClient on failure."""
    if claims.get("iss") != client_id or claims.get("sub") != client_id:
        raise InvalidClient("The client assertion's iss and sub must both be the client_id.")
    aud = claims.get("aud")
    named = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    if not any(isinstance(a, str) and a in audiences for a in named):
        raise InvalidClient(
            "The client assertion's aud must name this server's issuer or token endpoint."
        )
    exp = _number(claims, "exp")
    if exp is None:
        raise InvalidClient("The client assertion has no exp.")
    if now > exp + LEEWAY:
        raise InvalidClient("The client assertion has expired.")
    iat = _number(claims, "iat")
    nbf = _number(claims, "nbf")
    if iat is not None and iat > now + LEEWAY:
        raise InvalidClient("The client assertion's iat is in the future.")
    if nbf is not None and nbf > now + LEEWAY:
        raise InvalidClient("The client assertion is not valid yet (nbf).")
    if iat is None:
        if exp - now > MAX_LIFETIME + LEEWAY:
            raise InvalidClient(
                f"The client assertion lives too long: without iat, exp must be at most"
                f" {int(MAX_LIFETIME)} seconds away."
            )
        until = exp
    else:
        if now > iat + MAX_LIFETIME + LEEWAY:
            raise InvalidClient(
                f"The client assertion is too old: it was issued more than"
                f" {int(MAX_LIFETIME)} seconds ago."
            )
        until = min(exp, iat + MAX_LIFETIME)
    jti = claims.get("jti")
    if not isinstance(jti, str) or not 1 <= len(jti) <= MAX_JTI:
        raise InvalidClient(f"The client assertion needs a jti of 1 to {MAX_JTI} characters.")
    return Checked(jti, until + LEEWAY)


def peek(assertion: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The header and claims of a compact JWS, NOT verified (to find the client and its
    key); InvalidClient when it is not one."""
    if not assertion or len(assertion) > MAX_ASSERTION:
        raise InvalidClient(
            f"client_assertion must be a JWT of at most {MAX_ASSERTION} characters."
        )
    try:
        token = jws.extract_compact(assertion.encode("ascii"))
        header = token.headers()
        claims = json.loads(token.payload)
    except (JoseError, ValueError, TypeError, RecursionError):
        raise InvalidClient("client_assertion is not a signed JWT.") from None
    if not isinstance(claims, dict) or not isinstance(header.get("alg"), str):
        raise InvalidClient("client_assertion is not a signed JWT.")
    return dict(header), claims


def claimed_client_id(assertion: str) -> str:
    """The client an assertion says it comes from (its ``sub``; RFC 7523 §3), unverified."""
    sub = peek(assertion)[1].get("sub")
    if not isinstance(sub, str):
        raise InvalidClient("The client assertion has no sub naming the client.")
    return sub


def _verified_claims(assertion: str, keys: Sequence[VerifyKey], alg: str) -> dict[str, Any] | None:
    for key in keys:
        try:
            claims = jwt.decode(assertion, key, algorithms=[alg]).claims
        except (JoseError, ValueError, TypeError):
            continue
        return dict(claims)
    return None


# Inline JWK Sets, parsed once per distinct text (the keys are only read afterwards).
_inline_keys = functools.lru_cache(maxsize=256)(client_keys.usable_keys)


class ClientAssertions:
    """Verifies client assertions for one issuer (the module docstring's steps)."""

    def __init__(
        self,
        cache: Cache,
        remote: RemoteJwks,
        *,
        issuer: str,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.cache = cache
        self.remote = remote
        self.issuer = issuer
        self.token_endpoint = f"{issuer}{OAUTH_API}/token"
        self._now = now
        self._in_flight: set[str] = set()

    def endpoint_url(self, endpoint: str) -> str:
        """The URL of the endpoint named ``endpoint`` (e.g. ``"revoke"``)."""
        return f"{self.issuer}{OAUTH_API}/{endpoint}"

    async def verify(self, client: ClientRow, assertion: str, *, endpoint: str | None) -> None:
        """Return if ``assertion`` proves ``client``; InvalidClient otherwise.
        ``endpoint`` is the URL called, which ``aud`` may name too."""
        header, _ = peek(assertion)
        alg = header["alg"]
        if client.auth_method == PRIVATE_KEY_JWT:
            if alg not in PRIVATE_KEY_ALGS:
                raise InvalidClient(
                    f"A private_key_jwt assertion is signed with {', '.join(PRIVATE_KEY_ALGS)}."
                )
            claims = await self._by_key(client, assertion, header.get("kid"), alg)
        elif client.auth_method == client_keys.CLIENT_SECRET_JWT:
            if alg not in SECRET_ALGS:
                raise InvalidClient(
                    f"A client_secret_jwt assertion is signed with {', '.join(SECRET_ALGS)}."
                )
            if client.jwt_secret is None:
                raise InvalidClient(
                    "This client has no secret for client_secret_jwt yet: rotate its secret."
                )
            claims = _verified_claims(assertion, [client_keys.secret_key(client.jwt_secret)], alg)
        else:
            raise InvalidClient(f"This client must authenticate with {client.auth_method}.")
        if claims is None:
            raise InvalidClient("The client assertion's signature does not verify.")
        audiences = {self.issuer, self.token_endpoint}
        if endpoint is not None:
            audiences.add(endpoint)
        now = self._now()
        checked = check_claims(claims, client_id=client.client_id, audiences=audiences, now=now)
        await self._use_once(client.client_id, checked, now)

    async def _by_key(
        self, client: ClientRow, assertion: str, kid: Any, alg: str
    ) -> dict[str, Any] | None:
        if kid is not None and not isinstance(kid, str):
            raise InvalidClient("The client assertion's kid must be a string.")
        found = client_keys.candidates(await self._keys(client), kid, alg)
        claims = _verified_claims(assertion, found, alg) if found else None
        if claims is None and client.jwks_uri is not None and (not found or kid is None):
            # An unknown kid, or no kid and no key verifies: the client may have rotated
            # its keys since the set was cached. Fetch it again, once (jwks_fetch.py).
            found = client_keys.candidates(await self._keys(client, refresh=True), kid, alg)
            claims = _verified_claims(assertion, found, alg) if found else None
        if not found:
            raise InvalidClient("No key registered for this client matches the assertion.")
        return claims

    async def _keys(self, client: ClientRow, *, refresh: bool = False) -> list[PublicKey]:
        if client.jwks is not None:
            try:
                return _inline_keys(client.jwks)
            except ValueError:
                raise InvalidClient("This client's registered keys cannot be read.") from None
        if client.jwks_uri is None:
            raise InvalidClient("This client has no keys registered (jwks or jwks_uri).")
        try:
            return await self.remote.keys(client.jwks_uri, refresh=refresh)
        except JwksUnavailable as exc:
            raise InvalidClient(f"The client's jwks_uri could not be used: {exc}.") from None

    async def _use_once(self, client_id: str, checked: Checked, now: float) -> None:
        key = f"jti:client:{client_id}:{checked.jti}"
        if key in self._in_flight:
            raise InvalidClient("The client assertion was already used (jti).")
        self._in_flight.add(key)
        try:
            if await self.cache.exists(key):
                raise InvalidClient("The client assertion was already used (jti).")
            await self.cache.set(key, "1", max(checked.remember_until - now, 1.0))
        finally:
            self._in_flight.discard(key)
