"""DPoP proofs (RFC 9449 §4): checking the ``DPoP`` header of one request.

``DPoPVerifier.verify`` returns the proof's key (its RFC 7638 JWK SHA-256 thumbprint,
``jkt``) or raises ``InvalidDPoPProof`` (400 ``invalid_dpop_proof``) or
``UseDPoPNonce`` (400 ``use_dpop_nonce`` with a fresh ``DPoP-Nonce``). The checks of
RFC 9449 §4.3, in order:

1. exactly one ``DPoP`` header, a compact JWS of at most ``MAX_PROOF`` characters;
2. header ``typ`` is ``dpop+jwt``; ``alg`` is one of ``ALGS`` (asymmetric: never
   ``none`` nor an HMAC); ``jwk`` is a public key of the type ``alg`` needs (no private
   or symmetric members; RSA of at least 2048 bits, EC on the curve of ``alg``) and the
   signature verifies with it;
3. claims: ``htm`` is the request method; ``htu`` is the request URL without query and
   fragment (compared after RFC 3986 §6.2.2/§6.2.3 normalisation of scheme, host and
   default port); the caller builds that URL from AUTHLY_ISSUER, never from ``Host``;
   ``iat`` is within ``IAT_WINDOW`` seconds of now (either way); ``jti`` has 1 to
   ``MAX_JTI`` characters; with an access token (at a resource), ``ath`` is the
   base64url SHA-256 of it;
4. server nonces (``nonces`` given: AUTHLY_DPOP_NONCE): ``nonce`` must be one the
   server issued recently (oauth/dpop_nonce.py), else UseDPoPNonce;
5. ``jti`` is used once: recorded in the cache slot as ``dpop:jti:<jkt>:<jti>`` until
   the proof's ``iat`` leaves the window. The cache's ``exists`` then ``set`` is not
   atomic, so within one process a set of in-flight keys refuses a second proof that
   arrives while the first is between the two (as oauth/assertions.py does).

Every malformed input is InvalidDPoPProof, never a 500: joserfc's errors stop here.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, OKPKey, RSAKey

from authly.backends.protocols import Cache
from authly.errors import OAuthError
from authly.oauth.dpop_nonce import DPoPNonces

ALGS = ("ES256", "RS256", "PS256", "EdDSA")  # dpop_signing_alg_values_supported
IAT_WINDOW = 60.0  # seconds a proof's iat may lie before or after now
MAX_PROOF = 8192  # characters
MAX_JTI = 256
MIN_RSA_BITS = 2048
TYP = "dpop+jwt"
# Members only a private or symmetric JWK has (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037 §2).
PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
# What each algorithm needs: key type, and the curves allowed (None: not a curve key).
_KEYS: dict[str, tuple[str, tuple[str, ...] | None]] = {
    "ES256": ("EC", ("P-256",)),
    "RS256": ("RSA", None),
    "PS256": ("RSA", None),
    "EdDSA": ("OKP", ("Ed25519", "Ed448")),
}
_REGISTRY = jws.JWSRegistry(algorithms=list(ALGS))
_REGISTRY.max_header_length = MAX_PROOF  # joserfc's 512 would refuse an RSA jwk
_DEFAULT_PORTS = {"http": 80, "https": 443}
PublicKey = ECKey | RSAKey | OKPKey


class InvalidDPoPProof(OAuthError):
    """Raised when a DPoP proof is missing where required, malformed, or fails a check
    (RFC 9449 §5, §7.1)."""

    error = "invalid_dpop_proof"
    status_code = 400
    default_description = "The DPoP proof is invalid."


class UseDPoPNonce(OAuthError):
    """Raised when the server requires a nonce and the proof has none, or an old or
    unknown one (RFC 9449 §8); carries the nonce to use."""

    error = "use_dpop_nonce"
    status_code = 400
    default_description = "Use the server's DPoP nonce (the DPoP-Nonce header)."

    def __init__(self, nonce: str, description: str | None = None) -> None:
        self.nonce = nonce
        super().__init__(description)

    def headers(self) -> dict[str, str]:
        return {"DPoP-Nonce": self.nonce}


@dataclass(frozen=True)
class Proof:
    """An accepted proof: the thumbprint of its key, and its jti and iat."""

    jkt: str
    jti: str
    iat: float


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def access_token_hash(access_token: str) -> str:
    """The ``ath`` of a proof sent with ``access_token`` (RFC 9449 §4.2)."""
    return b64url(hashlib.sha256(access_token.encode("ascii", "replace")).digest())


def is_thumbprint(value: str) -> bool:
    """Whether ``value`` looks like a JWK SHA-256 thumbprint (43 base64url characters)."""
    return len(value) == 43 and all(c.isascii() and (c.isalnum() or c in "-_") for c in value)


def normalize_url(url: str) -> str | None:
    """``url`` without query and fragment, scheme and host lower-cased, the default
    port dropped, an empty path as ``/``; None when it is not an http(s) URL."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if scheme not in _DEFAULT_PORTS or not host or parts.username or parts.password:
        return None
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port is None or port == _DEFAULT_PORTS[scheme] else f"{host}:{port}"
    return f"{scheme}://{netloc}{parts.path or '/'}"


