"""Admin API for users: list/search/paginate, show, update profile fields, disable,
enable, delete, reset the password, list and revoke sessions."""

from __future__ import annotations

import base64

import pytest

from tests.conftest import login
from tests.web.admin_client import ADMIN, AdminClient, session_handle, start_session
from tests.web.helpers import (
    LOGIN,
    ME,
    create_user,
    error_body,
    json_of,
    refresh,
    register_client,
)
from tests.web.oidc_users import (
    ALICE_PASSWORD,
    RP,
    USERINFO,
    alice,
    bearer,
    rp_client,
    tokens,
)

USERS = f"{ADMIN}/users"
INTROSPECT = "/api/v1/oauth/introspect"


@pytest.fixture
async def admin(client) -> AdminClient:
    return AdminClient(client, await session_handle(client))


@pytest.fixture
async def alice_id(app):
    await rp_client(app)
    return await alice(app)


async def _patch(admin: AdminClient, ref: str, body: dict, status: int = 200) -> dict:
    return await json_of(await admin.patch(f"{USERS}/{ref}", json=body), status)


async def test_list_search_and_paginate(app, admin):
    for n in range(5):
        user = await create_user(app, f"user{n}", "password-123")
        await _patch(admin, user.id, {"email": f"u{n}@example.com", "name": f"Person {n}"})
    page = await json_of(await admin.get(USERS, query_string={"limit": "2"}))
    assert page["total"] == 6  # with the bootstrap admin
    assert [u["username"] for u in page["users"]] == ["admin", "user0"]
    assert page["next_offset"] == 2
    last = await json_of(await admin.get(USERS, query_string={"limit": "2", "offset": "4"}))
    assert [u["username"] for u in last["users"]] == ["user3", "user4"]
    assert last["next_offset"] is None
    found = await json_of(await admin.get(USERS, query_string={"search": "u3@EXAMPLE"}))
    assert [u["username"] for u in found["users"]] == ["user3"]
    by_name = await json_of(await admin.get(USERS, query_string={"search": "person 4"}))
    assert [u["username"] for u in by_name["users"]] == ["user4"]
    # LIKE wildcards are literal.
    none = await json_of(await admin.get(USERS, query_string={"search": "%"}))
    assert none["total"] == 0
    for bad in ({"limit": "0"}, {"limit": "201"}, {"offset": "-1"}, {"limit": "x"}):
        response = await admin.get(USERS, query_string=bad)
        assert (await error_body(response, 400))["error"] == "invalid_request"


async def test_show_by_id_or_username_never_the_hash(admin, alice_id):
    shown = await json_of(await admin.get(f"{USERS}/{alice_id}"))
    assert shown["username"] == "alice"
    assert shown["is_active"] is True
    assert shown["name"] is None
    assert "password_hash" not in shown
    assert await json_of(await admin.get(f"{USERS}/alice")) == shown
    response = await admin.get(f"{USERS}/nobody")
    assert (await error_body(response, 404))["error"] == "not_found"


async def test_update_profile_fields(admin, alice_id):
    body = {
        "name": "Alice Liddell",
        "email": "alice@example.com",
        "email_verified": True,
        "website": "https://alice.example",
        "birthdate": "0000-05-04",
        "zoneinfo": "America/New_York",
        "locale": "en-US",
        "phone_number": "+1 (425) 555-1212;ext=5678",
        "address": {"street_address": "1 Main St\nApt 2", "postal_code": "10001"},
    }
    updated = await _patch(admin, alice_id, body)
    for name, value in body.items():
        assert updated[name] == value
    # Changing the email without saying it is verified resets the flag.
    updated = await _patch(admin, "alice", {"email": "new@example.com"})
    assert updated["email_verified"] is False
    cleared = await _patch(admin, "alice", {"address": None, "website": ""})
    assert cleared["address"] is None
    assert cleared["website"] is None


@pytest.mark.parametrize(
    "body",
    [
        {"picture": "ftp://example.com/a.png"},
        {"website": "example.com"},
        {"profile": "https:///nohost"},
        {"email": "not-an-email"},
        {"email_verified": "yes"},
        {"birthdate": "1990-13-01"},
        {"birthdate": "90"},
        {"zoneinfo": "Mars/Olympus_Mons"},
        {"zoneinfo": "../etc/passwd"},
        {"locale": "english please"},
        {"phone_number": "call me"},
        {"address": "somewhere"},
        {"address": {"planet": "Earth"}},
        {"name": "x" * 201},
        {"name": 7},
        {"name": "tab\there"},
        {"password_hash": "x"},
        {"is_admin": True},
        {},
    ],
)
async def test_bad_profile_fields_are_400(admin, alice_id, body):
    response = await admin.patch(f"{USERS}/{alice_id}", json=body)
    assert (await error_body(response, 400))["error"] == "invalid_request"


@pytest.fixture
async def svc(app) -> None:
    """A confidential client that may introspect tokens."""
    await register_client(
        app, "svc", secret="svc-secret", auth_method="client_secret_basic",
        grant_types=("client_credentials",), scopes=("profile",),
    )  # fmt: skip


async def _introspect(client, token: str) -> dict:
    basic = base64.b64encode(b"svc:svc-secret").decode()
    response = await client.post(
        INTROSPECT, form={"token": token}, headers={"Authorization": f"Basic {basic}"}
    )
    return await json_of(response)


