"""OAuth clients for a server's store: the row, and a SQLite store file seeded before (or
while) a server runs on it. Shared by the tests and scripts/bench_core.py."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from authly.oauth.clients import hash_secret
from authly.store import clients as client_repo
from authly.store.conn import Conn, SqliteConn
from authly.store.db import connect
from authly.store.migrations import migrate


def client_row(
    client_id: str,
    *,
    name: str | None = None,
    redirect_uris: tuple[str, ...] = (),
    secret: str | None = None,
    auth_method: str = "none",
    grant_types: tuple[str, ...] = ("authorization_code", "refresh_token"),
    scopes: tuple[str, ...] = ("profile", "email", "offline_access"),
    first_party: bool = False,
    id_token_signed_response_alg: str = "RS256",
    post_logout_redirect_uris: tuple[str, ...] = (),
    backchannel_logout_uri: str | None = None,
    backchannel_logout_session_required: bool = False,
    jwks: str | None = None,
    jwks_uri: str | None = None,
) -> client_repo.ClientRow:
    """A client row as the admin API would store it (the secret hashed; a
    client_secret_jwt client's secret also kept), created now. ``jwks`` is JSON text."""
    now = time.time()
    return client_repo.ClientRow(
        client_id=client_id,
        name=name if name is not None else f"{client_id} app",
        secret_hash=hash_secret(secret) if secret else None,
        auth_method=auth_method,
        redirect_uris=redirect_uris,
        grant_types=grant_types,
        scopes=scopes,
        first_party=first_party,
        created_at=now,
        updated_at=now,
        id_token_signed_response_alg=id_token_signed_response_alg,
        post_logout_redirect_uris=post_logout_redirect_uris,
        backchannel_logout_uri=backchannel_logout_uri,
        backchannel_logout_session_required=backchannel_logout_session_required,
        jwks=jwks,
        jwks_uri=jwks_uri,
        jwt_secret=secret if auth_method == "client_secret_jwt" else None,
    )


def register_client(store: Path | str, client_id: str, **fields: Any) -> None:
    """Insert ``client_row(client_id, **fields)`` into the store (a SQLite file path, or
    a postgresql:// URL), migrating a new store first; safe while servers run on it."""
    if isinstance(store, str) and store.startswith(("postgresql://", "postgres://")):
        import psycopg

        from authly.store.postgres import PgConn, row_factory

        with psycopg.connect(store, autocommit=True) as raw:
            raw.row_factory = row_factory  # type: ignore[assignment]
            _register(PgConn(raw), client_id, fields)
        return
    sqlite = connect(str(store).removeprefix("sqlite:///"))
    try:
        _register(SqliteConn(sqlite), client_id, fields)
    finally:
        sqlite.close()


def _register(conn: Conn, client_id: str, fields: dict[str, Any]) -> None:
    migrate(conn)
    client_repo.insert(conn, client_row(client_id, **fields))
