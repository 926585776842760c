"""Small helpers shared by the web tests (assertions and request shortcuts)."""

from __future__ import annotations

import base64
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

from authly.config import Settings
from authly.factory import create_app
from authly.store import clients as client_repo
from authly.store import users as user_repo
from authly.store.clients import ClientRow
from authly.store.users import User
from tests.conftest import services_of
from tests.support.store import client_row

LOGIN = "/api/v1/auth/login"
LOGOUT = "/api/v1/auth/logout"
TOKEN = "/api/v1/oauth/token"
ME = "/api/v1/users/me"
JSON = {"Content-Type": "application/json"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


async def error_body(response: Any, status: int) -> dict[str, Any]:
    """Assert an RFC 6749 §5.2-shaped JSON error with ``status``; return the body."""
    assert response.status_code == status, await response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = await response.get_json()
    assert isinstance(body, dict)
    assert isinstance(body.get("error"), str)
    assert body["error"]
    assert isinstance(body.get("error_description"), str)
    assert body["error_description"]
    return body


async def json_of(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, await response.get_data(as_text=True)
    return await response.get_json()


async def token_request(client: Any, **params: str) -> Any:
    return await client.post(TOKEN, form=params)


async def refresh(client: Any, refresh_token: str, **params: str) -> Any:
    return await token_request(
        client, grant_type="refresh_token", refresh_token=refresh_token, **params
    )


async def me(client: Any, authorization: str | None) -> Any:
    headers = {} if authorization is None else {"Authorization": authorization}
    return await client.get(ME, headers=headers)


async def create_user(
    test_app: Any, username: str, password: str, *, is_admin: bool = False
) -> User:
    s = services_of(test_app)
    password_hash = await s.hasher.hash(password)
    return await s.db.run(user_repo.create, username, password_hash, None, is_admin, time.time())


async def set_active(test_app: Any, user_id: str, active: bool) -> None:
    def update(conn: Any) -> None:
        conn.execute("UPDATE users SET is_active = ? WHERE id = ?", (int(active), user_id))

    await services_of(test_app).db.run(update)


def from_ip(address: str) -> dict[str, Any]:
    """``scope_base`` for a request arriving from ``address``."""
    return {"client": (address, 40000)}


@contextlib.asynccontextmanager
async def running_app(settings: Settings) -> AsyncIterator[Any]:
    """A started test app for ``settings`` (for tests that need more than one app)."""
    async with create_app(settings).test_app() as test_app:
        yield test_app


async def register_client(app: Any, client_id: str, **fields: Any) -> ClientRow:
    """Register a client straight in the store (the admin API has its own tests); the
    fields of tests.support.store.client_row, with defaults for these tests."""
    defaults = {
        "name": client_id,
        "grant_types": ("password", "refresh_token"),
        "scopes": ("profile", "email", "offline_access", "admin"),
    }
    row = client_row(client_id, **(defaults | fields))
    return await services_of(app).db.run(client_repo.insert, row)


def basic(client_id: str, secret: str) -> dict[str, str]:
    """The HTTP Basic header of a confidential client (RFC 6749 §2.3.1)."""
    token = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {token}"}
