"""ID tokens (OpenID Connect Core §2, §3.1.3.6, §12.2).

An ID token says who signed in, when and how, to one client: ``iss``, ``sub`` (the
user's id: stable, never reassigned), ``aud`` (the client), ``exp``, ``iat``,
``auth_time``, ``nonce`` (exactly as the authorization request sent it; not on
refresh), ``at_hash`` (the left half of the hash of the access token issued with it),
``sid`` (the browser session) and ``amr`` (``pwd``: Authly signs in with passwords).
It is signed with the current key of the client's ``id_token_signed_response_alg``.
The issuer comes from configuration, never from the request.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from joserfc import jwt

from authly.tokens.keys import SigningKeys

# Algorithms a client may choose for its ID tokens (OIDC Registration §2); RS256 default.
ID_TOKEN_ALGS = ("RS256", "ES256", "EdDSA")
# at_hash uses the hash of the signing algorithm (Core §3.1.3.6); Ed25519 signs with
# SHA-512 (RFC 8032), as other providers do for EdDSA.
_AT_HASH = {"RS256": hashlib.sha256, "ES256": hashlib.sha256, "EdDSA": hashlib.sha512}


def at_hash(access_token: str, alg: str) -> str:
    digest = _AT_HASH[alg](access_token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class SignIn:
    """What an ID token says about the sign-in: who, when, in which browser session."""

    subject: str
    auth_time: float | None
    sid: str | None


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
