"""POST /api/v1/auth/login: the first-party JSON login (DESIGN §7)."""

from __future__ import annotations

import pytest
from joserfc import jwt

from authly.users.login import MAX_PASSWORD, MAX_USERNAME
from tests.conftest import ADMIN_PASSWORD, ISSUER, login, services_of
from tests.web.helpers import (
    JSON,
    LOGIN,
    ME,
    create_user,
    error_body,
    json_of,
    running_app,
    set_active,
)


async def test_success_body_shape(client, settings):
    response = await login(client)
    body = await json_of(response)
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token", "scope"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == settings.access_token_ttl
    assert isinstance(body["access_token"], str)
    assert body["access_token"].count(".") == 2
    assert isinstance(body["refresh_token"], str)
    assert len(body["refresh_token"]) >= 32
    assert body["refresh_token"] != body["access_token"]
    assert body["scope"] == "email profile"


async def test_success_is_not_cacheable(client):
    response = await login(client)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Pragma"] == "no-cache"
    assert response.mimetype == "application/json"


async def test_expires_in_follows_settings(settings_factory):
    async with running_app(settings_factory(access_token_ttl=120)) as test_app:
        body = await json_of(await login(test_app.test_client()))
    assert body["expires_in"] == 120


async def test_access_token_claims(app, client):
    s = services_of(app)
    body = await json_of(await login(client))
    token = jwt.decode(body["access_token"], s.keys.keyset, algorithms=["RS256"])
    assert token.header["typ"] == "at+jwt"
    assert token.header["kid"] == s.keys.kid
    claims = token.claims
    admin = await (await client.get(ME, headers=_bearer(body))).get_json()
    assert claims["sub"] == admin["id"]
    assert claims["iss"] == ISSUER
    assert claims["aud"] == ISSUER
    assert claims["client_id"] == "authly"
    assert claims["scope"] == "email profile"
    assert claims["exp"] - claims["iat"] == body["expires_in"]
    assert claims["jti"]


async def test_each_login_gets_fresh_tokens(client):
    first = await json_of(await login(client))
    second = await json_of(await login(client))
    assert first["refresh_token"] != second["refresh_token"]
    assert first["access_token"] != second["access_token"]


@pytest.mark.parametrize("username", ["ADMIN", "Admin", "aDmIn"])
async def test_username_is_case_insensitive(client, username):
    body = await json_of(await login(client, username=username))
    profile = await json_of(await client.get(ME, headers=_bearer(body)))
    assert profile["username"] == "admin"


async def test_charset_parameter_on_content_type_is_accepted(client):
    response = await client.post(
        LOGIN,
        json={"username": "admin", "password": ADMIN_PASSWORD},
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 200


async def test_unknown_fields_are_ignored(client):
    response = await client.post(
        LOGIN, json={"username": "admin", "password": ADMIN_PASSWORD, "remember": True}
    )
    assert response.status_code == 200


async def test_wrong_password_is_401_invalid_grant(client):
    response = await login(client, password="not-the-password")
    body = await error_body(response, 401)
    assert body["error"] == "invalid_grant"
    assert response.headers["Cache-Control"] == "no-store"


async def test_password_is_case_sensitive(client):
    response = await login(client, password=ADMIN_PASSWORD.upper())
    assert (await error_body(response, 401))["error"] == "invalid_grant"


async def test_unknown_user_gets_the_same_answer_as_wrong_password(client):
    wrong_password = await login(client, password="not-the-password")
    unknown_user = await login(client, username="nobody", password="not-the-password")
    assert unknown_user.status_code == wrong_password.status_code == 401
    assert await unknown_user.get_json() == await wrong_password.get_json()
    assert (await unknown_user.get_json())["error"] == "invalid_grant"


async def test_disabled_user_gets_the_same_answer(app, client):
    user = await create_user(app, "carol", "carol-password")
    assert (await login(client, "carol", "carol-password")).status_code == 200
    await set_active(app, user.id, False)
    disabled = await login(client, "carol", "carol-password")
    wrong = await login(client, password="not-the-password")
    assert disabled.status_code == 401
    assert await disabled.get_json() == await wrong.get_json()


async def test_non_admin_user_can_log_in(app, client):
    await create_user(app, "bob", "bob-password-1")
    body = await json_of(await login(client, "bob", "bob-password-1"))
    assert body["scope"] == "email profile"
    profile = await json_of(await client.get(ME, headers=_bearer(body)))
    assert profile["username"] == "bob"
    assert profile["is_admin"] is False


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param({}, id="empty-object"),
        pytest.param({"password": ADMIN_PASSWORD}, id="missing-username"),
        pytest.param({"username": "admin"}, id="missing-password"),
        pytest.param({"username": None, "password": ADMIN_PASSWORD}, id="null-username"),
        pytest.param({"username": "admin", "password": None}, id="null-password"),
        pytest.param({"username": "", "password": ADMIN_PASSWORD}, id="empty-username"),
        pytest.param({"username": "admin", "password": ""}, id="empty-password"),
        pytest.param({"username": 1, "password": ADMIN_PASSWORD}, id="int-username"),
        pytest.param({"username": "admin", "password": 123456789}, id="int-password"),
        pytest.param({"username": True, "password": ADMIN_PASSWORD}, id="bool-username"),
        pytest.param({"username": ["admin"], "password": ADMIN_PASSWORD}, id="list-username"),
        pytest.param({"username": "admin", "password": {"p": 1}}, id="object-password"),
        pytest.param({"username": "admin", "password": 1.5}, id="float-password"),
        pytest.param(
            {"username": "a" * (MAX_USERNAME + 1), "password": ADMIN_PASSWORD},
            id="username-too-long",
        ),
        pytest.param(
            {"username": "admin", "password": "p" * (MAX_PASSWORD + 1)}, id="password-too-long"
        ),
        pytest.param({"username": "admin", "password": ADMIN_PASSWORD, "scope": 7}, id="int-scope"),
    ],
)
async def test_bad_fields_are_400_invalid_request(client, payload):
    response = await client.post(LOGIN, json=payload)
    body = await error_body(response, 400)
    assert body["error"] == "invalid_request"
    assert response.headers["Cache-Control"] == "no-store"


