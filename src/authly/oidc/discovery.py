"""OpenID Provider metadata (OpenID Connect Discovery 1.0 §3).

Built on the RFC 8414 document (oauth/metadata.py), so both name the same issuer and
endpoints, and lists only what works: the scopes in the registry, response type
``code`` in the query, the ID-token algorithms clients may choose, the standard claims
Authly can release, the prompt values it honours, and RP-initiated and back-channel
logout (``sid`` always in logout tokens). The pushed authorization request endpoint
(RFC 9126: ``pushed_authorization_request_endpoint``,
``require_pushed_authorization_requests``) comes with the RFC 8414 document, and so
does ``registration_endpoint`` (RFC 7591) when AUTHLY_REGISTRATION is not ``closed``.
"""

from __future__ import annotations

from typing import Any

from authly.oidc.claims import CLAIM_ORDER
from authly.oidc.id_tokens import ID_TOKEN_ALGS

PROMPT_VALUES = ("none", "login", "consent")

# Claims an ID token or userinfo answer may carry (Core §2, §5.1): the ID token's own,
# then the standard claims in release order.
ID_TOKEN_CLAIMS = ("iss", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "sid", "amr")
CLAIMS = ("sub", *ID_TOKEN_CLAIMS, *CLAIM_ORDER[1:])


def openid_metadata(oauth: dict[str, Any]) -> dict[str, Any]:
    """The OpenID Provider metadata, from the RFC 8414 document ``oauth``."""
    issuer = oauth["issuer"]
    document = dict(oauth)
    document.update(
        userinfo_endpoint=f"{issuer}/oidc/userinfo",
        end_session_endpoint=f"{issuer}/oidc/logout",
        subject_types_supported=["public"],
        id_token_signing_alg_values_supported=list(ID_TOKEN_ALGS),
        claims_supported=list(CLAIMS),
        claim_types_supported=["normal"],
        prompt_values_supported=list(PROMPT_VALUES),
        claims_parameter_supported=True,
        request_parameter_supported=False,
        # Request objects fetched from a URL (Core §6.2) are not supported; the PAR
        # request_uri (RFC 9126) is a reference to a pushed request, advertised apart.
        request_uri_parameter_supported=False,
        backchannel_logout_supported=True,
        backchannel_logout_session_supported=True,
    )
    return document
