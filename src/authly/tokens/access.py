"""JWT access tokens (RFC 9068 profile): RS256, ``typ: at+jwt``.

Signed with the current RS256 key; verified against every published key, so tokens
signed before a rotation keep verifying (tokens/keys.py). ``verify_fresh`` reloads the
keys once when a token names a kid this instance has not seen (rotated in on another
instance a moment ago).

Claims: iss, sub, aud, exp, iat, jti, scope, client_id, and sid (the login session,
which is the refresh-token family). The issuer comes from
configuration, never from request headers.

``aud`` is the issuer (Authly's own API) unless the token was issued for resources
(RFC 8707, oauth/resources.py): then it names them, a string for one and an array for
several, plus the issuer when the scope has ``openid`` (so userinfo accepts the token).
``verify`` accepts only tokens whose ``aud`` names the issuer; introspection and
revocation pass ``any_audience`` to describe and revoke tokens issued for resources too.

One private claim (RFC 7519 §4.3), ``authly_userinfo_claims``: the standard claim names
the OpenID Connect ``claims`` request parameter asked for at userinfo (Core §5.5),
space-separated, present only when there are any. Userinfo reads them from the verified
token instead of from the login session record, so answering it costs no session-store
read; the refresh grant copies them into every later access token of the family.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from joserfc import jws, jwt
from joserfc.errors import JoseError

from authly.errors import InvalidToken
from authly.store.refresh_tokens import AccessRef
from authly.tokens.keys import ALGORITHM, SigningKeys

_LEEWAY = 30
MAX_TOKEN_LENGTH = 8192
VERIFIED_CACHE_SIZE = 4096
# The private claim carrying the userinfo claim names of the claims parameter.
USERINFO_CLAIMS = "authly_userinfo_claims"


class UnknownSigningKey(InvalidToken):
    """Raised when a token's signature fails and its ``kid`` is not a published key."""

    def __init__(self, kid: str) -> None:
        super().__init__("The access token is malformed or its signature is invalid.")
        self.kid = kid


@dataclass(frozen=True)
class AccessClaims:
    subject: str
    client_id: str
    scope: frozenset[str]
    jti: str
    expires_at: int
    session_id: str | None
    raw: dict[str, Any]
    # The individually requested userinfo claim names (space-separated; "" if none).
    userinfo_claims: str = ""
    audience: tuple[str, ...] = ()  # the aud claim, as a tuple
    jkt: str | None = None  # DPoP (RFC 9449 §6): cnf.jkt, the key the token is bound to


