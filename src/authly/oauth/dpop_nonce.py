"""Server-provided DPoP nonces (RFC 9449 §8, §9), with AUTHLY_DPOP_NONCE=true.

Stateless: the nonce of a time bucket of ``PERIOD`` seconds is the HMAC-SHA256 of the
bucket's number under a key, cut to 128 bits and base64url-encoded (22 characters). A
nonce is accepted during its own bucket and the next one, so a client that was just
given one has between ``PERIOD`` and twice that to use it, and every answer carries the
current nonce (``DPoP-Nonce``), so a client that keeps the last one it saw never has to
retry.

The key is a random value recorded once in the store's ``deployment`` table
(``dpop_nonce_key``, first writer wins: store/deployment.py), so every instance and
worker sharing the store issues and accepts the same nonces; nothing is written per
nonce. Whoever can read the store can compute nonces; that only lets them skip the
nonce's freshness guarantee, not forge proofs (the signature and jti rules still hold).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable

from authly.store import deployment as deployment_repo
from authly.store.db import Database

PERIOD = 120  # seconds per nonce bucket; a nonce is accepted for 1 to 2 periods
KEY_NAME = "dpop_nonce_key"  # the deployment fact holding the HMAC key
MAX_NONCE = 64


class DPoPNonces:
    """Issues and checks the nonces of one key (the module docstring)."""

    def __init__(
        self, key: bytes, *, period: int = PERIOD, now: Callable[[], float] = time.time
    ) -> None:
        self._key = key
        self.period = period
        self._now = now

    def _of(self, bucket: int) -> str:
        mac = hmac.new(self._key, f"dpop-nonce:{bucket}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac[:16]).rstrip(b"=").decode("ascii")

    def _bucket(self) -> int:
        return int(self._now() // self.period)

    def current(self) -> str:
        return self._of(self._bucket())

    def check(self, nonce: str) -> bool:
        """Whether ``nonce`` was issued in this bucket or the previous one."""
        if not nonce or len(nonce) > MAX_NONCE:
            return False
        bucket = self._bucket()
        candidates = (self._of(bucket), self._of(bucket - 1))
        return any(hmac.compare_digest(nonce, c) for c in candidates)


async def load_nonces(db: Database, *, period: int = PERIOD) -> DPoPNonces:
    """The nonces of this deployment: the key recorded in the store (created by the
    first instance that needs it)."""
    key = await db.run(deployment_repo.claim, KEY_NAME, secrets.token_urlsafe(32), time.time())
    return DPoPNonces(key.encode("ascii"), period=period)