def _rsa_bits(n: Any) -> int:
    if not isinstance(n, str) or len(n) > 2048:
        return 0
    try:
        raw = base64.urlsafe_b64decode(n + "=" * (-len(n) % 4))
    except ValueError:
        return 0
    return int.from_bytes(raw, "big").bit_length()


@functools.lru_cache(maxsize=1024)
def _public_key(alg: str, jwk_json: str) -> tuple[PublicKey, str]:
    """The key of a proof header's ``jwk`` (canonical JSON) for ``alg``, and its
    thumbprint; ValueError naming what is wrong. Cached: a client signs every proof
    with the same key."""
    jwk = json.loads(jwk_json)
    private = sorted(PRIVATE_MEMBERS & set(jwk))
    if private:
        raise ValueError(f"the jwk has private or symmetric members ({', '.join(private)})")
    kty, curves = _KEYS[alg]
    if jwk.get("kty") != kty:
        raise ValueError(f"{alg} needs a jwk of kty {kty}")
    if curves is not None and not (isinstance(jwk.get("crv"), str) and jwk["crv"] in curves):
        raise ValueError(f"{alg} needs a key on {' or '.join(curves)}")
    if kty == "RSA" and _rsa_bits(jwk.get("n")) < MIN_RSA_BITS:
        raise ValueError(f"an RSA key must have at least {MIN_RSA_BITS} bits")
    key_class: type[PublicKey] = {"EC": ECKey, "RSA": RSAKey, "OKP": OKPKey}[kty]  # type: ignore[assignment]
    try:
        key = key_class.import_key(jwk)
        return key, key.thumbprint()
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise ValueError(f"the jwk is not a valid {kty} public key") from exc


def _number(claims: dict[str, Any], name: str) -> float:
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidDPoPProof(f"The DPoP proof's {name} must be a number (NumericDate).")
    return float(value)


def _string(claims: dict[str, Any], name: str, max_length: int = MAX_PROOF) -> str:
    value = claims.get(name)
    if not isinstance(value, str) or not 1 <= len(value) <= max_length:
        raise InvalidDPoPProof(f"The DPoP proof needs a {name} claim (a string).")
    return value


