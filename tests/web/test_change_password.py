"""`POST /api/v1/auth/change-password`: the user's own password, checked under the
login limits; the caller's session survives, the others end."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import login, services_of
from tests.web.helpers import error_body, json_of, refresh
from tests.web.oidc_users import ALICE_PASSWORD, RP, USERINFO, alice, bearer, rp_client, tokens

CHANGE = "/api/v1/auth/change-password"
NEW = "a-new-password-2"


@pytest.fixture
async def alice_id(app):
    await rp_client(app)
    return await alice(app)


async def _change(client, access: str, current: str, new: str = NEW, **extra: Any) -> Any:
    body = {"current_password": current, "new_password": new}
    return await client.post(CHANGE, json=body, headers=bearer(access), **extra)


async def test_change_password_keeps_this_session_and_ends_the_others(client, alice_id):
    mine = await tokens(client, "openid offline_access")
    other = await tokens(client, "openid offline_access")
    response = await _change(client, mine["access_token"], ALICE_PASSWORD)
    assert await json_of(response) == {"status": "password_changed"}
    assert response.headers["Cache-Control"] == "no-store"
    # The old password no longer works, the new one does.
    assert (await login(client, "alice", ALICE_PASSWORD)).status_code == 401
    assert (await login(client, "alice", NEW)).status_code == 200
    # The caller's session lives on; the other one is revoked with its access token.
    assert (await client.get(USERINFO, headers=bearer(mine["access_token"]))).status_code == 200
    assert (await refresh(client, mine["refresh_token"], client_id=RP)).status_code == 200
    assert (await client.get(USERINFO, headers=bearer(other["access_token"]))).status_code == 401
    response = await refresh(client, other["refresh_token"], client_id=RP)
    assert (await error_body(response, 400))["error"] == "invalid_grant"


async def test_wrong_current_password_is_refused_and_rate_limited(app, client, alice_id):
    access = (await tokens(client, "openid"))["access_token"]
    limit = services_of(app).settings.login_rate_limit
    for _ in range(limit):
        response = await _change(client, access, "wrong-password")
        assert (await error_body(response, 400))["error"] == "invalid_grant"
    response = await _change(client, access, ALICE_PASSWORD)
    await error_body(response, 429)
    assert int(response.headers["Retry-After"]) >= 1
    # The password did not change.
    assert (await login(client, "alice", NEW)).status_code in (401, 429)


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"current_password": ALICE_PASSWORD, "new_password": "short"}, 400),
        ({"current_password": ALICE_PASSWORD}, 400),
        ({"new_password": NEW}, 400),
        ({"current_password": ALICE_PASSWORD, "new_password": ALICE_PASSWORD}, 400),
    ],
)
async def test_bad_bodies_are_400(client, alice_id, body, status):
    access = (await tokens(client, "openid"))["access_token"]
    response = await client.post(CHANGE, json=body, headers=bearer(access))
    assert (await error_body(response, status))["error"] == "invalid_request"
    assert (await login(client, "alice", ALICE_PASSWORD)).status_code == 200


async def test_a_bearer_token_is_required(client, alice_id):
    response = await client.post(
        CHANGE, json={"current_password": ALICE_PASSWORD, "new_password": NEW}
    )
    await error_body(response, 401)
    response = await _change(client, "not-a-token", ALICE_PASSWORD)
    assert (await error_body(response, 401))["error"] == "invalid_token"
