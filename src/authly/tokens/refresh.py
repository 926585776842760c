"""Opaque refresh tokens: 256 random bits, stored as SHA-256 only, rotated on every use."""

from __future__ import annotations

import hashlib
import secrets

MAX_REFRESH_TOKEN_LENGTH = 512


def new_refresh_token() -> tuple[str, str]:
    """(token for the client, hash for the store)."""
    token = secrets.token_urlsafe(32)
    return token, hash_refresh_token(token)


def hash_refresh_token(token: str) -> str:
    # A fast hash is right here: the token has 256 bits of entropy, so there is
    # nothing to brute-force, and lookups need a deterministic key.
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
