"""DPoP proofs (RFC 9449 §4.2) as a client makes them, built with joserfc: for the
unit, web and end-to-end tests and scripts/bench_dpop.py."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from typing import Any

from joserfc import jws
from joserfc.jwk import ECKey, OKPKey, RSAKey

Key = ECKey | RSAKey | OKPKey


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def ath(access_token: str) -> str:
    return b64url(hashlib.sha256(access_token.encode("ascii")).digest())


def new_key(alg: str = "ES256") -> Key:
    if alg == "ES256":
        return ECKey.generate_key("P-256")
    if alg in ("RS256", "PS256"):
        return RSAKey.generate_key(2048)
    if alg == "EdDSA":
        return OKPKey.generate_key("Ed25519")
    raise ValueError(alg)


class DPoPKey:
    """A client's DPoP key pair and the proofs it signs."""

    def __init__(self, alg: str = "ES256", key: Key | None = None) -> None:
        self.alg = alg
        self.key = key or new_key(alg)
        self.public_jwk: dict[str, Any] = dict(self.key.as_dict(private=False))
        self.jkt = self.key.thumbprint()

    def proof(
        self,
        method: str,
        url: str,
        *,
        access_token: str | None = None,
        nonce: str | None = None,
        iat: float | None = None,
        jti: str | None = None,
        header: dict[str, Any] | None = None,
        claims: dict[str, Any] | None = None,
    ) -> str:
        """A proof for ``method url``; ``header``/``claims`` entries override (None
        drops one)."""
        protected: dict[str, Any] = {"typ": "dpop+jwt", "alg": self.alg, "jwk": self.public_jwk}
        payload: dict[str, Any] = {
            "jti": jti or secrets.token_urlsafe(16),
            "htm": method,
            "htu": url,
            "iat": int(time.time() if iat is None else iat),
        }
        if access_token is not None:
            payload["ath"] = ath(access_token)
        if nonce is not None:
            payload["nonce"] = nonce
        protected = _merge(protected, header)
        payload = _merge(payload, claims)
        return jws.serialize_compact(
            protected, json.dumps(payload).encode(), self.key, algorithms=[protected["alg"]]
        )


def _merge(base: dict[str, Any], changes: dict[str, Any] | None) -> dict[str, Any]:
    merged = {**base, **(changes or {})}
    return {k: v for k, v in merged.items() if v is not None}


def unsigned(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    """A compact JWS assembled by hand (``alg: none``, forged signatures)."""
    parts = [json.dumps(header).encode(), json.dumps(claims).encode(), signature]
    return ".".join(b64url(p) for p in parts)
