"""DPoP (RFC 9449) at the HTTP edge: reading ``DPoP`` headers and the ``DPoP``
authorization scheme, the URL a proof must name, the ``DPoP-Nonce`` header, and the
``WWW-Authenticate: DPoP`` challenges of a protected resource (userinfo).

The checks themselves are oauth/dpop.py (proofs) and oauth/dpop_binding.py (tokens).
One ``DPoPVerifier`` per started app (kept in ``app.extensions`` beside the Services it
was built from), so its in-flight jtis are shared by every request of the process; its
nonce key, with AUTHLY_DPOP_NONCE, is read from the store on first use.

The URL a proof's ``htu`` must match is AUTHLY_ISSUER followed by the request's path:
never the ``Host`` header, which a client chooses.
"""

from __future__ import annotations

from quart import current_app, request

from authly.errors import InsufficientScope, InvalidToken, OAuthError
from authly.oauth.dpop import ALGS, DPoPVerifier, InvalidDPoPProof, UseDPoPNonce
from authly.oauth.dpop_binding import DPoPRequest, bind_pushed_request
from authly.oauth.dpop_nonce import load_nonces
from authly.services import Services
from authly.tokens.service import WrongSender

HEADER = "DPoP"
SCHEME = "dpop"
_EXTENSION = "authly_dpop"


async def verifier(s: Services) -> DPoPVerifier:
    """The app's verifier (created on first use, for the Services now serving)."""
    held = current_app.extensions.get(_EXTENSION)
    if held is None or held[0] is not s:
        held = (s, DPoPVerifier(s.cache))
        current_app.extensions[_EXTENSION] = held
    found: DPoPVerifier = held[1]
    if s.settings.dpop_nonce and found.nonces is None:
        # Concurrent first uses read the same key: the store keeps the first one written.
        found.nonces = await load_nonces(s.db)
    return found


def endpoint_url(s: Services) -> str:
    """The URL of this request as a proof names it: the issuer and the path."""
    return s.settings.issuer + request.path


def proof_values() -> list[str]:
    return request.headers.getlist(HEADER)


async def token_request(s: Services) -> DPoPRequest | None:
    """The request's DPoP proof for the token endpoint, checked later by the grant
    dispatcher (after the per-IP limit); None without a ``DPoP`` header."""
    values = proof_values()
    if not values:
        return None
    return DPoPRequest(await verifier(s), tuple(values), request.method, endpoint_url(s))


async def nonce_headers(s: Services) -> dict[str, str]:
    """``DPoP-Nonce`` for an answer to a request that sent a proof (nonces on)."""
    if not s.settings.dpop_nonce or not proof_values():
        return {}
    return (await verifier(s)).nonce_headers()


async def bind_pushed(s: Services, params: dict[str, str]) -> None:
    """A pushed authorization request with a proof: ``dpop_jkt`` is its key (§10.1)."""
    values = proof_values()
    if values:
        proof = await (await verifier(s)).verify(values, method=request.method, url=endpoint_url(s))
        bind_pushed_request(params, proof.jkt)


def uses_scheme() -> bool:
    """Whether the request's Authorization header uses the ``DPoP`` scheme."""
    return request.headers.get("Authorization", "").partition(" ")[0].lower() == SCHEME


def scheme_token() -> str | None:
    """The access token of ``Authorization: DPoP <token>``; None for another scheme or
    none (a malformed DPoP credential is ``invalid_token``)."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != SCHEME:
        return None
    if not token.strip():
        raise InvalidToken("The Authorization header must be 'DPoP <token>'.")
    return token.strip()


async def resource_proof(s: Services, access_token: str) -> str:
    """The key of the proof sent with ``access_token`` at a resource (its ``ath``
    checked too)."""
    proof = await (await verifier(s)).verify(
        proof_values(), method=request.method, url=endpoint_url(s), access_token=access_token
    )
    return proof.jkt


def _quoted(text: str) -> str:
    clean = "".join(c if " " <= c <= "~" and c not in '"\\' else "'" for c in text)
    return f'"{clean}"'


class DPoPChallenge(OAuthError):
    """A protected resource's error for a DPoP request, or for a DPoP-bound token sent
    as a bearer token: ``WWW-Authenticate: DPoP error=..., algs=...`` (RFC 9449 §7.1),
    401 for proof errors, and the current nonce with ``use_dpop_nonce``."""

    def __init__(self, cause: OAuthError, nonce: str | None) -> None:
        self.error = cause.error
        proof_error = isinstance(cause, InvalidDPoPProof | UseDPoPNonce)
        super().__init__(cause.description, status_code=401 if proof_error else cause.status_code)
        self.nonce = nonce
        self.scope = cause.scope if isinstance(cause, InsufficientScope) else None

    def headers(self) -> dict[str, str]:
        parts = [f"error={_quoted(self.error)}", f"error_description={_quoted(self.description)}"]
        if self.scope is not None:
            parts.append(f"scope={_quoted(self.scope)}")
        parts.append(f"algs={_quoted(' '.join(ALGS))}")
        headers = {"WWW-Authenticate": "DPoP " + ", ".join(parts)}
        if self.nonce is not None:
            headers["DPoP-Nonce"] = self.nonce
        return headers


async def resource_error(s: Services, exc: OAuthError, *, dpop: bool) -> OAuthError:
    """``exc`` as a protected resource answers it: a DPoP challenge for a request made
    with the DPoP scheme (token and proof errors) and for a DPoP-bound token sent as a
    bearer token; anything else unchanged."""
    challenged = isinstance(exc, InvalidToken | InsufficientScope | InvalidDPoPProof)
    if isinstance(exc, UseDPoPNonce):
        return DPoPChallenge(exc, exc.nonce)
    if isinstance(exc, WrongSender) or (dpop and challenged):
        nonce = (await nonce_headers(s)).get("DPoP-Nonce")
        return DPoPChallenge(exc, nonce)
    return exc
