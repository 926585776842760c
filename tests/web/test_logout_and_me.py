"""POST /api/v1/auth/logout and GET /api/v1/users/me (RFC 6750 bearer errors)."""

from __future__ import annotations

import base64
import json
import time

import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from authly.tokens.access import AccessTokens
from tests.conftest import ADMIN_PASSWORD, ISSUER, login, services_of
from tests.web.helpers import (
    LOGOUT,
    TOKEN,
    basic,
    error_body,
    json_of,
    me,
    refresh,
    register_client,
    token_request,
)

BARE_CHALLENGE = 'Bearer realm="authly"'


async def _login_tokens(client) -> dict:
    return await json_of(await login(client))


async def _logout(client, refresh_token):
    return await client.post(LOGOUT, json={"refresh_token": refresh_token})


def _sign(key, claims: dict, **header) -> str:
    return jwt.encode(
        {"alg": "RS256", "typ": "at+jwt", **header}, claims, key, algorithms=["RS256"]
    )


def _claims(sub: str = "someone", **changes) -> dict:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": ISSUER,
        "sub": sub,
        "iat": now,
        "exp": now + 300,
        "jti": "test-jti",
        "scope": "email profile",
        "client_id": "authly",
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


async def _assert_invalid_token(response) -> None:
    body = await error_body(response, 401)
    assert body["error"] == "invalid_token"
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith(BARE_CHALLENGE)
    assert 'error="invalid_token"' in challenge
    assert response.headers["Cache-Control"] == "no-store"


async def _admin_id(client) -> str:
    tokens = await _login_tokens(client)
    return (await json_of(await me(client, f"Bearer {tokens['access_token']}")))["id"]


# --- logout -------------------------------------------------------------------------------


async def test_logout_answers_logged_out(client):
    tokens = await _login_tokens(client)
    response = await _logout(client, tokens["refresh_token"])
    assert await json_of(response) == {"status": "logged_out"}
    assert response.headers["Cache-Control"] == "no-store"


async def test_logged_out_refresh_token_no_longer_refreshes(client):
    tokens = await _login_tokens(client)
    assert (await _logout(client, tokens["refresh_token"])).status_code == 200
    response = await refresh(client, tokens["refresh_token"])
    assert (await error_body(response, 400))["error"] == "invalid_grant"


async def test_logout_with_an_old_token_revokes_the_newest(client):
    first = await _login_tokens(client)
    second = await json_of(await refresh(client, first["refresh_token"]))
    third = await json_of(await refresh(client, second["refresh_token"]))
    assert (await _logout(client, first["refresh_token"])).status_code == 200
    response = await refresh(client, third["refresh_token"])
    assert (await error_body(response, 400))["error"] == "invalid_grant"


async def test_logout_with_the_newest_token_revokes_it(client):
    first = await _login_tokens(client)
    second = await json_of(await refresh(client, first["refresh_token"]))
    assert (await _logout(client, second["refresh_token"])).status_code == 200
    response = await refresh(client, second["refresh_token"])
    assert (await error_body(response, 400))["error"] == "invalid_grant"


async def test_logout_leaves_other_sessions_alone(client):
    mine = await _login_tokens(client)
    other = await _login_tokens(client)
    assert (await _logout(client, mine["refresh_token"])).status_code == 200
    assert (await refresh(client, other["refresh_token"])).status_code == 200


@pytest.mark.parametrize("token", ["never-issued", "x" * 512])
async def test_logout_of_unknown_token_is_200(client, token):
    response = await _logout(client, token)
    assert await json_of(response) == {"status": "logged_out"}


async def test_logout_twice_is_200(client):
    tokens = await _login_tokens(client)
    assert (await _logout(client, tokens["refresh_token"])).status_code == 200
    assert (await _logout(client, tokens["refresh_token"])).status_code == 200


