"""Helpers for the end-to-end authorization-code tests: a real server whose issuer is
its own base URL (clients go straight into its SQLite file with
tests.support.store.register_client)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx

from tests.e2e.server import authly_env
from tests.support.processes import ServerProcess, free_port

Spawn = Callable[..., ServerProcess]

AUTHORIZE = "/api/v1/oauth/authorize"
TOKEN = "/api/v1/oauth/token"
ME = "/api/v1/users/me"


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
