"""Signing keys through HTTP: the admin API, rotation with live tokens, several instances,
and the JWKS document's caching."""

from __future__ import annotations

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.conftest import login, services_of
from tests.supervisor_helpers import steady_redis_settings
from tests.web.admin_client import ADMIN, AdminClient, session_handle
from tests.web.helpers import ME, error_body, json_of, running_app

KEYS = f"{ADMIN}/keys"
ROTATE = f"{ADMIN}/keys/rotate"
JWKS = "/.well-known/jwks.json"
KEY_FIELDS = {"kid", "alg", "status", "created_at", "retired_at", "published_until"}


@pytest.fixture
async def admin(client) -> AdminClient:
    return AdminClient(client, await session_handle(client))


async def _jwks(client) -> dict:
    response = await client.get(JWKS)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "public, max-age=300"
    return await response.get_json()


def _kids(document: dict, alg: str | None = None) -> set[str]:
    return {k["kid"] for k in document["keys"] if alg is None or k["alg"] == alg}


async def _access_token(client) -> str:
    return str((await json_of(await login(client)))["access_token"])


async def _me(client, token: str) -> int:
    response = await client.get(ME, headers={"Authorization": f"Bearer {token}"})
    return int(response.status_code)


async def test_list_shows_one_current_key_per_algorithm_and_no_private_part(admin):
    response = await admin.get(KEYS)
    assert response.headers["Cache-Control"] == "no-store"
    keys = (await json_of(response))["keys"]
    assert sorted(k["alg"] for k in keys) == ["ES256", "EdDSA", "RS256"]
    for key in keys:
        assert set(key) == KEY_FIELDS
        assert key["status"] == "current"
        assert key["retired_at"] is None
        assert key["published_until"] is None
    assert "PRIVATE" not in await response.get_data(as_text=True)


async def test_rotate_defaults_to_rs256_and_old_tokens_keep_working(app, client, admin):
    old_token = await _access_token(client)
    old_kid = services_of(app).keys.kid
    assert jwt.decode(old_token, KeySet.import_key_set(await _jwks(client))).header["kid"] == (
        old_kid
    )

    rotated = await json_of(await admin.post(ROTATE), 201)  # no body: RS256
    assert set(rotated) == KEY_FIELDS
    assert (rotated["alg"], rotated["status"]) == ("RS256", "current")
    assert rotated["kid"] != old_kid

    # The token signed before the rotation still works; new tokens use the new key.
    assert await _me(client, old_token) == 200
    new_token = await _access_token(client)
    assert jwt.decode(new_token, services_of(app).keys.keyset).header["kid"] == rotated["kid"]
    document = await _jwks(client)  # the rotation dropped the cached document
    assert _kids(document, "RS256") == {old_kid, rotated["kid"]}
    published = KeySet.import_key_set(document)
    for token in (old_token, new_token):
        jwt.decode(token, published, algorithms=["RS256"])

    listed = {k["kid"]: k for k in (await json_of(await admin.get(KEYS)))["keys"]}
    old = listed[old_kid]
    assert old["status"] == "retired"
    assert old["retired_at"] >= old["created_at"]
    # Retention: the refresh interval + the longest token lifetime + a leeway.
    ttl = services_of(app).settings.access_token_ttl
    assert old["published_until"] == pytest.approx(old["retired_at"] + 300 + ttl + 60, abs=1)


@pytest.mark.parametrize("alg", ["ES256", "EdDSA"])
async def test_rotate_another_algorithm(app, client, admin, alg):
    before = _kids(await _jwks(client), alg)
    rotated = await json_of(await admin.post(ROTATE, json={"alg": alg}), 201)
    assert rotated["alg"] == alg
    assert services_of(app).keys.current(alg).kid == rotated["kid"]
    assert _kids(await _jwks(client), alg) == before | {rotated["kid"]}
    assert _kids(await _jwks(client), "RS256") == {services_of(app).keys.kid}


@pytest.mark.parametrize("body", [{"alg": "HS256"}, {"alg": "none"}, {"alg": 256}, []])
async def test_rotate_refuses_a_bad_algorithm(admin, body):
    before = (await json_of(await admin.get(KEYS)))["keys"]
    await error_body(await admin.post(ROTATE, json=body), 400)
    assert (await json_of(await admin.get(KEYS)))["keys"] == before


async def test_keys_routes_keep_the_admin_guard(client):
    anonymous = AdminClient(client, None)
    for response in (await anonymous.get(KEYS), await anonymous.post(ROTATE)):
        await error_body(response, 401)
    outsider = AdminClient(client, await session_handle(client), address="203.0.113.7")
    for response in (await outsider.get(KEYS), await outsider.post(ROTATE)):
        await error_body(response, 403)


async def test_a_second_instance_on_the_same_store_sees_a_rotation(settings_factory):
    settings = settings_factory()
    async with running_app(settings) as first, running_app(settings) as second:
        one, two = first.test_client(), second.test_client()
        assert _kids(await _jwks(one)) == _kids(await _jwks(two))
        old_kid = services_of(second).keys.kid
        old_token = await _access_token(two)

        admin = AdminClient(one, await session_handle(one))
        rotated = await json_of(await admin.post(ROTATE, json={"alg": "RS256"}), 201)
        new_token = await _access_token(one)

        # The second instance verifies the new key's token at once (an unknown kid
        # reloads the keys from the store), and the old key's token too.
        assert await _me(two, new_token) == 200
        assert await _me(two, old_token) == 200
        assert await _me(one, old_token) == 200
        # It signs with the new key from then on.
        assert services_of(second).keys.kid == rotated["kid"]
        # Its admin list shows the rotation.
        listed = await json_of(await AdminClient(two, await session_handle(two)).get(KEYS))
        assert {k["kid"]: k["status"] for k in listed["keys"]}[old_kid] == "retired"

        # Its JWKS (an in-memory cache per instance here) has the new key once its cache
        # entry is rebuilt, as it is after at most the TTL.
        await services_of(second).jwks.invalidate()
        assert _kids(await _jwks(two), "RS256") == {old_kid, rotated["kid"]}


@pytest.mark.redis
async def test_with_the_cache_on_redis_a_rotation_reaches_every_jwks_at_once(
    tmp_path, redis_server
):
    settings = steady_redis_settings(tmp_path, redis_server.url)
    async with running_app(settings) as first, running_app(settings) as second:
        for app in (first, second):
            assert services_of(app).cache.backend_name == "redis"
        one, two = first.test_client(), second.test_client()
        before = await _jwks(two)  # cached in Redis, shared
        assert await _jwks(one) == before
        admin = AdminClient(one, await session_handle(one))
        rotated = await json_of(await admin.post(ROTATE, json={"alg": "EdDSA"}), 201)
        after = await _jwks(two)
        assert rotated["kid"] in _kids(after, "EdDSA")
        assert _kids(before) < _kids(after)
