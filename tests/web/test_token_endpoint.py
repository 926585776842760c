"""POST /api/v1/oauth/token: password and refresh_token grants (RFC 6749 §4.3, §5, §6)."""

from __future__ import annotations

import time
import uuid

import pytest
from joserfc import jwt

from authly.store import refresh_tokens as refresh_repo
from authly.store.refresh_tokens import Grant
from authly.tokens.refresh import new_refresh_token
from tests.conftest import ADMIN_PASSWORD, login, services_of
from tests.web.helpers import (
    FORM,
    ME,
    TOKEN,
    create_user,
    error_body,
    json_of,
    refresh,
    register_client,
    set_active,
    token_request,
)

# Races for one code or one token: forced on SQLite and on PostgreSQL alike.
pytestmark = pytest.mark.both_stores

TOKEN_KEYS = {"access_token", "token_type", "expires_in", "refresh_token", "scope"}


async def _password_grant(client, **params):
    fields = {"grant_type": "password", "username": "admin", "password": ADMIN_PASSWORD}
    fields.update(params)
    return await token_request(client, **fields)


async def _tokens(client, **params) -> dict:
    return await json_of(await _password_grant(client, **params))


def _claims(app, access_token: str) -> dict:
    return jwt.decode(access_token, services_of(app).keys.keyset, algorithms=["RS256"]).claims


# --- password grant -----------------------------------------------------------------------


async def test_password_grant_success(app, client, settings):
    response = await _password_grant(client)
    body = await json_of(response)
    assert set(body) == TOKEN_KEYS
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == settings.access_token_ttl
    assert body["scope"] == "email profile"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Pragma"] == "no-cache"
    claims = _claims(app, body["access_token"])
    assert claims["client_id"] == "authly"
    assert claims["scope"] == "email profile"


async def test_password_grant_records_the_client_id(app, client):
    await register_client(app, "my-spa")
    body = await _tokens(client, client_id="my-spa")
    assert _claims(app, body["access_token"])["client_id"] == "my-spa"


async def test_password_grant_with_scope(app, client):
    body = await _tokens(client, scope="admin email")
    assert body["scope"] == "admin email"
    assert _claims(app, body["access_token"])["scope"] == "admin email"


async def test_password_grant_case_insensitive_username(client):
    assert (await _password_grant(client, username="ADMIN")).status_code == 200


async def test_password_grant_special_characters_survive_form_encoding(app, client):
    password = "p@ss w+rd&x=1%20;é"
    await create_user(app, "dave", password)
    assert (await _password_grant(client, username="dave", password=password)).status_code == 200


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"password": "wrong-password"}, "invalid_grant"),
        ({"username": "nobody", "password": "wrong-password"}, "invalid_grant"),
        ({"username": ""}, "invalid_request"),
        ({"password": ""}, "invalid_request"),
        ({"username": "u" * 256}, "invalid_request"),
        ({"password": "p" * 1025}, "invalid_request"),
        ({"scope": "superuser"}, "invalid_scope"),
        ({"scope": "email  profile"}, "invalid_scope"),
        ({"client_id": "bad\x01client"}, "invalid_request"),
        ({"client_id": "c" * 129}, "invalid_request"),
    ],
)
async def test_password_grant_errors(client, params, error):
    response = await _password_grant(client, **params)
    body = await error_body(response, 400)  # RFC 6749 §5.2: 400, not 401
    assert body["error"] == error
    assert response.headers["Cache-Control"] == "no-store"


async def test_password_grant_missing_credentials(client):
    response = await token_request(client, grant_type="password", username="admin")
    assert (await error_body(response, 400))["error"] == "invalid_request"
    response = await token_request(client, grant_type="password", password=ADMIN_PASSWORD)
    assert (await error_body(response, 400))["error"] == "invalid_request"


# --- refresh_token grant ------------------------------------------------------------------


async def test_refresh_rotates_the_refresh_token(app, client):
    first = await _tokens(client)
    response = await refresh(client, first["refresh_token"])
    second = await json_of(response)
    assert set(second) == TOKEN_KEYS
    assert response.headers["Cache-Control"] == "no-store"
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert second["scope"] == first["scope"]
    assert _claims(app, second["access_token"])["sub"] == _claims(app, first["access_token"])["sub"]
    profile = await client.get(ME, headers={"Authorization": f"Bearer {second['access_token']}"})
    assert profile.status_code == 200