@pytest.mark.parametrize(
    "payload",
    [{}, {"refresh_token": ""}, {"refresh_token": None}, {"refresh_token": 5}, {"token": "x"}],
)
async def test_logout_without_a_token_string_is_400(client, payload):
    response = await client.post(LOGOUT, json=payload)
    assert (await error_body(response, 400))["error"] == "invalid_request"


async def test_logout_with_overlong_token_is_400(client):
    response = await _logout(client, "x" * 513)
    assert (await error_body(response, 400))["error"] == "invalid_request"


# --- logout of other clients' tokens (security review, defect B) -------------------------

APP_SECRET = "app-secret-0123456789"


async def _confidential_tokens(app, client, client_id="app", secret=APP_SECRET) -> dict:
    """A refresh token issued to a confidential client (password grant, Basic auth)."""
    await register_client(
        app, client_id, secret=secret, auth_method="client_secret_basic", first_party=True
    )
    response = await client.post(
        TOKEN,
        form={"grant_type": "password", "username": "admin", "password": ADMIN_PASSWORD},
        headers=basic(client_id, secret),
    )
    return await json_of(response)


async def _refreshes(client, refresh_token: str, headers: dict[str, str]) -> bool:
    response = await client.post(
        TOKEN,
        form={"grant_type": "refresh_token", "refresh_token": refresh_token},
        headers=headers,
    )
    if response.status_code == 200:
        return True
    assert (await error_body(response, 400))["error"] == "invalid_grant"
    return False


async def test_confidential_clients_token_without_credentials_is_401(app, client):
    tokens = await _confidential_tokens(app, client)
    response = await _logout(client, tokens["refresh_token"])
    assert (await error_body(response, 401))["error"] == "invalid_client"
    assert response.headers["WWW-Authenticate"] == 'Basic realm="authly"'
    assert response.headers["Cache-Control"] == "no-store"
    # Nothing was revoked: the client can still refresh, and the access token works.
    assert (await me(client, f"Bearer {tokens['access_token']}")).status_code == 200
    assert await _refreshes(client, tokens["refresh_token"], basic("app", APP_SECRET))


async def test_confidential_clients_token_with_its_basic_credentials_is_revoked(app, client):
    tokens = await _confidential_tokens(app, client)
    response = await client.post(
        LOGOUT, json={"refresh_token": tokens["refresh_token"]}, headers=basic("app", APP_SECRET)
    )
    assert await json_of(response) == {"status": "logged_out"}
    assert not await _refreshes(client, tokens["refresh_token"], basic("app", APP_SECRET))


async def test_confidential_clients_token_with_its_secret_in_the_body_is_revoked(app, client):
    await register_client(app, "poster", secret=APP_SECRET, auth_method="client_secret_post")
    response = await client.post(
        TOKEN,
        form={
            "grant_type": "password",
            "username": "admin",
            "password": ADMIN_PASSWORD,
            "client_id": "poster",
            "client_secret": APP_SECRET,
        },
    )
    tokens = await json_of(response)
    creds = {"client_id": "poster", "client_secret": APP_SECRET}
    response = await client.post(LOGOUT, json={"refresh_token": tokens["refresh_token"], **creds})
    assert await json_of(response) == {"status": "logged_out"}
    response = await token_request(
        client, grant_type="refresh_token", refresh_token=tokens["refresh_token"], **creds
    )
    assert (await error_body(response, 400))["error"] == "invalid_grant"


async def test_wrong_secret_for_the_owning_client_is_401_and_revokes_nothing(app, client):
    tokens = await _confidential_tokens(app, client)
    response = await client.post(
        LOGOUT, json={"refresh_token": tokens["refresh_token"]}, headers=basic("app", "wrong")
    )
    assert (await error_body(response, 401))["error"] == "invalid_client"
    assert await _refreshes(client, tokens["refresh_token"], basic("app", APP_SECRET))


