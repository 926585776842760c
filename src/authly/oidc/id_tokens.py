"""ID tokens (OpenID Connect Core §2, §3.1.3.6, §12.2).

An ID token says who signed in, when and how, to one client: ``iss``, ``sub`` (the
user's id: stable, never reassigned), ``aud`` (the client), ``exp``, ``iat``,
``auth_time``, ``nonce`` (exactly as the authorization request sent it; not on
refresh), ``at_hash`` (the left half of the hash of the access token issued with it),
``sid`` (the browser session) and ``amr`` (``pwd``: Authly signs in with passwords).
It is signed with the current key of the client's ``id_token_signed_response_alg``.
The issuer comes from configuration, never from the request.

The same keys sign back-channel *logout tokens* (Back-Channel Logout 1.0 §2.4) and
check the ``id_token_hint`` of RP-initiated logout (an ID token Authly issued, expired
or not: RP-Initiated Logout 1.0 §2).
"""

from __future__ import annotations

import base64
import hashlib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from joserfc import jws, jwt
from joserfc.errors import JoseError

from authly.errors import InvalidRequest
from authly.tokens.keys import SigningKeys

# Algorithms a client may choose for its ID tokens (OIDC Registration §2); RS256 default.
ID_TOKEN_ALGS = ("RS256", "ES256", "EdDSA")
# at_hash uses the hash of the signing algorithm (Core §3.1.3.6); Ed25519 signs with
# SHA-512 (RFC 8032), as other providers do for EdDSA.
_AT_HASH = {"RS256": hashlib.sha256, "ES256": hashlib.sha256, "EdDSA": hashlib.sha512}
BACKCHANNEL_LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"
LOGOUT_TOKEN_TTL = 120  # seconds: a logout token is delivered at once or not at all
MAX_HINT_LENGTH = 8192


def at_hash(access_token: str, alg: str) -> str:
    digest = _AT_HASH[alg](access_token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class SignIn:
    """What an ID token says about the sign-in: who, when, in which browser session."""

    subject: str
    auth_time: float | None
    sid: str | None


@dataclass(frozen=True)
class IdTokenHint:
    """What a verified ``id_token_hint`` says: the client, the user and the session."""

    client_id: str
    subject: str
    sid: str | None


class InvalidIdTokenHint(InvalidRequest):
    """Raised when an ``id_token_hint`` is not an ID token this server issued."""

    default_description = "The id_token_hint is not a valid ID token issued by this server."


def _header_kid(token: str) -> str | None:
    try:
        kid = jws.extract_compact(token.encode("ascii")).headers().get("kid")
    except (JoseError, ValueError, TypeError, KeyError, UnicodeError):
        return None
    return kid if isinstance(kid, str) and 0 < len(kid) <= 128 else None


class IdTokens:
    def __init__(
        self,
        keys: SigningKeys,
        *,
        issuer: str,
        ttl: int,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._keys = keys
        self.issuer = issuer
        self.ttl = ttl
        self._now = now

    def issue(
        self,
        *,
        client_id: str,
        alg: str,
        sign_in: SignIn,
        access_token: str,
        nonce: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> str:
        """A signed ID token for ``client_id``; ``extra`` adds claims (the ``claims``
        request parameter's ``id_token`` member)."""
        now = int(self._now())
        claims: dict[str, Any] = dict(extra or {})
        claims.update(
            iss=self.issuer,
            sub=sign_in.subject,
            aud=client_id,
            exp=now + self.ttl,
            iat=now,
            at_hash=at_hash(access_token, alg),
            amr=["pwd"],
        )
        if sign_in.auth_time is not None:
            claims["auth_time"] = int(sign_in.auth_time)
        if sign_in.sid:
            claims["sid"] = sign_in.sid
        if nonce:
            claims["nonce"] = nonce
        key = self._keys.current(alg)
        header = {"typ": "JWT", "alg": alg, "kid": key.kid}
        return jwt.encode(header, claims, key, algorithms=[alg])

    def logout_token(self, *, client_id: str, alg: str, subject: str, sid: str | None) -> str:
        """A signed logout token (Back-Channel Logout §2.4): ``typ: logout+jwt``, the
        logout event, ``sub`` and (when known) ``sid``, a fresh ``jti``, no ``nonce``."""
        now = int(self._now())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": client_id,
            "iat": now,
            "exp": now + LOGOUT_TOKEN_TTL,
            "jti": str(uuid.uuid4()),
            "events": {BACKCHANNEL_LOGOUT_EVENT: {}},
            "sub": subject,
        }
        if sid:
            claims["sid"] = sid
        key = self._keys.current(alg)
        header = {"typ": "logout+jwt", "alg": alg, "kid": key.kid}
        return jwt.encode(header, claims, key, algorithms=[alg])

    async def verify_hint(self, token: str) -> IdTokenHint:
        """The client, user and session of an ID token this server signed (expired ones
        too); a kid not known here first reloads the keys once (rate-limited).

        Error handling: InvalidIdTokenHint for anything else.
        """
        if not token or len(token) > MAX_HINT_LENGTH:
            raise InvalidIdTokenHint()
        kid = _header_kid(token)
        if kid is not None and not self._keys.knows(kid):
            await self._keys.reload_for_unknown(kid)
        try:
            decoded = jwt.decode(token, self._keys.keyset, algorithms=list(ID_TOKEN_ALGS))
        except (JoseError, ValueError, TypeError, KeyError, UnicodeError):
            raise InvalidIdTokenHint() from None
        claims = decoded.claims
        aud, sub, sid = claims.get("aud"), claims.get("sub"), claims.get("sid")
        if (
            decoded.header.get("typ") != "JWT"
            or claims.get("iss") != self.issuer
            or not isinstance(aud, str)
            or not aud
            or not isinstance(sub, str)
            or not sub
            or "at_hash" not in claims  # an ID token, not another JWT signed with the keys
        ):
            raise InvalidIdTokenHint()
        return IdTokenHint(aud, sub, sid if isinstance(sid, str) and sid else None)