async def test_rotated_token_no_longer_works(client):
    first = await _tokens(client)
    assert (await refresh(client, first["refresh_token"])).status_code == 200
    response = await refresh(client, first["refresh_token"])
    assert (await error_body(response, 400))["error"] == "invalid_grant"
    assert response.headers["Cache-Control"] == "no-store"


async def test_a_chain_of_rotations_works(client):
    token = (await _tokens(client))["refresh_token"]
    seen = {token}
    for _ in range(5):
        token = (await json_of(await refresh(client, token)))["refresh_token"]
        assert token not in seen
        seen.add(token)


async def test_newest_token_works_when_nothing_was_reused(client):
    first = await _tokens(client)
    second = await json_of(await refresh(client, first["refresh_token"]))
    assert (await refresh(client, second["refresh_token"])).status_code == 200


async def test_reuse_revokes_the_whole_family(client):
    first = await _tokens(client)
    second = await json_of(await refresh(client, first["refresh_token"]))
    third = await json_of(await refresh(client, second["refresh_token"]))
    reused = await refresh(client, first["refresh_token"])  # replay of a rotated token
    assert (await error_body(reused, 400))["error"] == "invalid_grant"
    # The legitimate holder's newest token is now dead too.
    newest = await refresh(client, third["refresh_token"])
    assert (await error_body(newest, 400))["error"] == "invalid_grant"
    middle = await refresh(client, second["refresh_token"])
    assert (await error_body(middle, 400))["error"] == "invalid_grant"


async def test_reuse_does_not_touch_other_families(client):
    mine = await _tokens(client)
    other = await _tokens(client)
    assert (await refresh(client, mine["refresh_token"])).status_code == 200
    assert (await refresh(client, mine["refresh_token"])).status_code == 400
    assert (await refresh(client, other["refresh_token"])).status_code == 200


async def test_unknown_refresh_token_is_invalid_grant(client):
    response = await refresh(client, "not-a-token-we-issued")
    assert (await error_body(response, 400))["error"] == "invalid_grant"


async def test_access_token_is_not_a_refresh_token(client):
    tokens = await _tokens(client)
    response = await refresh(client, tokens["access_token"][:512])
    assert (await error_body(response, 400))["error"] == "invalid_grant"


@pytest.mark.parametrize("token", ["", "x" * 513])
async def test_missing_or_oversized_refresh_token_is_invalid_request(client, token):
    response = await refresh(client, token)
    assert (await error_body(response, 400))["error"] == "invalid_request"


async def test_refresh_token_parameter_is_required(client):
    response = await token_request(client, grant_type="refresh_token")
    assert (await error_body(response, 400))["error"] == "invalid_request"


async def test_refresh_may_narrow_scope(app, client):
    first = await _tokens(client, scope="admin email profile")
    response = await refresh(client, first["refresh_token"], scope="email")
    narrowed = await json_of(response)
    assert narrowed["scope"] == "email"
    assert _claims(app, narrowed["access_token"])["scope"] == "email"


async def test_narrowing_keeps_the_original_ceiling(client):
    # RFC 6749 §6: a refresh may ask for any scope originally granted; narrowing one
    # access token does not shrink what the family may ask for later.
    first = await _tokens(client, scope="email profile")
    narrowed = await json_of(await refresh(client, first["refresh_token"], scope="email"))
    wide = await json_of(await refresh(client, narrowed["refresh_token"], scope="profile email"))
    assert wide["scope"] == "email profile"
    default = await json_of(await refresh(client, wide["refresh_token"]))
    assert default["scope"] == "email profile"


@pytest.mark.parametrize("scope", ["admin", "email admin", "openid"])
async def test_refresh_cannot_escalate_scope(client, scope):
    first = await _tokens(client)  # email profile
    response = await refresh(client, first["refresh_token"], scope=scope)
    assert (await error_body(response, 400))["error"] == "invalid_scope"
    assert response.headers["Cache-Control"] == "no-store"
    # A refused escalation does not consume the token.
    assert (await refresh(client, first["refresh_token"])).status_code == 200


async def test_password_grant_for_an_unknown_client_is_invalid_client(client):
    response = await _password_grant(client, client_id="nobody")
    body = await error_body(response, 401)
    assert body["error"] == "invalid_client"
    assert response.headers["WWW-Authenticate"].startswith("Basic")