def test_length_limits_are_the_documented_ones():
    assert MAX_USERNAME == 255
    assert MAX_PASSWORD == 1024


async def test_longest_allowed_fields_reach_authentication(client):
    # At the limit the request is well-formed: the answer is about the credentials.
    response = await login(client, username="a" * MAX_USERNAME, password="p" * MAX_PASSWORD)
    assert (await error_body(response, 401))["error"] == "invalid_grant"


async def test_longest_allowed_password_can_log_in(app, client):
    password = "p" * MAX_PASSWORD
    await create_user(app, "longpass", password)
    assert (await login(client, "longpass", password)).status_code == 200


async def test_invalid_requests_do_not_count_as_failed_attempts(client, settings):
    for _ in range(settings.login_rate_limit * 2):
        response = await client.post(LOGIN, json={"username": "admin", "password": ""})
        assert response.status_code == 400
    assert (await login(client)).status_code == 200


async def test_admin_may_ask_for_admin_scope(client):
    response = await client.post(
        LOGIN, json={"username": "admin", "password": ADMIN_PASSWORD, "scope": "admin"}
    )
    body = await json_of(response)
    assert body["scope"] == "admin"
    profile = await json_of(await client.get(ME, headers=_bearer(body)))
    assert profile["scope"] == "admin"


async def test_admin_may_ask_for_several_scopes(client):
    response = await client.post(
        LOGIN,
        json={"username": "admin", "password": ADMIN_PASSWORD, "scope": "profile admin"},
    )
    assert (await json_of(response))["scope"] == "admin profile"


async def test_narrower_scope_is_granted_as_asked(client):
    response = await client.post(
        LOGIN, json={"username": "admin", "password": ADMIN_PASSWORD, "scope": "email"}
    )
    assert (await json_of(response))["scope"] == "email"


async def test_empty_scope_means_default_scope(client):
    response = await client.post(
        LOGIN, json={"username": "admin", "password": ADMIN_PASSWORD, "scope": ""}
    )
    assert (await json_of(response))["scope"] == "email profile"


@pytest.mark.parametrize("scope", ["superuser", "profile superuser", "Admin", 'a"b', "a\\b"])
async def test_unknown_or_malformed_scope_is_invalid_scope(client, scope):
    response = await client.post(
        LOGIN, json={"username": "admin", "password": ADMIN_PASSWORD, "scope": scope}
    )
    body = await error_body(response, 400)
    assert body["error"] == "invalid_scope"


async def test_non_admin_may_not_ask_for_admin_scope(app, client):
    await create_user(app, "bob", "bob-password-1")
    response = await client.post(
        LOGIN, json={"username": "bob", "password": "bob-password-1", "scope": "admin"}
    )
    assert (await error_body(response, 400))["error"] == "invalid_scope"


async def test_login_body_must_be_json(client):
    response = await client.post(
        LOGIN, form={"username": "admin", "password": ADMIN_PASSWORD}, headers={}
    )
    assert (await error_body(response, 415))["error"] == "invalid_request"
    response = await client.post(LOGIN, data=b'{"username": "admin"}', headers=JSON)
    assert (await error_body(response, 400))["error"] == "invalid_request"


def _bearer(token_response: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {token_response['access_token']}"}
