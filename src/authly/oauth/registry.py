"""Client and scope registration for the admin API: validate, then write atomically.

The rules are in oauth/registration.py. Each change runs as one write transaction in
the store's thread (read, validate, write), so two concurrent updates cannot lose one
another's changes and a scope cannot be deleted while a client is being given it.
Confidential clients get a secret of 256 random bits, returned once (create, rotate),
except ``private_key_jwt`` clients, which authenticate with their keys and have none. Only
the secret's SHA-256 is kept, except for ``client_secret_jwt`` clients, whose assertions
are HMACs keyed with the secret itself: for them the secret is kept too (``jwt_secret``),
and dropped when the client moves to another method.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from authly.errors import Conflict, InvalidRequest, NotFound
from authly.oauth.client_keys import CLIENT_SECRET_JWT, PRIVATE_KEY_JWT
from authly.oauth.clients import new_client_secret
from authly.oauth.metadata import MetadataDocument
from authly.oauth.registration import (
    BUILT_IN_SCOPES,
    MAX_CLIENT_ID,
    MAX_SCOPE_NAME,
    check_client,
    new_client_id,
    parse_changes,
    parse_new_client,
    parse_scope,
)
from authly.store import clients as client_repo
from authly.store import resources as resource_repo
from authly.store import scopes as scope_repo
from authly.store.clients import ClientExists, ClientRow
from authly.store.conn import Conn, write_transaction
from authly.store.db import Database
from authly.store.scopes import Scope, ScopeExists

# --- transactions (run in the store's thread) -------------------------------------------


def _get(conn: Conn, client_id: str) -> ClientRow:
    client = client_repo.get(conn, client_id) if len(client_id) <= MAX_CLIENT_ID else None
    if client is None:
        raise NotFound(f"No client with client_id {client_id[:MAX_CLIENT_ID]!r}.")
    return client


def _create_tx(
    conn: Conn, body: Mapping[str, Any], client_id: str, secret: tuple[str, str], now: float
) -> ClientRow:
    with write_transaction(conn):
        registry = scope_repo.list_all(conn)
        defaults = tuple(s.name for s in registry if s.is_default)
        values = parse_new_client(body, defaults)
        check_client(values, frozenset(s.name for s in registry))
        has_secret = values.confidential and values.auth_method != PRIVATE_KEY_JWT
        row = ClientRow(
            client_id=client_id,
            name=values.name,
            secret_hash=secret[1] if has_secret else None,
            jwt_secret=secret[0] if values.auth_method == CLIENT_SECRET_JWT else None,
            jwks=values.jwks,
            jwks_uri=values.jwks_uri,
            auth_method=values.auth_method,
            redirect_uris=values.redirect_uris,
            grant_types=values.grant_types,
            scopes=values.scopes,
            first_party=values.first_party,
            created_at=now,
            updated_at=now,
            id_token_signed_response_alg=values.id_token_alg,
            post_logout_redirect_uris=values.post_logout_redirect_uris,
            backchannel_logout_uri=values.backchannel_logout_uri,
            backchannel_logout_session_required=values.backchannel_logout_session_required,
            require_pushed_authorization_requests=values.require_pushed_authorization_requests,
            dpop_bound_access_tokens=values.dpop_bound_access_tokens,
        )
        try:
            return client_repo.insert(conn, row)
        except ClientExists:
            raise Conflict("A client with this client_id exists; try again.") from None


def _update_tx(conn: Conn, client_id: str, body: Mapping[str, Any], now: float) -> ClientRow:
    with write_transaction(conn):
        current = _get(conn, client_id)
        values = parse_changes(current, body)
        check_client(values, scope_repo.names(conn))
        row = current.with_changes(
            name=values.name,
            auth_method=values.auth_method,
            redirect_uris=values.redirect_uris,
            grant_types=values.grant_types,
            scopes=values.scopes,
            first_party=values.first_party,
            id_token_signed_response_alg=values.id_token_alg,
            post_logout_redirect_uris=values.post_logout_redirect_uris,
            backchannel_logout_uri=values.backchannel_logout_uri,
            backchannel_logout_session_required=values.backchannel_logout_session_required,
            jwks=values.jwks,
            jwks_uri=values.jwks_uri,
            require_pushed_authorization_requests=values.require_pushed_authorization_requests,
            dpop_bound_access_tokens=values.dpop_bound_access_tokens,
            # Moving to client_secret_jwt needs a rotated secret: only its hash was kept.
            jwt_secret=current.jwt_secret if values.auth_method == CLIENT_SECRET_JWT else None,
            updated_at=now,
        )
        client_repo.update(conn, row)
        return row


def _rotate_tx(conn: Conn, client_id: str, secret: tuple[str, str], now: float) -> ClientRow:
    with write_transaction(conn):
        current = _get(conn, client_id)
        if not current.is_confidential:
            raise InvalidRequest("Public clients have no secret to rotate.")
        if current.auth_method == PRIVATE_KEY_JWT:
            raise InvalidRequest(
                "private_key_jwt clients have no secret: they authenticate with their keys."
            )
        kept = secret[0] if current.auth_method == CLIENT_SECRET_JWT else None
        row = current.with_changes(secret_hash=secret[1], jwt_secret=kept, updated_at=now)
        client_repo.update(conn, row)
        return row


def _delete_client_tx(conn: Conn, client_id: str) -> None:
    with write_transaction(conn):
        _get(conn, client_id)
        client_repo.delete(conn, client_id)


def _create_scope_tx(conn: Conn, body: Mapping[str, Any], now: float) -> Scope:
    scope = parse_scope(body)
    try:
        with write_transaction(conn):
            return scope_repo.insert(conn, scope, now)
    except ScopeExists:
        raise Conflict(f"The scope {scope.name!r} already exists.") from None


def _delete_scope_tx(conn: Conn, name: str) -> None:
    with write_transaction(conn):
        if name not in scope_repo.names(conn):
            raise NotFound(f"No scope named {name[:MAX_SCOPE_NAME]!r}.")
        if name in BUILT_IN_SCOPES:
            raise Conflict(f"The scope {name!r} is built in and cannot be deleted.")
        users = [c.client_id for c in client_repo.list_all(conn) if name in c.scopes]
        if users:
            shown = ", ".join(users[:5]) + (", ..." if len(users) > 5 else "")
            raise Conflict(f"The scope {name!r} is registered to client(s) {shown}.")
        resources = resource_repo.using_scope(conn, name)  # RFC 8707 registry
        if resources:
            shown = ", ".join(resources[:5]) + (", ..." if len(resources) > 5 else "")
            raise Conflict(f"The scope {name!r} is allowed by resource(s) {shown}.")
        scope_repo.delete(conn, name)


# --- the service ------------------------------------------------------------------------


class Registry:
    """What the admin API does with clients and scopes.

    Error handling: InvalidRequest (400) for bad values, NotFound (404) for unknown
    ids, Conflict (409) for duplicates and for deleting a scope that is built in or in
    use. Scope changes invalidate the cached RFC 8414 metadata document.
    """

    def __init__(
        self, db: Database, metadata: MetadataDocument, *, now: Callable[[], float] = time.time
    ) -> None:
        self._db = db
        self._metadata = metadata
        self._now = now

    async def list_clients(self) -> list[ClientRow]:
        return await self._db.run(client_repo.list_all)

    async def get_client(self, client_id: str) -> ClientRow:
        return await self._db.run(_get, client_id)

    async def create_client(self, body: Mapping[str, Any]) -> tuple[ClientRow, str | None]:
        """The new client and, for a client with a secret, the secret (shown only now)."""
        secret = new_client_secret()
        client_id = new_client_id()
        row = await self._db.run(_create_tx, body, client_id, secret, self._now())
        return row, secret[0] if row.secret_hash is not None else None

    async def update_client(self, client_id: str, body: Mapping[str, Any]) -> ClientRow:
        return await self._db.run(_update_tx, client_id, body, self._now())

    async def rotate_secret(self, client_id: str) -> tuple[ClientRow, str]:
        """A new secret replaces the old one at once; the old one stops working."""
        secret = new_client_secret()
        row = await self._db.run(_rotate_tx, client_id, secret, self._now())
        return row, secret[0]

    async def delete_client(self, client_id: str) -> None:
        await self._db.run(_delete_client_tx, client_id)

    async def list_scopes(self) -> list[Scope]:
        return await self._db.run(scope_repo.list_all)

    async def create_scope(self, body: Mapping[str, Any]) -> Scope:
        scope = await self._db.run(_create_scope_tx, body, self._now())
        await self._metadata.invalidate()
        return scope

    async def delete_scope(self, name: str) -> None:
        await self._db.run(_delete_scope_tx, name)
        await self._metadata.invalidate()