async def test_refresh_with_another_client_id_is_invalid_grant(app, client):
    await register_client(app, "app-one")
    await register_client(app, "app-two")
    first = await _tokens(client, client_id="app-one")
    response = await refresh(client, first["refresh_token"], client_id="app-two")
    assert (await error_body(response, 400))["error"] == "invalid_grant"
    # The refusal neither consumed nor revoked the token for its real client.
    assert (await refresh(client, first["refresh_token"], client_id="app-one")).status_code == 200


async def test_login_tokens_belong_to_the_first_party_client(app, client):
    await register_client(app, "someone-else")
    first = await json_of(await login(client))
    response = await refresh(client, first["refresh_token"], client_id="someone-else")
    assert (await error_body(response, 400))["error"] == "invalid_grant"
    assert (await refresh(client, first["refresh_token"], client_id="authly")).status_code == 200


async def test_refresh_keeps_client_id_in_access_token(app, client):
    await register_client(app, "app-one")
    first = await _tokens(client, client_id="app-one")
    second = await json_of(await refresh(client, first["refresh_token"], client_id="app-one"))
    assert _claims(app, second["access_token"])["client_id"] == "app-one"


async def test_expired_refresh_token_is_invalid_grant(app, client):
    tokens = await _tokens(client)
    sub = _claims(app, tokens["access_token"])["sub"]
    # A token of a family issued two minutes ago that expired a minute ago.
    token, token_hash = new_refresh_token()
    grant = Grant(sub, "authly", "email profile", str(uuid.uuid4()))
    now = time.time()
    await services_of(app).db.run(refresh_repo.insert, token_hash, grant, now - 120, now - 60)
    response = await refresh(client, token)
    body = await error_body(response, 400)
    assert body["error"] == "invalid_grant"
    assert "expired" in body["error_description"]


async def test_disabled_user_cannot_refresh(app, client):
    user = await create_user(app, "erin", "erin-password")
    tokens = await _tokens(client, username="erin", password="erin-password")
    await set_active(app, user.id, False)
    response = await refresh(client, tokens["refresh_token"])
    assert (await error_body(response, 400))["error"] == "invalid_grant"


# --- request validation -------------------------------------------------------------------


@pytest.mark.parametrize("grant_type", ["implicit", "PASSWORD", "device_code", "x" * 64])
async def test_unsupported_grant_type(client, grant_type):
    response = await token_request(client, grant_type=grant_type)
    body = await error_body(response, 400)
    assert body["error"] == "unsupported_grant_type"
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("params", [{}, {"grant_type": ""}, {"username": "admin"}])
async def test_missing_grant_type_is_invalid_request(client, params):
    response = await token_request(client, **params)
    assert (await error_body(response, 400))["error"] == "invalid_request"


async def test_overlong_grant_type_is_invalid_request(client):
    response = await token_request(client, grant_type="x" * 65)
    assert (await error_body(response, 400))["error"] == "invalid_request"


@pytest.mark.parametrize(
    "body",
    [
        b"grant_type=password&grant_type=password&username=admin&password=admin-pass-123",
        b"grant_type=password&username=admin&username=admin&password=admin-pass-123",
        b"grant_type=password&username=admin&password=admin-pass-123&password=x",
        b"grant_type=password&username=admin&password=admin-pass-123&scope=email&scope=",
    ],
)
async def test_repeated_parameter_is_invalid_request(client, body):
    response = await client.post(TOKEN, data=body, headers=FORM)
    body_json = await error_body(response, 400)
    assert body_json["error"] == "invalid_request"
    assert "repeated" in body_json["error_description"]


async def test_raw_form_body_is_accepted(client):
    body = f"grant_type=password&username=admin&password={ADMIN_PASSWORD}".encode()
    assert (await client.post(TOKEN, data=body, headers=FORM)).status_code == 200


async def test_json_body_is_415(client):
    response = await client.post(
        TOKEN, json={"grant_type": "password", "username": "admin", "password": ADMIN_PASSWORD}
    )
    body = await error_body(response, 415)
    assert body["error"] == "invalid_request"
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "multipart/form-data; boundary=x", "application/xml"]
)
async def test_other_content_types_are_415(client, content_type):
    headers = {} if content_type is None else {"Content-Type": content_type}
    response = await client.post(
        TOKEN, data=f"grant_type=password&username=admin&password={ADMIN_PASSWORD}", headers=headers
    )
    await error_body(response, 415)
