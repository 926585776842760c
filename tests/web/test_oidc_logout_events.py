"""Back-channel logout when a user's sessions end other than by RP-initiated logout:
the admin revoking them, a password change (self-service) or reset (admin), the user
disabled or deleted. Each event sends a logout token, verified here against the
published keys, to every client that had a refresh-token family in the ended sessions
and registered a ``backchannel_logout_uri``; a client without one gets nothing."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio
from joserfc import jwt

from authly.oidc.id_tokens import BACKCHANNEL_LOGOUT_EVENT
from tests.conftest import ISSUER, services_of
from tests.web.admin_client import ADMIN, AdminClient, session_handle
from tests.web.browser import PASSWORD, USER, Browser, exchange, pkce_pair, web_client
from tests.web.helpers import create_user, json_of, refresh, token_request
from tests.web.logout_receiver import LogoutReceiver, Received
from tests.web.test_oidc_core import oidc_params
from tests.web.test_oidc_logout import ALGS, _jwks

USERS = f"{ADMIN}/users"
CHANGE = "/api/v1/auth/change-password"
NEW = "a-new-password-2"
SCOPES = ("openid", "profile", "email", "offline_access")


async def _clients(app: Any, receiver: LogoutReceiver, **rp_fields: Any) -> str:
    """``rp`` (back-channel receiver) and ``quiet`` (no back-channel URI); the user's id."""
    await web_client(
        app, client_id="rp", scopes=SCOPES, backchannel_logout_uri=receiver.uri, **rp_fields
    )
    await web_client(app, client_id="quiet", scopes=SCOPES)
    return str((await create_user(app, USER, PASSWORD)).id)


async def _sign_in(browser: Browser, client_id: str) -> dict[str, Any]:
    verifier, challenge = pkce_pair()
    result = await browser.code_for(oidc_params(challenge, client_id=client_id))
    return await exchange(browser.client, result["code"], verifier, client_id=client_id)


async def _token(browser: Browser, received: Received) -> dict[str, Any]:
    """The claims of a received logout token, after checking it like an RP would."""
    (token,) = received.form["logout_token"]
    decoded = jwt.decode(token, await _jwks(browser), algorithms=ALGS)
    assert decoded.header["typ"] == "logout+jwt"
    claims = decoded.claims
    assert claims["iss"] == ISSUER
    assert claims["events"] == {BACKCHANNEL_LOGOUT_EVENT: {}}
    assert claims["jti"]
    assert "nonce" not in claims
    return dict(claims)


async def _nothing_more(app: Any, receiver: LogoutReceiver, settled: int) -> None:
    """Nothing beyond ``settled`` notices was queued or received."""
    await trio.sleep(0.2)
    assert services_of(app).backchannel.settled == settled
    with pytest.raises(trio.WouldBlock):
        receiver.received.receive_nowait()


# What ends the sessions: (admin, the kept session's access token) -> response status.
Event = Callable[[AdminClient, str], Awaitable[int]]


async def _revoke_sessions(admin: AdminClient, _: str) -> int:
    return int((await admin.delete(f"{USERS}/{USER}/sessions")).status_code)


async def _reset_password(admin: AdminClient, _: str) -> int:
    response = await admin.post(f"{USERS}/{USER}/reset-password", json={"password": NEW})
    return int(response.status_code)


async def _disable(admin: AdminClient, _: str) -> int:
    return int((await admin.post(f"{USERS}/{USER}/disable")).status_code)


async def _delete(admin: AdminClient, _: str) -> int:
    return int((await admin.delete(f"{USERS}/{USER}")).status_code)


async def _change_password(admin: AdminClient, access: str) -> int:
    response = await admin.client.post(
        CHANGE,
        json={"current_password": PASSWORD, "new_password": NEW},
        headers={"Authorization": f"Bearer {access}"},
    )
    return int(response.status_code)


EVENTS = [
    pytest.param(_revoke_sessions, 200, id="admin-revoke-sessions"),
    pytest.param(_reset_password, 200, id="admin-reset-password"),
    pytest.param(_disable, 200, id="admin-disable"),
    pytest.param(_delete, 204, id="admin-delete"),
    pytest.param(_change_password, 200, id="change-password"),
]


@pytest.mark.parametrize(("event", "status"), EVENTS)
async def test_ending_the_users_sessions_sends_logout_tokens(
    app: Any, client: Any, nursery: Any, event: Event, status: int
) -> None:
    receiver = LogoutReceiver()
    await receiver.start(nursery)
    user_id = await _clients(app, receiver, backchannel_logout_session_required=True)
    browser = Browser(app)
    signed_in = await _sign_in(browser, "rp")
    await _sign_in(browser, "quiet")  # the same browser session, another client
    id_claims = jwt.decode(signed_in["id_token"], await _jwks(browser), algorithms=ALGS).claims
    # Another browser's session at the quiet client: the one a password change keeps.
    kept = await _sign_in(Browser(app), "quiet")
    admin = AdminClient(client, await session_handle(client))

    assert await event(admin, kept["access_token"]) == status

    claims = await _token(browser, await receiver.next())
    assert claims["aud"] == "rp"
    assert claims["sub"] == user_id == id_claims["sub"]
    assert claims["sid"] == id_claims["sid"]  # the RP's session, as its ID token named it
    await services_of(app).backchannel.wait_settled(1)
    await _nothing_more(app, receiver, 1)  # nothing for quiet, nothing twice
    response = await refresh(browser.client, signed_in["refresh_token"], client_id="rp")
    assert response.status_code == 400  # the session really ended


async def test_each_ended_session_of_the_client_gets_its_token(
    app: Any, client: Any, nursery: Any
) -> None:
    receiver = LogoutReceiver()
    await receiver.start(nursery)
    user_id = await _clients(
        app, receiver, grant_types=("authorization_code", "refresh_token", "password")
    )
    sids = set()
    for browser in (Browser(app), Browser(app)):
        id_token = (await _sign_in(browser, "rp"))["id_token"]
        sids.add(jwt.decode(id_token, await _jwks(browser), algorithms=ALGS).claims["sid"])
    # A password-grant session has no browser session: its token names only the user.
    password_grant = await token_request(
        client,
        grant_type="password",
        client_id="rp",
        username=USER,
        password=PASSWORD,
        scope="openid offline_access",
    )
    await json_of(password_grant)
    admin = AdminClient(client, await session_handle(client))
    revoked = await json_of(await admin.delete(f"{USERS}/{USER}/sessions"))
    assert revoked["sessions_revoked"] == 3

    browser = Browser(app)
    received = [await _token(browser, await receiver.next()) for _ in range(3)]
    assert {c["aud"] for c in received} == {"rp"}
    assert {c["sub"] for c in received} == {user_id}
    assert {c.get("sid") for c in received} == sids | {None}
    await _nothing_more(app, receiver, 3)


async def test_a_client_without_a_backchannel_uri_gets_nothing(
    app: Any, client: Any, nursery: Any
) -> None:
    receiver = LogoutReceiver()
    await receiver.start(nursery)
    await _clients(app, receiver)
    browser = Browser(app)
    quiet = await _sign_in(browser, "quiet")
    admin = AdminClient(client, await session_handle(client))
    revoked = await json_of(await admin.delete(f"{USERS}/{USER}/sessions"))
    assert revoked["sessions_revoked"] == 1
    response = await refresh(browser.client, quiet["refresh_token"], client_id="quiet")
    assert response.status_code == 400
    await _nothing_more(app, receiver, 0)
