"""The keys of clients that authenticate with signed JWTs (RFC 7523 §2.2, OpenID Connect
Core §9): what may be registered, and the keys an assertion is verified with.

- ``private_key_jwt``: the client registers public keys, either inline (``jwks``, a JWK
  Set) or as a URL the server fetches (``jwks_uri``: ``https``, or ``http`` on a loopback
  host). Keys are RSA (at least 2048 bits) or EC on P-256, for RS256, PS256 and ES256. A
  registered key with private members (``d``, ``p``, ...) or a symmetric key is refused:
  the server must never hold a client's private key.
- ``client_secret_jwt``: the HMAC key is the client secret itself (HS256/384/512).

Pure: parsing and checking only (oauth/jwks_fetch.py fetches, oauth/assertions.py
verifies). Registration failures are InvalidRequest naming the problem.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from typing import Any

from joserfc.errors import JoseError
from joserfc.jwk import ECKey, OctKey, RSAKey

from authly.errors import InvalidRequest
from authly.oauth import redirect_uris

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
PRIVATE_KEY_JWT = "private_key_jwt"
CLIENT_SECRET_JWT = "client_secret_jwt"  # noqa: S105 (a method name)
JWT_METHODS = (CLIENT_SECRET_JWT, PRIVATE_KEY_JWT)
PRIVATE_KEY_ALGS = ("RS256", "PS256", "ES256")
SECRET_ALGS = ("HS256", "HS384", "HS512")
ASSERTION_ALGS = (*PRIVATE_KEY_ALGS, *SECRET_ALGS)

MAX_JWKS_KEYS = 20
MAX_JWKS_BYTES = 65536
MAX_JWKS_URI = 2000
MAX_KID = 200
MIN_RSA_BITS = 2048
# Members that only a private or symmetric JWK has (RFC 7518 §6.2.2, §6.3.2, §6.4).
PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_KEY_TYPE = {"RS256": "RSA", "PS256": "RSA", "ES256": "EC"}

PublicKey = RSAKey | ECKey
VerifyKey = RSAKey | ECKey | OctKey


def public_key(jwk: Any) -> PublicKey:
    """One registrable verification key; ValueError naming what is wrong."""
    if not isinstance(jwk, Mapping):
        raise ValueError("a key must be a JSON object")
    private = sorted(PRIVATE_MEMBERS & set(jwk))
    if private:
        raise ValueError(f"it has private or symmetric members ({', '.join(private)})")
    kty = jwk.get("kty")
    if kty not in ("RSA", "EC"):
        raise ValueError("kty must be RSA or EC")
    if jwk.get("use", "sig") != "sig":
        raise ValueError("use must be sig")
    ops = jwk.get("key_ops")
    if ops is not None and (not isinstance(ops, list) or "verify" not in ops):
        raise ValueError("key_ops must include verify")
    alg = jwk.get("alg")
    if alg is not None and _KEY_TYPE.get(alg) != kty:
        fitting = ", ".join(a for a, t in _KEY_TYPE.items() if t == kty)
        raise ValueError(f"alg must be one of {fitting}")
    kid = jwk.get("kid")
    if kid is not None and (not isinstance(kid, str) or not 1 <= len(kid) <= MAX_KID):
        raise ValueError(f"kid must be a string of 1 to {MAX_KID} characters")
    if kty == "RSA" and _rsa_bits(jwk.get("n")) < MIN_RSA_BITS:
        # Before joserfc sees it: it would warn (SecurityWarning) about a small key.
        raise ValueError(f"an RSA key must have at least {MIN_RSA_BITS} bits")
    try:
        if kty == "RSA":
            key: PublicKey = RSAKey.import_key(dict(jwk))
        else:
            if jwk.get("crv") != "P-256":
                raise ValueError("an EC key must be on P-256 (ES256)")
            key = ECKey.import_key(dict(jwk))
    except (JoseError, ValueError, TypeError) as exc:
        raise ValueError(f"it is not a valid {kty} key ({_reason(exc)})") from None
    return key


def _rsa_bits(n: Any) -> int:
    """The size of an RSA modulus given as base64url (0 when it is not one)."""
    if not isinstance(n, str) or len(n) > 2048:
        return 0
    try:
        raw = base64.urlsafe_b64decode(n + "=" * (-len(n) % 4))
    except (ValueError, binascii.Error):
        return 0
    return int.from_bytes(raw, "big").bit_length()


def _reason(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return text[:120]


def _key_list(document: Any) -> Sequence[Any]:
    if not isinstance(document, Mapping) or not isinstance(document.get("keys"), list):
        raise ValueError('a JWK Set is a JSON object with a "keys" array')
    keys: list[Any] = document["keys"]
    if not 1 <= len(keys) <= MAX_JWKS_KEYS:
        raise ValueError(f"a JWK Set must hold 1 to {MAX_JWKS_KEYS} keys")
    return keys


def check_jwks(value: Any) -> str:
    """A registrable inline JWK Set, as the canonical JSON text to store."""
    try:
        keys = _key_list(value)
    except ValueError as exc:
        raise InvalidRequest(f"Field jwks: {exc}.") from None
    kids: set[str] = set()
    for index, jwk in enumerate(keys):
        try:
            public_key(jwk)
        except ValueError as exc:
            raise InvalidRequest(f"Field jwks: key {index} is refused: {exc}.") from None
        kid = jwk.get("kid")
        if kid is not None:
            if kid in kids:
                raise InvalidRequest(f"Field jwks: the kid {kid!r} appears twice.")
            kids.add(kid)
    if len(keys) > 1 and len(kids) < len(keys):
        raise InvalidRequest("Field jwks: with more than one key, every key needs a kid.")
    text = json.dumps({"keys": list(keys)}, separators=(",", ":"))
    if len(text) > MAX_JWKS_BYTES:
        raise InvalidRequest(f"Field jwks: the set is larger than {MAX_JWKS_BYTES} bytes.")
    return text


def check_jwks_uri(value: Any) -> str:
    """A registrable ``jwks_uri``: the redirect URIs' strict form, ``https`` (``http``
    only on a loopback host, for development)."""
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_JWKS_URI:
        raise InvalidRequest(f"Field jwks_uri must be a URI of at most {MAX_JWKS_URI} characters.")
    try:
        parsed = redirect_uris.parse(value)
    except InvalidRequest as exc:
        raise InvalidRequest(f"Field jwks_uri: {exc.description}") from None
    loopback = parsed.host == "localhost" or parsed.is_loopback_ip
    if not (parsed.scheme == "https" or (parsed.scheme == "http" and loopback)):
        raise InvalidRequest("Field jwks_uri must be an https URI (http only on loopback).")
    return value


def usable_keys(document: str) -> list[PublicKey]:
    """The verification keys of a JWK Set (stored inline, or fetched from a jwks_uri).

    Keys Authly cannot verify with (other types, encryption keys, private members) are
    skipped, so a client may publish more than its signing keys; ValueError when the
    text is not a JWK Set.
    """
    try:
        parsed = json.loads(document)
    except (ValueError, RecursionError):
        raise ValueError("not JSON") from None
    keys: list[PublicKey] = []
    for jwk in _key_list_lenient(parsed):
        try:
            keys.append(public_key(jwk))
        except ValueError:
            continue
    return keys


def _key_list_lenient(document: Any) -> Sequence[Any]:
    if not isinstance(document, Mapping) or not isinstance(document.get("keys"), list):
        raise ValueError('a JWK Set is a JSON object with a "keys" array')
    keys: list[Any] = document["keys"][:MAX_JWKS_KEYS]
    return keys


def candidates(keys: Sequence[PublicKey], kid: str | None, alg: str) -> list[PublicKey]:
    """The keys an assertion with header ``kid`` and ``alg`` may be signed with."""
    kty = _KEY_TYPE.get(alg)
    found = []
    for key in keys:
        if key.key_type != kty or key.get("alg", alg) != alg:
            continue
        if kid is not None and key.kid != kid:
            continue
        found.append(key)
    return found


def secret_key(secret: str) -> OctKey:
    """The HMAC key of a client_secret_jwt client: the octets of its secret (Core §9)."""
    return OctKey.import_key(secret.encode("utf-8"))


def check_method_keys(auth_method: str, jwks: str | None, jwks_uri: str | None) -> None:
    """A private_key_jwt client has exactly one of ``jwks`` and ``jwks_uri``; no other
    client has either (they would be unused)."""
    if auth_method == PRIVATE_KEY_JWT:
        if (jwks is None) == (jwks_uri is None):
            raise InvalidRequest(
                "private_key_jwt needs the client's public keys: jwks or jwks_uri (one, not both)."
            )
    elif jwks is not None or jwks_uri is not None:
        raise InvalidRequest(
            "jwks and jwks_uri are for private_key_jwt clients only (set them to null)."
        )
