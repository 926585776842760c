"""The UserInfo endpoint's answer (OIDC Core §5.3) for a verified bearer token.

Needs an access token with the ``openid`` scope. The answer is ``sub``, the claims of
the token's scopes (§5.4), and the userinfo claims the client asked for individually
with the ``claims`` parameter (§5.5): the authorization step stores their names,
space-separated, as ``claims_userinfo`` in the login session record that the token's
``sid`` names. Absent claims are omitted. A disabled or deleted user's token is
``invalid_token``.
"""

from __future__ import annotations

from typing import Any

from authly.errors import InsufficientScope, InvalidToken
from authly.oidc.claims import release
from authly.tokens.service import TokenService
from authly.users.profiles import UserProfiles

OPENID_SCOPE = "openid"
CLAIMS_USERINFO = "claims_userinfo"  # the session record's field


async def userinfo(tokens: TokenService, profiles: UserProfiles, token: str) -> dict[str, Any]:
    """The claims to return for ``token``.

    Error handling: InvalidToken for a bad, expired or revoked token or a disabled or
    unknown user; InsufficientScope when the token lacks ``openid``.
    """
    claims = await tokens.verify_access(token)
    if OPENID_SCOPE not in claims.scope:
        raise InsufficientScope(OPENID_SCOPE, "The access token lacks the openid scope.")
    user_claims = await profiles.claims(claims.subject)
    if user_claims is None:
        raise InvalidToken("The account behind this token no longer exists or is disabled.")
    requested: list[str] = []
    if claims.session_id is not None:
        record = await tokens.session(claims.session_id)
        if record is not None and record.get("user_id") == claims.subject:
            requested = record.get(CLAIMS_USERINFO, "").split()
    return release(user_claims, claims.scope, requested)