class AccessTokens:
    def __init__(
        self,
        keys: SigningKeys,
        *,
        issuer: str,
        audience: str,
        ttl: int,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        self.ttl = ttl
        self._now = now
        self._verified: OrderedDict[str, AccessClaims] = OrderedDict()

    def audience_for(self, resources: tuple[str, ...], scope: str) -> str | list[str]:
        """The ``aud`` of a token for ``resources`` (RFC 8707) with ``scope``: the issuer
        when there are none; else the resources (a string for one), and the issuer too
        when the scope has ``openid``: the token is then also for userinfo."""
        if not resources:
            return self.audience
        audience = list(dict.fromkeys(resources))
        if "openid" in scope.split(" ") and self.audience not in audience:
            audience.append(self.audience)
        return audience[0] if len(audience) == 1 else audience

    def new_ref(self) -> AccessRef:
        """Reserve the identity of the next access token (to store it before signing)."""
        return AccessRef(secrets.token_urlsafe(16), float(int(self._now()) + self.ttl))

    def issue(
        self,
        *,
        subject: str,
        client_id: str,
        scope: str,
        session_id: str | None = None,
        ref: AccessRef | None = None,
        userinfo_claims: str = "",
        resources: tuple[str, ...] = (),
        jkt: str | None = None,
    ) -> str:
        """A signed access token; with ``jkt`` bound to that DPoP key (``cnf``)."""
        ref = ref or self.new_ref()
        expires_at = int(ref.expires_at)
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": subject,
            "aud": self.audience_for(resources, scope),
            "iat": expires_at - self.ttl,
            "exp": expires_at,
            "jti": ref.jti,
            "scope": scope,
            "client_id": client_id,
        }
        if session_id is not None:
            claims["sid"] = session_id
        if userinfo_claims:
            claims[USERINFO_CLAIMS] = userinfo_claims
        if jkt is not None:
            claims["cnf"] = {"jkt": jkt}  # RFC 9449 §6.1
        key = self.keys.current(ALGORITHM)
        header = {"alg": ALGORITHM, "kid": str(key.kid), "typ": "at+jwt"}
        return jwt.encode(header, claims, key, algorithms=[ALGORITHM])

    def verify(self, token: str, *, any_audience: bool = False) -> AccessClaims:
        """Check signature, type, issuer, audience and lifetime.

        The audience must name this server (the issuer) unless ``any_audience``: a token
        issued for a resource (RFC 8707) is then accepted too (introspection, revocation).

        A token whose signature and claims were already checked is remembered (bounded
        LRU): a resource server introspects or presents the same token many times, and
        only its lifetime can change its answer (revocation is checked by the caller).

        Error handling: every failure is InvalidToken; joserfc's errors stop here.
        """
        claims = self._verify_any(token)
        if not any_audience and self.audience not in claims.audience:
            raise InvalidToken("The access token is expired or not meant for this server.")
        return claims

    def _verify_any(self, token: str) -> AccessClaims:
        if len(token) > MAX_TOKEN_LENGTH:
            raise InvalidToken("The access token is too long.")
        known = self._verified.get(token)
        if known is not None:
            if known.expires_at + _LEEWAY <= self._now():
                del self._verified[token]
                raise InvalidToken("The access token is expired or not meant for this server.")
            self._verified.move_to_end(token)
            return known
        claims = self._verify_signed(token)
        self._verified[token] = claims
        if len(self._verified) > VERIFIED_CACHE_SIZE:
            self._verified.popitem(last=False)
        return claims

    async def verify_fresh(self, token: str, *, any_audience: bool = False) -> AccessClaims:
        """``verify``, but a token naming a kid unknown here first makes the keys reload
        from the store (rate-limited: SigningKeys.reload_for_unknown) and is tried again."""
        try:
            return self.verify(token, any_audience=any_audience)
        except UnknownSigningKey as exc:
            if not await self.keys.reload_for_unknown(exc.kid):
                raise
        return self.verify(token, any_audience=any_audience)

    def _verify_signed(self, token: str) -> AccessClaims:
        try:
            decoded = jwt.decode(token, self.keys.keyset, algorithms=[ALGORITHM])
        except (JoseError, ValueError, TypeError, KeyError):
            kid = _header_kid(token)
            if kid is not None and not self.keys.knows(kid):
                raise UnknownSigningKey(kid) from None
            raise InvalidToken(
                "The access token is malformed or its signature is invalid."
            ) from None
        if decoded.header.get("typ") != "at+jwt":
            raise InvalidToken("The token is not an access token.")
        registry = jwt.JWTClaimsRegistry(
            now=lambda: int(self._now()),
            leeway=_LEEWAY,
            iss={"essential": True, "value": self.issuer},
            aud={"essential": True},
            sub={"essential": True},
            exp={"essential": True},
            jti={"essential": True},
        )
        try:
            registry.validate(decoded.claims)
        except JoseError:
            raise InvalidToken(
                "The access token is expired or not meant for this server."
            ) from None
        claims = decoded.claims
        userinfo_claims = claims.get(USERINFO_CLAIMS)
        aud = claims["aud"]
        cnf = claims.get("cnf")
        jkt = cnf.get("jkt") if isinstance(cnf, dict) else None
        return AccessClaims(
            subject=str(claims["sub"]),
            client_id=str(claims.get("client_id", "")),
            scope=frozenset(str(claims.get("scope", "")).split()),
            jti=str(claims["jti"]),
            expires_at=int(claims["exp"]),
            session_id=str(claims["sid"]) if "sid" in claims else None,
            raw=claims,
            userinfo_claims=userinfo_claims if isinstance(userinfo_claims, str) else "",
            audience=(aud,) if isinstance(aud, str) else tuple(aud),
            jkt=jkt if isinstance(jkt, str) else None,
        )


def _header_kid(token: str) -> str | None:
    """The ``kid`` of a compact JWS's header, or None if there is no readable one."""
    try:
        kid = jws.extract_compact(token.encode("ascii")).headers().get("kid")
    except (JoseError, ValueError, TypeError, KeyError, UnicodeError):
        return None
    return kid if isinstance(kid, str) and 0 < len(kid) <= 128 else None
