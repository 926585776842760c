"""The UserInfo endpoint's answer (OIDC Core §5.3) for a verified bearer token.

Needs an access token with the ``openid`` scope. The answer is ``sub``, the claims of
the token's scopes (§5.4), and the userinfo claims the client asked for individually
with the ``claims`` parameter (§5.5): the access token itself carries their names
(the private claim ``authly_userinfo_claims``, tokens/access.py), set by the
authorization_code grant and copied by every refresh, so no session-store read happens
here. Absent claims are omitted. A disabled or deleted user's token is
``invalid_token``.

Every request verifies the token and asks the revocation list and the profile cache
again; only the encoding of an answer is remembered, on the decoded profile record it
came from (users/profiles.py), keyed by what else it depends on (the token's scopes and
the requested claim names).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from authly.errors import InsufficientScope, InvalidToken
from authly.oidc.claims import release_wanted, wanted_claims
from authly.tokens.service import TokenService
from authly.users.profiles import UserProfiles

OPENID_SCOPE = "openid"


async def userinfo_json(
    tokens: TokenService, profiles: UserProfiles, token: str, *, dpop_jkt: str | None = None
) -> bytes:
    """The claims to return for ``token``, as a compact JSON document (UTF-8, ASCII-safe,
    ending with a newline, as Quart's ``jsonify`` writes it). ``dpop_jkt``: the key of
    the request's verified DPoP proof (RFC 9449 §7), None for a bearer token.

    Error handling: InvalidToken for a bad, expired or revoked token or a disabled or
    unknown user; InsufficientScope when the token lacks ``openid``.
    """
    claims = await tokens.verify_access(token, dpop_jkt=dpop_jkt)
    if OPENID_SCOPE not in claims.scope:
        raise InsufficientScope(OPENID_SCOPE, "The access token lacks the openid scope.")
    entry = await profiles.entry(claims.subject)
    if entry is None:
        raise InvalidToken("The account behind this token no longer exists or is disabled.")
    requested = claims.userinfo_claims
    scope = claims.scope

    def encode(user_claims: Mapping[str, Any]) -> bytes:
        released = release_wanted(user_claims, wanted_claims(scope, requested.split()))
        return json.dumps(released, separators=(",", ":")).encode("ascii") + b"\n"

    return entry.encoded((scope, requested), encode)
