"""Who may end a login session with ``POST /api/v1/auth/logout``.

Logging out revokes a refresh token's whole family. RFC 7009 §2.1 lets only the client
a token was issued to revoke it, so:

- without client credentials, only a token of a public client (``auth_method`` "none",
  such as the built-in ``authly`` client behind the JSON login) is revoked: such a
  client has nothing to authenticate with, and holding its refresh token is the proof;
- a confidential client's token needs that client's authentication (Basic,
  ``client_secret_post`` or a client assertion, as at the token endpoint); without it:
  InvalidClient (401) and nothing is revoked;
- with credentials, only the authenticated client's own token is revoked; another
  client's token is silently left alone (the same answer as for an unknown token).
"""

from __future__ import annotations

from collections.abc import Mapping

from authly.errors import InvalidClient
from authly.oauth.client_auth import ClientAuthenticator
from authly.oauth.clients import credentials_from
from authly.oauth.grants import FIRST_PARTY_CLIENT, FIRST_PARTY_CLIENT_ID, authenticate_client
from authly.store import clients as client_repo
from authly.store.clients import ClientRow
from authly.tokens.service import TokenService


def presents_credentials(authorization: str | None, params: Mapping[str, str]) -> bool:
    """Whether the request names or authenticates a client at all."""
    creds = credentials_from(authorization, params)
    return creds.method != "none" or creds.client_id is not None


async def logout(
    auth: ClientAuthenticator,
    tokens: TokenService,
    refresh_token: str,
    authorization: str | None,
    params: Mapping[str, str],
) -> None:
    """Revoke ``refresh_token``'s family if the caller may (see the module docstring).

    Error handling: InvalidClient when client authentication fails or a confidential
    client's token comes without it; InvalidRequest for malformed credentials.
    """
    db = auth.db
    if presents_credentials(authorization, params):
        client = await authenticate_client(auth, authorization, params)
        await tokens.revoke(refresh_token, client_id=client.client_id)
        return
    owner = await tokens.client_of(refresh_token)
    if owner is None:
        return  # unknown: the same answer as a revoked one (RFC 7009 §2.2)
    registered: ClientRow | None = await db.run(client_repo.get, owner)
    if registered is None and owner == FIRST_PARTY_CLIENT_ID:
        registered = FIRST_PARTY_CLIENT  # the JSON login keeps working without the row
    if registered is None or registered.is_confidential:
        raise InvalidClient("The client this token was issued to must authenticate.")
    await tokens.revoke(refresh_token, client_id=owner)