async def test_another_clients_credentials_revoke_nothing(app, client):
    tokens = await _confidential_tokens(app, client)
    await register_client(app, "other", secret="other-secret", auth_method="client_secret_basic")
    response = await client.post(
        LOGOUT,
        json={"refresh_token": tokens["refresh_token"]},
        headers=basic("other", "other-secret"),
    )
    assert await json_of(response) == {"status": "logged_out"}  # as for an unknown token
    assert await _refreshes(client, tokens["refresh_token"], basic("app", APP_SECRET))
    # Nor can another client end a first-party login session.
    mine = await _login_tokens(client)
    response = await client.post(
        LOGOUT,
        json={"refresh_token": mine["refresh_token"]},
        headers=basic("other", "other-secret"),
    )
    assert await json_of(response) == {"status": "logged_out"}
    assert await _refreshes(client, mine["refresh_token"], {})


async def test_public_clients_token_needs_no_credentials(app, client):
    await register_client(app, "spa", auth_method="none")
    response = await token_request(
        client, grant_type="password", username="admin", password=ADMIN_PASSWORD, client_id="spa"
    )
    tokens = await json_of(response)
    assert await json_of(await _logout(client, tokens["refresh_token"])) == {"status": "logged_out"}
    response = await token_request(
        client, grant_type="refresh_token", refresh_token=tokens["refresh_token"], client_id="spa"
    )
    assert (await error_body(response, 400))["error"] == "invalid_grant"


async def test_first_party_logout_works_without_the_seeded_client_row(app, client):
    tokens = await _login_tokens(client)

    def delete(conn) -> None:
        conn.execute("DELETE FROM clients WHERE client_id = 'authly'")

    await services_of(app).db.run(delete)
    assert (await _logout(client, tokens["refresh_token"])).status_code == 200
    response = await me(client, f"Bearer {tokens['access_token']}")
    assert response.status_code == 401  # the family's access token went with it


# --- /users/me ----------------------------------------------------------------------------


async def test_me_returns_the_profile(client):
    tokens = await _login_tokens(client)
    response = await me(client, f"Bearer {tokens['access_token']}")
    profile = await json_of(response)
    assert profile["username"] == "admin"
    assert profile["is_admin"] is True
    assert profile["scope"] == "email profile"
    assert isinstance(profile["id"], str)
    assert profile["id"]
    assert isinstance(profile["created_at"], int)
    assert "password_hash" not in profile
    assert "password" not in json.dumps(profile)
    assert response.headers["Cache-Control"] == "no-store"


async def test_bearer_scheme_is_case_insensitive(client):
    tokens = await _login_tokens(client)
    response = await me(client, f"bearer {tokens['access_token']}")
    assert response.status_code == 200


async def test_no_authorization_header_is_401_without_error_code(client):
    response = await me(client, None)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == BARE_CHALLENGE
    assert "error=" not in response.headers["WWW-Authenticate"]
    assert response.headers["Cache-Control"] == "no-store"
    body = await response.get_json()
    assert isinstance(body["error"], str)


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer garbage",
        "Bearer a.b.c",
        "Bearer ....",
        "Bearer eyJhbGciOiJSUzI1NiJ9.e30.AAAA",
        "Bearer " + "A" * 9000,
    ],
)
async def test_garbage_token_is_401_invalid_token(client, authorization):
    await _assert_invalid_token(await me(client, authorization))


@pytest.mark.parametrize(
    "authorization", ["Basic YWRtaW46YWRtaW4tcGFzcy0xMjM=", "Bearer", "Bearer   ", "Token abc"]
)
async def test_wrong_scheme_or_empty_token_is_401(client, authorization):
    await _assert_invalid_token(await me(client, authorization))


async def test_basic_scheme_with_a_real_token_is_refused(client):
    tokens = await _login_tokens(client)
    await _assert_invalid_token(await me(client, f"Basic {tokens['access_token']}"))


