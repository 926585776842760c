"""PKCE (RFC 7636) with S256 only: OAuth 2.1 §4.1.1 refuses ``plain``."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

from authly.errors import InvalidGrant, InvalidRequest

# code-verifier = 43*128unreserved (RFC 7636 §4.1); the S256 challenge is 43 base64url chars.
_VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
_CHALLENGE = re.compile(r"^[A-Za-z0-9\-_]{43}$")


def check_challenge(challenge: str | None, method: str | None) -> str:
    """Validate an authorization request's PKCE parameters; return the challenge."""
    if not challenge:
        raise InvalidRequest("code_challenge is required (PKCE, S256).")
    if method != "S256":
        raise InvalidRequest("code_challenge_method must be S256.")
    if not _CHALLENGE.match(challenge):
        raise InvalidRequest("code_challenge must be 43 base64url characters (S256).")
    return challenge


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def verify(verifier: str | None, challenge: str) -> None:
    """Check a token request's code_verifier against the stored challenge (§4.6)."""
    if not verifier:
        raise InvalidGrant("code_verifier is required.")
    if not _VERIFIER.match(verifier):
        raise InvalidGrant("code_verifier must be 43-128 unreserved characters.")
    if not hmac.compare_digest(s256(verifier), challenge):
        raise InvalidGrant("code_verifier does not match the code_challenge.")
