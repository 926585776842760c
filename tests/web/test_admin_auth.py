"""Admin API access: network restriction, admin-scoped tokens and admin sessions."""

from __future__ import annotations

import hashlib
import ipaddress

import pytest

from authly.backends.memory import MemorySessionStore
from authly.errors import InvalidToken
from authly.users.admin_auth import IDLE_TTL, MAX_AGE, AdminAuth
from tests.conftest import ADMIN_PASSWORD, services_of
from tests.web.admin_client import (
    CLIENTS,
    SESSION,
    AdminClient,
    admin_access_token,
    session_handle,
    start_session,
)
from tests.web.helpers import create_user, error_body, from_ip, json_of, set_active

BARE_CHALLENGE = 'Bearer realm="authly"'


def _network(text: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return (ipaddress.ip_network(text),)


async def _set_admin(app, user_id: str, is_admin: bool) -> None:
    def update(conn) -> None:
        conn.execute("UPDATE users SET is_admin = ? WHERE id = ?", (int(is_admin), user_id))

    await services_of(app).db.run(update)


async def _admin_id(app) -> str:
    from authly.store import users as user_repo

    user = await services_of(app).db.run(user_repo.get_by_username, "admin")
    assert user is not None
    return user.id


# --- credentials ----------------------------------------------------------------------


async def test_no_credential_is_401_with_bearer_challenge(client):
    response = await AdminClient(client, None).get(CLIENTS)
    body = await error_body(response, 401)
    assert body["error"] == "invalid_token"
    assert response.headers["WWW-Authenticate"] == BARE_CHALLENGE


@pytest.mark.parametrize(
    "authorization",
    ["Bearer nonsense", "Bearer aas_short", "Bearer aas_" + "A" * 43, "Basic YWRtaW46eA=="],
)
async def test_bad_credentials_are_401(client, authorization):
    response = await AdminClient(client, None).get(
        CLIENTS, headers={"Authorization": authorization}
    )
    body = await error_body(response, 401)
    assert body["error"] == "invalid_token"
    assert response.headers["WWW-Authenticate"].startswith(BARE_CHALLENGE)


async def test_admin_scoped_access_token_is_accepted(client):
    token = await admin_access_token(client, "admin")
    body = await json_of(await AdminClient(client, token).get(CLIENTS))
    assert [c["client_id"] for c in body["clients"]] == ["authly"]


async def test_access_token_without_admin_scope_is_403(client):
    token = await admin_access_token(client, "profile email")
    body = await error_body(await AdminClient(client, token).get(CLIENTS), 403)
    assert body["error"] == "access_denied"


async def test_non_admin_user_cannot_get_in(app, client):
    await create_user(app, "bob", "bob-password-1")
    # The admin scope is not grantable to Bob ...
    response = await client.post(
        "/api/v1/auth/login",
        json={"username": "bob", "password": "bob-password-1", "scope": "admin"},
    )
    assert (await error_body(response, 400))["error"] == "invalid_scope"
    # ... his ordinary token is refused ...
    response = await client.post(
        "/api/v1/auth/login", json={"username": "bob", "password": "bob-password-1"}
    )
    token = (await json_of(response))["access_token"]
    assert (await error_body(await AdminClient(client, token).get(CLIENTS), 403))[
        "error"
    ] == "access_denied"
    # ... and so is an admin session.
    body = await error_body(await start_session(client, "bob", "bob-password-1"), 403)
    assert body["error"] == "access_denied"


async def test_admin_token_of_a_demoted_or_disabled_admin_is_refused(app, client):
    token = await admin_access_token(client)
    admin_id = await _admin_id(app)
    await _set_admin(app, admin_id, False)
    await error_body(await AdminClient(client, token).get(CLIENTS), 403)
    await _set_admin(app, admin_id, True)
    await set_active(app, admin_id, False)
    await error_body(await AdminClient(client, token).get(CLIENTS), 401)


# --- admin sessions -------------------------------------------------------------------


async def test_session_login_status_logout(app, client):
    response = await start_session(client)
    body = await json_of(response, 201)
    assert response.headers["Cache-Control"] == "no-store"
    handle = body["session"]
    assert handle.startswith("aas_")
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == IDLE_TTL
    assert body["user"]["username"] == "admin"
    admin = AdminClient(client, handle)
    status = await json_of(await admin.get(SESSION))
    assert status["auth"] == "session"
    assert status["user"] == body["user"]
    assert 0 < status["expires_in"] <= IDLE_TTL
    assert (await admin.get(CLIENTS)).status_code == 200
    response = await admin.delete(SESSION)
    assert response.status_code == 204
    body = await error_body(await admin.get(CLIENTS), 401)
    assert body["error"] == "invalid_token"
    assert (await admin.delete(SESSION)).status_code == 401


async def test_session_is_kept_under_a_hash_of_the_handle(app, client):
    handle = await session_handle(client)
    sessions = services_of(app).sessions
    assert await sessions.get(handle) is None
    record = await sessions.get("admin:" + hashlib.sha256(handle.encode()).hexdigest())
    assert record is not None
    assert record["user_id"] == await _admin_id(app)
    assert handle not in str(record)


async def test_session_status_with_an_access_token(client):
    token = await admin_access_token(client)
    admin = AdminClient(client, token)
    body = await json_of(await admin.get(SESSION))
    assert body["auth"] == "access_token"
    assert body["user"]["username"] == "admin"
    # There is no session to end behind an access token.
    assert (await error_body(await admin.delete(SESSION), 400))["error"] == "invalid_request"


async def test_session_with_wrong_password_is_401(client):
    body = await error_body(await start_session(client, password="wrong-password"), 401)
    assert body["error"] == "invalid_grant"


@pytest.mark.parametrize(
    "payload",
    [{}, {"username": "admin"}, {"password": ADMIN_PASSWORD}, {"username": 1, "password": "x"}],
)
async def test_session_bad_body_is_400(client, payload):
    response = await client.post(SESSION, json=payload, scope_base=from_ip("127.0.0.1"))
    assert (await error_body(response, 400))["error"] == "invalid_request"


async def test_session_form_body_is_415(client):
    response = await client.post(
        SESSION, form={"username": "admin", "password": "x"}, scope_base=from_ip("127.0.0.1")
    )
    await error_body(response, 415)


async def test_session_login_is_rate_limited(settings_factory):
    from tests.web.helpers import running_app

    async with running_app(settings_factory(login_rate_limit=2)) as app:
        client = app.test_client()
        for _ in range(2):
            await error_body(await start_session(client, password="wrong-password"), 401)
        response = await start_session(client)
        assert (await error_body(response, 429))["error"] == "too_many_requests"
        assert int(response.headers["Retry-After"]) >= 1


async def test_session_of_a_demoted_admin_is_ended(app, client):
    handle = await session_handle(client)
    await _set_admin(app, await _admin_id(app), False)
    admin = AdminClient(client, handle)
    assert (await error_body(await admin.get(CLIENTS), 403))["error"] == "access_denied"
    await _set_admin(app, await _admin_id(app), True)
    assert (await error_body(await admin.get(CLIENTS), 401))["error"] == "invalid_token"


async def test_session_of_a_disabled_admin_is_refused(app, client):
    handle = await session_handle(client)
    await set_active(app, await _admin_id(app), False)
    await error_body(await AdminClient(client, handle).get(CLIENTS), 401)


async def test_session_idle_timeout_and_maximum_age(app):
    s = services_of(app)
    clock = [1000.0]
    store = MemorySessionStore(clock=lambda: clock[0])
    auth = AdminAuth(s.db, store, s.tokens, s.login, now=lambda: clock[0])
    handle, _ = await auth.login("admin", ADMIN_PASSWORD, "127.0.0.1")
    # Used every 7 hours, the session lives on ...
    for _ in range(3):
        clock[0] += 7 * 3600
        principal = await auth.authenticate(handle)
        assert principal.via == "session"
    # ... until MAX_AGE after the login, whatever the use.
    assert principal.expires_in == pytest.approx(MAX_AGE - 21 * 3600, abs=1)
    clock[0] += MAX_AGE - 21 * 3600 + 1
    with pytest.raises(InvalidToken, match="unknown or has ended"):
        await auth.authenticate(handle)
    # Left alone for longer than IDLE_TTL, a fresh session ends too.
    handle, _ = await auth.login("admin", ADMIN_PASSWORD, "127.0.0.1")
    clock[0] += IDLE_TTL + 1
    with pytest.raises(InvalidToken, match="unknown or has ended"):
        await auth.authenticate(handle)


# --- network restriction --------------------------------------------------------------


async def test_loopback_is_refused_when_not_in_the_allowed_networks(settings_factory):
    from tests.web.helpers import running_app

    settings = settings_factory(admin_allowed_networks=_network("10.0.0.0/8"))
    async with running_app(settings) as app:
        client = app.test_client()
        token = await admin_access_token(client)
        response = await AdminClient(client, token).get(CLIENTS)
        assert (await error_body(response, 403))["error"] == "access_denied"
        response = await start_session(client)
        assert (await error_body(response, 403))["error"] == "access_denied"
        response = await AdminClient(client, token, "10.20.30.40").get(CLIENTS)
        assert response.status_code == 200
        response = await start_session(client, address="10.20.30.40")
        assert response.status_code == 201


async def test_the_network_check_comes_before_authentication(client):
    # Outsiders learn nothing about credentials: 403 whatever they send.
    response = await AdminClient(client, None, "203.0.113.5").get(CLIENTS)
    assert (await error_body(response, 403))["error"] == "access_denied"


async def test_a_peer_without_an_ip_address_is_refused(client):
    token = await admin_access_token(client)
    # The test client's default peer is "<local>": not an address, so not allowed.
    response = await client.get(CLIENTS, headers={"Authorization": f"Bearer {token}"})
    assert (await error_body(response, 403))["error"] == "access_denied"


async def test_x_forwarded_for_is_ignored_from_untrusted_peers(client):
    token = await admin_access_token(client)
    spoofed = AdminClient(client, token, "203.0.113.5")
    response = await spoofed.get(CLIENTS, headers={"X-Forwarded-For": "127.0.0.1"})
    await error_body(response, 403)
    local = AdminClient(client, token, "127.0.0.1")
    response = await local.get(CLIENTS, headers={"X-Forwarded-For": "203.0.113.5"})
    assert response.status_code == 200


async def test_x_forwarded_for_is_honoured_from_trusted_proxies(settings_factory):
    from tests.web.helpers import running_app

    settings = settings_factory(trusted_proxies=_network("10.0.0.0/8"))
    async with running_app(settings) as app:
        client = app.test_client()
        token = await admin_access_token(client)
        proxy = AdminClient(client, token, "10.0.0.2")
        # A remote caller behind the proxy is refused ...
        response = await proxy.get(CLIENTS, headers={"X-Forwarded-For": "203.0.113.5"})
        await error_body(response, 403)
        # ... and a local one behind it is let in.
        response = await proxy.get(CLIENTS, headers={"X-Forwarded-For": "127.0.0.1"})
        assert response.status_code == 200
