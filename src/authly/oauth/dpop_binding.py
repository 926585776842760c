"""Binding tokens to DPoP keys (RFC 9449 §5, §6, §10): the token endpoint's rules.

- A token request with a valid proof gets an access token with ``cnf.jkt`` (the proof
  key's thumbprint) and ``token_type: DPoP``, whatever the grant.
- Refresh tokens issued to *public* clients with a proof are bound to its key: the
  family keeps the binding through every rotation, and a refresh must bring a proof
  made with that key (``invalid_grant`` otherwise, store/refresh_tokens.py). A
  confidential client's refresh tokens stay unbound (§5: it authenticates anyway).
- ``dpop_jkt`` on the authorization request (§10) is kept with the code: redeeming it
  needs a proof with that key (``invalid_grant``).
- A client registered with ``dpop_bound_access_tokens`` (§5.2) must send a proof with
  every token request (``invalid_dpop_proof``).

The proof is checked by the token endpoint after its per-IP limit and before client
authentication (``DPoPRequest``: what the web layer read, checked when the grant
dispatcher asks).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict

from authly.errors import InvalidGrant, InvalidRequest
from authly.oauth.dpop import DPoPVerifier, InvalidDPoPProof, Proof, is_thumbprint
from authly.store.clients import ClientRow


@dataclass(frozen=True)
class DPoPRequest:
    """The ``DPoP`` headers of a request (at least one) and what they must prove."""

    verifier: DPoPVerifier
    values: tuple[str, ...]
    method: str
    url: str

    async def verify(self) -> Proof:
        return await self.verifier.verify(self.values, method=self.method, url=self.url)


async def proof_key(dpop: DPoPRequest) -> str:
    """The thumbprint of the request's proof key, once the proof is checked."""
    return (await dpop.verify()).jkt


def require_proof(client: ClientRow, jkt: str | None) -> None:
    """A client registered with ``dpop_bound_access_tokens`` must prove a key."""
    if jkt is None and client.dpop_bound_access_tokens:
        raise InvalidDPoPProof(
            "This client must send a DPoP proof with every token request"
            " (dpop_bound_access_tokens)."
        )


def refresh_binding(client: ClientRow, jkt: str | None) -> str | None:
    """The key a new refresh-token family is bound to: the proof's, for public clients."""
    return None if client.is_confidential else jkt


class TokenKeys(TypedDict):
    jkt: str | None
    refresh_jkt: str | None


def token_keys(client: ClientRow, jkt: str | None) -> TokenKeys:
    """The DPoP keys of a new token pair (TokenService.issue's keywords): the access
    token's (the proof's) and the refresh-token family's (``refresh_binding``)."""
    return {"jkt": jkt, "refresh_jkt": refresh_binding(client, jkt)}


def check_code_key(expected: str | None, jkt: str | None) -> None:
    """The code was requested with ``dpop_jkt``: the proof must be made with that key."""
    if expected and expected != jkt:
        raise InvalidGrant(
            "The authorization code is bound to a DPoP key (dpop_jkt): send a DPoP proof"
            " made with that key."
        )


def check_jkt_parameter(value: str | None) -> str:
    """The ``dpop_jkt`` authorization request parameter ('' when absent)."""
    if not value:
        return ""
    if not is_thumbprint(value):
        raise InvalidRequest("dpop_jkt must be a JWK SHA-256 thumbprint (43 base64url characters).")
    return value


def bind_pushed_request(params: dict[str, str], jkt: str) -> None:
    """A pushed request made with a proof (§10.1): ``dpop_jkt`` is the proof's key; one
    given that names another key is refused."""
    given = params.get("dpop_jkt")
    if given and given != jkt:
        raise InvalidDPoPProof("dpop_jkt differs from the key of the DPoP proof.")
    params["dpop_jkt"] = jkt