async def test_token_signed_by_another_key_is_401(app, client):
    admin_id = await _admin_id(client)
    other = RSAKey.generate_key(2048, private=True)
    kid = services_of(app).keys.kid
    forged_same_kid = _sign(other, _claims(admin_id), kid=kid)
    forged_own_kid = _sign(other, _claims(admin_id), kid=other.thumbprint())
    await _assert_invalid_token(await me(client, f"Bearer {forged_same_kid}"))
    await _assert_invalid_token(await me(client, f"Bearer {forged_own_kid}"))
    # Control: the same claims signed by the server's key are accepted.
    genuine = _sign(services_of(app).keys.active, _claims(admin_id), kid=kid)
    assert (await me(client, f"Bearer {genuine}")).status_code == 200


async def test_tampered_payload_is_401(client):
    tokens = await _login_tokens(client)
    header, payload, signature = tokens["access_token"].split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["scope"] = "admin"
    forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    await _assert_invalid_token(await me(client, f"Bearer {header}.{forged_payload}.{signature}"))


async def test_unsigned_token_is_401(app, client):
    admin_id = await _admin_id(client)

    def b64(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    unsigned = f"{b64({'alg': 'none', 'typ': 'at+jwt'})}.{b64(_claims(admin_id))}."
    await _assert_invalid_token(await me(client, f"Bearer {unsigned}"))


async def test_expired_token_is_401(app, client):
    s = services_of(app)
    admin_id = await _admin_id(client)
    an_hour_ago = AccessTokens(
        s.keys, issuer=ISSUER, audience=ISSUER, ttl=30, now=lambda: time.time() - 3600
    )
    expired = an_hour_ago.issue(subject=admin_id, client_id="authly", scope="email profile")
    await _assert_invalid_token(await me(client, f"Bearer {expired}"))
    # Control: the same construction with the real clock is accepted.
    fresh = AccessTokens(s.keys, issuer=ISSUER, audience=ISSUER, ttl=30)
    token = fresh.issue(subject=admin_id, client_id="authly", scope="email profile")
    assert (await me(client, f"Bearer {token}")).status_code == 200


async def test_expired_token_signed_directly_is_401(app, client):
    s = services_of(app)
    admin_id = await _admin_id(client)
    now = int(time.time())
    token = _sign(s.keys.active, _claims(admin_id, iat=now - 4000, exp=now - 3600), kid=s.keys.kid)
    await _assert_invalid_token(await me(client, f"Bearer {token}"))


@pytest.mark.parametrize(
    "changes",
    [
        {"iss": "http://evil.test"},
        {"aud": "http://other-service.test"},
        {"exp": None},
        {"sub": None},
        {"jti": None},
        {"iss": None},
    ],
    ids=["wrong-iss", "wrong-aud", "no-exp", "no-sub", "no-jti", "no-iss"],
)
async def test_token_with_wrong_or_missing_claims_is_401(app, client, changes):
    s = services_of(app)
    admin_id = await _admin_id(client)
    claims = _claims(admin_id)
    claims.update(changes)
    claims = {k: v for k, v in claims.items() if v is not None}
    token = _sign(s.keys.active, claims, kid=s.keys.kid)
    await _assert_invalid_token(await me(client, f"Bearer {token}"))


@pytest.mark.parametrize("typ", ["JWT", "id_token+jwt", None])
async def test_token_that_is_not_an_access_token_is_401(app, client, typ):
    s = services_of(app)
    admin_id = await _admin_id(client)
    header = {"alg": "RS256", "kid": s.keys.kid}
    if typ is not None:
        header["typ"] = typ
    token = jwt.encode(header, _claims(admin_id), s.keys.active, algorithms=["RS256"])
    await _assert_invalid_token(await me(client, f"Bearer {token}"))


async def test_token_for_unknown_user_is_401(app, client):
    s = services_of(app)
    token = _sign(s.keys.active, _claims("no-such-user-id"), kid=s.keys.kid)
    await _assert_invalid_token(await me(client, f"Bearer {token}"))


async def test_refresh_token_is_not_an_access_token(client):
    tokens = await _login_tokens(client)
    await _assert_invalid_token(await me(client, f"Bearer {tokens['refresh_token']}"))
