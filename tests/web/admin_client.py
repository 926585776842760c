"""Helpers for the admin API tests: requests from loopback with a bearer credential."""

from __future__ import annotations

from typing import Any

from tests.conftest import ADMIN_PASSWORD
from tests.web.helpers import LOGIN, from_ip, json_of

ADMIN = "/api/v1/admin"
SESSION = f"{ADMIN}/session"
CLIENTS = f"{ADMIN}/clients"
SCOPES = f"{ADMIN}/scopes"
LOOPBACK = "127.0.0.1"


class AdminClient:
    """The test client, calling the admin API from ``address`` with ``credential``."""

    def __init__(self, client: Any, credential: str | None, address: str = LOOPBACK) -> None:
        self.client = client
        self.credential = credential
        self.address = address

    async def call(
        self, method: str, path: str, *, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> Any:
        all_headers = dict(headers or {})
        if self.credential is not None:
            all_headers.setdefault("Authorization", f"Bearer {self.credential}")
        return await self.client.open(
            path,
            method=method,
            headers=all_headers,
            scope_base=from_ip(self.address),
            **kwargs,
        )

    async def get(self, path: str, **kwargs: Any) -> Any:
        return await self.call("GET", path, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> Any:
        return await self.call("POST", path, **kwargs)

    async def patch(self, path: str, **kwargs: Any) -> Any:
        return await self.call("PATCH", path, **kwargs)

    async def delete(self, path: str, **kwargs: Any) -> Any:
        return await self.call("DELETE", path, **kwargs)


async def admin_access_token(client: Any, scope: str = "admin") -> str:
    """An access token for the bootstrap admin with ``scope`` (JSON login)."""
    response = await client.post(
        LOGIN, json={"username": "admin", "password": ADMIN_PASSWORD, "scope": scope}
    )
    return str((await json_of(response))["access_token"])


async def start_session(
    client: Any, username: str = "admin", password: str = ADMIN_PASSWORD, address: str = LOOPBACK
) -> Any:
    return await client.post(
        SESSION, json={"username": username, "password": password}, scope_base=from_ip(address)
    )


async def session_handle(client: Any) -> str:
    body = await json_of(await start_session(client), 201)
    return str(body["session"])