def parse(value: str) -> tuple[str, dict[str, Any]]:
    """Steps 1 and 2 of the module docstring for one header value: the key's thumbprint
    and the claims, the signature verified."""
    if not value or len(value) > MAX_PROOF:
        raise InvalidDPoPProof(f"The DPoP header must be a JWT of at most {MAX_PROOF} characters.")
    try:
        token = jws.extract_compact(value.encode("ascii"), registry=_REGISTRY)
        header = token.headers()
        claims = json.loads(token.payload)
    except (JoseError, ValueError, TypeError, RecursionError, UnicodeError):
        raise InvalidDPoPProof("The DPoP header is not a signed JWT.") from None
    if not isinstance(claims, dict):
        raise InvalidDPoPProof("The DPoP proof's payload is not a JSON object.")
    typ = header.get("typ")
    if not isinstance(typ, str) or typ.lower() != TYP:
        raise InvalidDPoPProof(f"The DPoP proof's typ must be {TYP}.")
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in _KEYS:
        raise InvalidDPoPProof(f"The DPoP proof must be signed with one of: {', '.join(ALGS)}.")
    jwk = header.get("jwk")
    if not isinstance(jwk, dict):
        raise InvalidDPoPProof("The DPoP proof's header has no jwk (the public key).")
    try:
        key, jkt = _public_key(alg, json.dumps(jwk, sort_keys=True, separators=(",", ":")))
    except (ValueError, TypeError, RecursionError) as exc:
        raise InvalidDPoPProof(f"The DPoP proof's key is refused: {exc}.") from None
    try:
        valid = jws.validate_compact(token, key, registry=_REGISTRY)
    except (JoseError, ValueError, TypeError):
        valid = False
    if not valid:
        raise InvalidDPoPProof("The DPoP proof's signature does not verify with its jwk.")
    return jkt, claims


class DPoPVerifier:
    """Checks DPoP proofs (the module docstring); one per app, shared by its requests."""

    def __init__(
        self,
        cache: Cache,
        *,
        nonces: DPoPNonces | None = None,
        window: float = IAT_WINDOW,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.cache = cache
        self.nonces = nonces
        self.window = window
        self._now = now
        self._in_flight: set[str] = set()

    async def verify(
        self,
        values: Sequence[str],
        *,
        method: str,
        url: str,
        access_token: str | None = None,
    ) -> Proof:
        """The proof in ``values`` (every ``DPoP`` header of the request) for a
        ``method`` request to ``url``; with ``access_token`` (at a resource), the
        proof must also carry its hash (``ath``)."""
        if len(values) != 1:
            raise InvalidDPoPProof("Send exactly one DPoP header.")
        jkt, claims = parse(values[0])
        if claims.get("htm") != method:
            raise InvalidDPoPProof(f"The DPoP proof's htm must be {method}.")
        htu = claims.get("htu")
        expected = normalize_url(url)
        if not isinstance(htu, str) or len(htu) > 4096 or normalize_url(htu) != expected:
            raise InvalidDPoPProof(f"The DPoP proof's htu must be {url}.")
        now = self._now()
        iat = _number(claims, "iat")
        if abs(now - iat) > self.window:
            raise InvalidDPoPProof(
                f"The DPoP proof's iat must be within {int(self.window)} seconds of now."
            )
        jti = _string(claims, "jti", MAX_JTI)
        if access_token is not None and claims.get("ath") != access_token_hash(access_token):
            raise InvalidDPoPProof(
                "The DPoP proof's ath must be the hash of the access token sent with it."
            )
        if self.nonces is not None:
            nonce = claims.get("nonce")
            if not isinstance(nonce, str) or not self.nonces.check(nonce):
                raise UseDPoPNonce(
                    self.nonces.current(),
                    "The DPoP proof must carry the server's current nonce (DPoP-Nonce).",
                )
        await self._use_once(f"dpop:jti:{jkt}:{jti}", iat + self.window - now)
        return Proof(jkt, jti, iat)

    def nonce_headers(self) -> dict[str, str]:
        """The ``DPoP-Nonce`` header for an answer (none when nonces are off)."""
        return {} if self.nonces is None else {"DPoP-Nonce": self.nonces.current()}

    async def _use_once(self, key: str, ttl: float) -> None:
        if key in self._in_flight:
            raise InvalidDPoPProof("The DPoP proof was already used (jti).")
        self._in_flight.add(key)
        try:
            if await self.cache.exists(key):
                raise InvalidDPoPProof("The DPoP proof was already used (jti).")
            await self.cache.set(key, "1", max(ttl, 1.0) + 1.0)
        finally:
            self._in_flight.discard(key)
