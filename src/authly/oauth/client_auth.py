"""Client authentication at the endpoints that take it (token, revocation,
introspection, the first-party logout): RFC 6749 §2.3 with the methods of
oauth/clients.py, and client assertions (RFC 7523 §2.2) verified by oauth/assertions.py.

``ClientAuthenticator.authenticate`` returns the client the request proves it is, or
raises InvalidClient (401) — InvalidRequest (400) for a malformed request, such as two
methods at once. Built without an assertion verifier (``ClientAuthenticator(db)``), it
refuses client assertions and behaves as before they existed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from authly.errors import InvalidClient, InvalidRequest
from authly.oauth.assertions import ClientAssertions, claimed_client_id
from authly.oauth.clients import ASSERTION, ClientCredentials, authenticate, credentials_from
from authly.store import clients as client_repo
from authly.store.clients import ClientRow
from authly.store.db import Database

_CLIENT_ID = re.compile(r"^[\x20-\x7e]{1,128}$")


class ClientAuthenticator:
    """Who a request's client is. ``assertions`` verifies client assertions; without it
    they are refused (InvalidClient)."""

    def __init__(self, db: Database, assertions: ClientAssertions | None = None) -> None:
        self.db = db
        self.assertions = assertions

    async def authenticate(
        self,
        authorization: str | None,
        params: Mapping[str, str],
        *,
        default_client: str | None = None,
        endpoint: str | None = None,
    ) -> ClientRow:
        """The authenticated client. ``default_client`` is the client of a request that
        names none; ``endpoint`` (e.g. ``"revoke"``) is the path under /api/v1/oauth that
        was called, an ``aud`` an assertion may name besides the issuer and the token
        endpoint."""
        creds = credentials_from(authorization, params)
        if creds.method == ASSERTION:
            return await self._by_assertion(creds, endpoint)
        client_id = creds.client_id or default_client
        if client_id is None:
            raise InvalidClient("Client authentication is required.")
        _check_client_id(client_id)
        creds = ClientCredentials(client_id, creds.secret, creds.method)
        return authenticate(await self.db.run(client_repo.get, client_id), creds)

    async def _by_assertion(self, creds: ClientCredentials, endpoint: str | None) -> ClientRow:
        if self.assertions is None:
            raise InvalidClient("Client assertions are not accepted here.")
        assert creds.assertion is not None
        claimed = claimed_client_id(creds.assertion)
        if creds.client_id is not None and creds.client_id != claimed:
            raise InvalidClient("client_id differs from the client assertion's sub.")
        if not _CLIENT_ID.match(claimed):
            raise InvalidClient("Unknown client or bad credentials.")
        client = await self.db.run(client_repo.get, claimed)
        if client is None:
            raise InvalidClient("Unknown client or bad credentials.")
        url = None if endpoint is None else self.assertions.endpoint_url(endpoint)
        await self.assertions.verify(client, creds.assertion, endpoint=url)
        return client


def _check_client_id(client_id: str) -> None:
    if not _CLIENT_ID.match(client_id):
        raise InvalidRequest("client_id must be 1 to 128 printable ASCII characters.")
