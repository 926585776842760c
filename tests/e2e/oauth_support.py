"""Helpers for the end-to-end authorization-code tests: a real server whose issuer is
its own base URL, with OAuth clients registered straight in its SQLite file."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx

from authly.oauth.clients import hash_secret
from authly.store import clients as client_repo
from authly.store.clients import ClientRow
from authly.store.db import connect
from authly.store.migrations import migrate
from tests.e2e.server import ServerProcess, authly_env, free_port

Spawn = Callable[..., ServerProcess]

AUTHORIZE = "/api/v1/oauth/authorize"
TOKEN = "/api/v1/oauth/token"
ME = "/api/v1/users/me"


def register_client(
    db_path: Path,
    client_id: str,
    *,
    redirect_uris: tuple[str, ...],
    secret: str | None = None,
    auth_method: str = "none",
    scopes: tuple[str, ...] = ("profile", "email", "offline_access"),
    first_party: bool = False,
) -> None:
    """Insert a client into the store file (migrating a new file first); safe while a
    server runs on it (WAL, busy timeout)."""
    conn = connect(str(db_path))
    try:
        migrate(conn)
        now = time.time()
        row = ClientRow(
            client_id=client_id,
            name=f"{client_id} app",
            secret_hash=hash_secret(secret) if secret else None,
            auth_method=auth_method,
            redirect_uris=redirect_uris,
            grant_types=("authorization_code", "refresh_token"),
            scopes=scopes,
            first_party=first_party,
            created_at=now,
            updated_at=now,
        )
        client_repo.insert(conn, row)
    finally:
        conn.close()


def start_server(spawn: Spawn, workdir: Path) -> ServerProcess:
    """A healthy ``python -m authly serve`` whose AUTHLY_ISSUER is its own base URL."""
    port = free_port()
    env = authly_env(workdir / "authly.db", AUTHLY_ISSUER=f"http://127.0.0.1:{port}")
    server = spawn(env=env, port=port)
    server.wait_healthy()
    return server


def profile(base_url: str, access_token: str) -> httpx.Response:
    with httpx.Client(timeout=10.0) as http:
        return http.get(base_url + ME, headers={"Authorization": f"Bearer {access_token}"})
