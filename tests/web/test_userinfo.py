"""`/oidc/userinfo` (OIDC Core §5.3): claims per scope, absent claims omitted, bearer
token in the header or a POST form (RFC 6750 §2.1, §2.2), RFC 6750 errors."""

from __future__ import annotations

import json

import pytest

from tests.conftest import services_of
from tests.web.helpers import FORM, error_body, json_of, set_active
from tests.web.oidc_users import RP, USERINFO, alice, bearer, rp_client, tokens

PROFILE = {
    "name": "Alice Liddell",
    "given_name": "Alice",
    "family_name": "Liddell",
    "nickname": "al",
    "picture": "https://images.example/alice.png",
    "website": "http://alice.example",
    "birthdate": "1852-05-04",
    "zoneinfo": "Europe/London",
    "locale": "en-GB",
    "email": "alice@example.com",
    "email_verified": True,
    "phone_number": "+44 1865 270000",
    "address": {"locality": "Oxford", "country": "UK"},
}


@pytest.fixture
async def alice_id(app):
    await rp_client(app)
    return await alice(app, **PROFILE)


async def _userinfo(client, scope: str) -> dict:
    access = (await tokens(client, scope))["access_token"]
    response = await client.get(USERINFO, headers=bearer(access))
    body = await json_of(response)
    assert response.headers["Cache-Control"] == "no-store"
    return body


async def test_openid_alone_is_just_sub(client, alice_id):
    assert await _userinfo(client, "openid") == {"sub": alice_id}


async def test_profile_scope(client, alice_id):
    body = await _userinfo(client, "openid profile")
    updated_at = body.pop("updated_at")
    assert isinstance(updated_at, int)
    assert body == {
        "sub": alice_id,
        "name": "Alice Liddell",
        "given_name": "Alice",
        "family_name": "Liddell",
        "nickname": "al",
        "preferred_username": "alice",  # the username when not set
        "picture": "https://images.example/alice.png",
        "website": "http://alice.example",
        "birthdate": "1852-05-04",
        "zoneinfo": "Europe/London",
        "locale": "en-GB",
    }
    # Unset profile claims are absent, never null.
    for absent in ("middle_name", "profile", "gender"):
        assert absent not in body


async def test_email_address_and_phone_scopes(client, alice_id):
    assert await _userinfo(client, "openid email") == {
        "sub": alice_id,
        "email": "alice@example.com",
        "email_verified": True,
    }
    assert await _userinfo(client, "openid address") == {
        "sub": alice_id,
        "address": {"country": "UK", "locality": "Oxford"},
    }
    assert await _userinfo(client, "openid phone") == {
        "sub": alice_id,
        "phone_number": "+44 1865 270000",
        "phone_number_verified": False,
    }


async def test_a_user_without_profile_fields_gets_only_what_exists(app, client):
    await rp_client(app)
    user_id = await alice(app)
    body = await _userinfo(client, "openid profile email address phone")
    assert set(body) == {"sub", "preferred_username", "updated_at"}
    assert body["sub"] == user_id


async def test_post_with_the_token_in_a_form_body(client, alice_id):
    access = (await tokens(client, "openid email"))["access_token"]
    response = await client.post(USERINFO, form={"access_token": access})
    assert (await json_of(response))["email"] == "alice@example.com"
    # POST with the header works as well.
    response = await client.post(USERINFO, headers=bearer(access))
    assert (await json_of(response))["sub"] == alice_id


async def test_the_token_in_both_header_and_body_is_invalid_request(client, alice_id):
    access = (await tokens(client, "openid"))["access_token"]
    response = await client.post(
        USERINFO, form={"access_token": access}, headers={**bearer(access), **FORM}
    )
    assert (await error_body(response, 400))["error"] == "invalid_request"
    assert 'error="invalid_request"' in response.headers["WWW-Authenticate"]