async def test_disable_ends_sessions_and_blocks_login_then_enable(client, admin, alice_id, svc):
    issued = await tokens(client, "openid offline_access")
    access = issued["access_token"]
    assert (await _introspect(client, access))["active"] is True  # now cached
    disabled = await json_of(await admin.post(f"{USERS}/alice/disable"))
    assert disabled["is_active"] is False
    # No login,
    response = await login(client, "alice", ALICE_PASSWORD)
    assert (await error_body(response, 401))["error"] == "invalid_grant"
    # no refresh,
    response = await refresh(client, issued["refresh_token"], client_id=RP)
    assert (await error_body(response, 400))["error"] == "invalid_grant"
    # the access token introspects inactive and is refused by resource endpoints.
    assert await _introspect(client, access) == {"active": False}
    assert (await client.get(ME, headers=bearer(access))).status_code == 401
    assert (await client.get(USERINFO, headers=bearer(access))).status_code == 401

    # Enabling again lets the user sign in; the sessions that ended stay ended (their
    # clients were told by back-channel logout: test_oidc_logout_events.py).
    enabled = await json_of(await admin.post(f"{USERS}/alice/enable"))
    assert enabled["is_active"] is True
    assert (await login(client, "alice", ALICE_PASSWORD)).status_code == 200
    assert await _introspect(client, access) == {"active": False}
    assert (await client.get(USERINFO, headers=bearer(access))).status_code == 401
    response = await refresh(client, issued["refresh_token"], client_id=RP)
    assert (await error_body(response, 400))["error"] == "invalid_grant"


async def test_an_admin_cannot_disable_or_delete_themselves(admin):
    for response in (
        await admin.post(f"{USERS}/admin/disable"),
        await admin.delete(f"{USERS}/admin"),
    ):
        assert (await error_body(response, 409))["error"] == "conflict"


async def test_delete_removes_the_user_and_their_tokens(client, admin, alice_id):
    issued = await tokens(client, "openid offline_access")
    response = await admin.delete(f"{USERS}/{alice_id}")
    assert response.status_code == 204
    assert (await admin.get(f"{USERS}/{alice_id}")).status_code == 404
    assert (await client.get(USERINFO, headers=bearer(issued["access_token"]))).status_code == 401
    response = await refresh(client, issued["refresh_token"], client_id=RP)
    assert (await error_body(response, 400))["error"] == "invalid_grant"
    assert (await admin.delete(f"{USERS}/{alice_id}")).status_code == 404


async def test_sessions_list_and_revoke(client, admin, alice_id):
    first = await tokens(client, "openid offline_access")
    await tokens(client, "openid offline_access")
    rotated = await json_of(await refresh(client, first["refresh_token"], client_id=RP))
    listed = await json_of(await admin.get(f"{USERS}/alice/sessions"))
    assert listed["id"] == alice_id
    sessions = listed["sessions"]
    assert len(sessions) == 2
    assert {s["client_id"] for s in sessions} == {RP}
    assert all(s["ip"] for s in sessions)
    assert sum(s["last_rotated_at"] is not None for s in sessions) == 1
    assert all(s["scope"] == "offline_access openid" for s in sessions)

    revoked = await json_of(await admin.delete(f"{USERS}/alice/sessions"))
    assert revoked == {"id": alice_id, "sessions_revoked": 2}
    assert (await json_of(await admin.get(f"{USERS}/alice/sessions")))["sessions"] == []
    response = await refresh(client, rotated["refresh_token"], client_id=RP)
    assert (await error_body(response, 400))["error"] == "invalid_grant"
    response = await client.get(USERINFO, headers=bearer(rotated["access_token"]))
    assert response.status_code == 401


async def test_reset_password_revokes_sessions(app, client, admin, alice_id):
    issued = await tokens(client, "openid offline_access")
    path = f"{USERS}/alice/reset-password"
    short = await admin.post(path, json={"password": "short"})
    assert (await error_body(short, 400))["error"] == "invalid_request"
    answer = await json_of(await admin.post(path, json={"password": "brand-new-pass"}))
    assert answer == {"id": alice_id, "sessions_revoked": 1}
    assert (await login(client, "alice", ALICE_PASSWORD)).status_code == 401
    assert (await login(client, "alice", "brand-new-pass")).status_code == 200
    response = await refresh(client, issued["refresh_token"], client_id=RP)
    assert (await error_body(response, 400))["error"] == "invalid_grant"


async def test_reset_password_ends_the_users_admin_sessions(app, client, admin):
    await create_user(app, "second", "second-admin-pw", is_admin=True)
    handle = (await json_of(await start_session(client, "second", "second-admin-pw"), 201))[
        "session"
    ]
    other = AdminClient(client, handle)
    assert (await other.get(USERS)).status_code == 200
    await json_of(await admin.post(f"{USERS}/second/reset-password", json={"password": "x" * 12}))
    assert (await other.get(USERS)).status_code == 401


async def test_user_endpoints_need_an_admin_from_an_allowed_network(client, alice_id):
    assert (await AdminClient(client, None).get(USERS)).status_code == 401
    handle = await session_handle(client)
    response = await AdminClient(client, handle, address="203.0.113.9").get(USERS)
    assert (await error_body(response, 403))["error"] == "access_denied"
    user_token = (
        await json_of(
            await client.post(LOGIN, json={"username": "alice", "password": ALICE_PASSWORD})
        )
    )["access_token"]
    response = await AdminClient(client, user_token).get(USERS)
    assert (await error_body(response, 403))["error"] == "access_denied"
    assert (await AdminClient(client, handle).get(USERS)).status_code == 200
