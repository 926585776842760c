"""Signing keys loaded once as key objects (parsing a PEM per signature costs ≈ 37 ms)."""

from __future__ import annotations

from typing import Any

from joserfc.jwk import KeySet, RSAKey

from authly.store.keys import SigningKeyRow

ALGORITHM = "RS256"


def generate_rsa_key() -> tuple[str, str, str]:
    """A fresh RSA-2048 key: (kid, alg, private PEM). The kid is its RFC 7638 thumbprint."""
    key = RSAKey.generate_key(2048, private=True)
    kid = key.thumbprint()
    return kid, ALGORITHM, key.as_pem(private=True).decode("ascii")


class SigningKeys:
    """The active signing key (newest) plus every non-retired key for verification."""

    def __init__(self, rows: list[SigningKeyRow]) -> None:
        if not rows:
            raise ValueError("at least one signing key is required")
        self._keys = [
            RSAKey.import_key(r.private_pem, {"kid": r.kid, "alg": r.alg, "use": "sig"})
            for r in rows
        ]
        self.active = self._keys[0]
        self.keyset = KeySet(self._keys)  # type: ignore[arg-type]
        self._jwks = {"keys": [k.as_dict(private=False) for k in self._keys]}

    @property
    def kid(self) -> str:
        return str(self.active.kid)

    def jwks(self) -> dict[str, Any]:
        """The public JWK Set (RFC 7517 §5)."""
        return self._jwks