async def test_without_openid_is_insufficient_scope(client, alice_id):
    access = (await tokens(client, "profile email"))["access_token"]
    response = await client.get(USERINFO, headers=bearer(access))
    assert (await error_body(response, 403))["error"] == "insufficient_scope"
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer ")
    assert 'error="insufficient_scope"' in challenge
    assert 'scope="openid"' in challenge


async def test_missing_and_bad_tokens_are_401(client, alice_id):
    response = await client.get(USERINFO)
    await error_body(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert "error=" not in response.headers["WWW-Authenticate"]
    response = await client.get(USERINFO, headers=bearer("not-a-token"))
    assert (await error_body(response, 401))["error"] == "invalid_token"
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    response = await client.post(USERINFO, form={"access_token": "garbage"})
    assert (await error_body(response, 401))["error"] == "invalid_token"


async def test_a_disabled_users_token_is_invalid_token(app, client, alice_id):
    access = (await tokens(client, "openid profile"))["access_token"]
    assert (await json_of(await client.get(USERINFO, headers=bearer(access))))["sub"]
    await services_of(app).accounts.set_active(alice_id, False, actor_id="someone-else")
    response = await client.get(USERINFO, headers=bearer(access))
    assert (await error_body(response, 401))["error"] == "invalid_token"
    await set_active(app, alice_id, True)
    await services_of(app).profiles.invalidate(alice_id)
    assert (await json_of(await client.get(USERINFO, headers=bearer(access))))["sub"]


async def test_profile_changes_show_at_once(app, client, alice_id):
    access = (await tokens(client, "openid profile"))["access_token"]
    assert (await _get(client, access))["name"] == "Alice Liddell"  # now cached
    await services_of(app).accounts.update(alice_id, {"name": "Alice L.", "locale": None})
    body = await _get(client, access)
    assert body["name"] == "Alice L."
    assert "locale" not in body


async def test_claims_requested_individually_travel_in_the_access_token(app, client, alice_id):
    """The authorization_code grant puts the claims parameter's userinfo names into the
    access token (private claim ``authly_userinfo_claims``); userinfo then releases those
    standard claims even without their scope (unknown names dropped), whatever the
    session record says afterwards: it is not read."""
    s = services_of(app)
    issued, sid, _ = await s.tokens.issue(
        user_id=alice_id,
        client_id=RP,
        scope="openid",
        with_refresh=False,
        userinfo_claims="email picture acr",
    )
    access = issued["access_token"]
    assert (await s.tokens.session(sid))["claims_userinfo"] == "email picture acr"
    expected = {
        "sub": alice_id,
        "email": "alice@example.com",
        "picture": "https://images.example/alice.png",
    }
    assert await _get(client, access) == expected
    record = await s.tokens.session(sid)
    await s.sessions.set(sid, {**record, "claims_userinfo": "phone_number"}, 600)
    assert await _get(client, access) == expected
    # A token without the private claim gets its scopes' claims only.
    plain = (await tokens(client, "openid"))["access_token"]
    assert await _get(client, plain) == {"sub": alice_id}


async def test_answers_are_compact_json_per_scope_of_each_token(client, alice_id):
    """The same profile under two tokens of different scopes: each gets its own claims,
    byte for byte what the encoder writes (compact, ASCII, a final newline), every time."""
    narrow = (await tokens(client, "openid email"))["access_token"]
    wide = (await tokens(client, "openid email phone"))["access_token"]
    expected = {"sub": alice_id, "email": "alice@example.com", "email_verified": True}
    for _ in range(2):
        response = await client.get(USERINFO, headers=bearer(narrow))
        assert response.headers["Content-Type"] == "application/json"
        assert response.headers["Pragma"] == "no-cache"
        assert (
            await response.get_data()
            == json.dumps(expected, separators=(",", ":")).encode() + b"\n"
        )
        body = await json_of(await client.get(USERINFO, headers=bearer(wide)))
        phone = {"phone_number": "+44 1865 270000", "phone_number_verified": False}
        assert body == {**expected, **phone}


async def _get(client, access: str) -> dict:
    return await json_of(await client.get(USERINFO, headers=bearer(access)))
