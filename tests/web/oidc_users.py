"""Helpers for the userinfo, admin-users and change-password tests: a public
first-party client allowed the OIDC scopes, and tokens from its password grant."""

from __future__ import annotations

from typing import Any

from tests.conftest import services_of
from tests.web.helpers import TOKEN, create_user, json_of, register_client

RP = "rp"
USERINFO = "/oidc/userinfo"
ALICE = "alice"
ALICE_PASSWORD = "alice-password-1"
OIDC_SCOPES = ("openid", "profile", "email", "address", "phone", "offline_access")


async def rp_client(app: Any) -> None:
    await register_client(app, RP, grant_types=("password", "refresh_token"), scopes=OIDC_SCOPES)


async def alice(app: Any, **profile: Any) -> str:
    """Create alice with ``profile`` fields (through the same code the admin API uses)."""
    user = await create_user(app, ALICE, ALICE_PASSWORD)
    if profile:
        await services_of(app).accounts.update(user.id, profile)
    return user.id


async def tokens(
    client: Any, scope: str, username: str = ALICE, password: str = ALICE_PASSWORD
) -> dict[str, Any]:
    form = {
        "grant_type": "password",
        "client_id": RP,
        "username": username,
        "password": password,
        "scope": scope,
    }
    body: dict[str, Any] = await json_of(await client.post(TOKEN, form=form))
    return body


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
