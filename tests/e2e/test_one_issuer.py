"""One issuer per deployment: the user guide's "several instances" scenario word for word
(``python -m authly serve --port A``, then ``--port B``, one store, one Redis, no
AUTHLY_ISSUER) gives instances that accept each other's tokens."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import httpx
import pytest

from tests.e2e.server import authly_env, login, me, refresh
from tests.redis_server import requires_redis
from tests.support.processes import RedisProcess
from tests.support.store import register_client

SECRET = "introspector-secret-0123456789"
BASIC = {"Authorization": "Basic " + base64.b64encode(f"rs:{SECRET}".encode()).decode()}


def _iss(token: str) -> str:
    payload = token.split(".")[1]
    return str(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["iss"])


def _introspect(http: httpx.Client, base: str, token: str) -> dict[str, object]:
    response = http.post(base + "/api/v1/oauth/introspect", data={"token": token}, headers=BASIC)
    assert response.status_code == 200, response.text
    return dict(response.json())


@requires_redis
@pytest.mark.trio
async def test_the_guides_two_instances_without_an_issuer_share_one(
    spawn, http: httpx.Client, tmp_path: Path
) -> None:
    redis = RedisProcess(tmp_path / "redis.log")
    await redis.start()
    try:
        env = authly_env(
            tmp_path / "authly.db",
            AUTHLY_REDIS_URL=redis.url,
            AUTHLY_REDIS_RATE_LIMIT="true",
            AUTHLY_REDIS_CACHE="true",
        )
        first = spawn(name="first", env=env)
        first.wait_healthy()
        register_client(
            tmp_path / "authly.db",
            "rs",
            secret=SECRET,
            auth_method="client_secret_basic",
            grant_types=("client_credentials",),
        )
        second = spawn(name="second", env=env)
        second.wait_healthy()

        # The second instance uses the first's issuer, and says so once, naming the fix.
        warnings = [ln for ln in second.log_lines() if "AUTHLY_ISSUER is unset" in ln]
        assert len(warnings) == 1, second.output()
        assert "WARNING" in warnings[0]
        assert first.base_url in warnings[0]
        assert "set AUTHLY_ISSUER" in warnings[0]
        assert not [ln for ln in first.log_lines() if "WARNING" in ln and "ISSUER" in ln]

        for server in (first, second):
            document = http.get(server.url("/.well-known/openid-configuration")).json()
            assert document["issuer"] == first.base_url

        # A token from the first instance is accepted by the second, and back.
        tokens = login(http, first.base_url).json()
        assert _iss(tokens["access_token"]) == first.base_url
        assert me(http, second.base_url, tokens["access_token"]).status_code == 200
        rotated = refresh(http, second.base_url, tokens["refresh_token"])
        assert rotated.status_code == 200, rotated.text
        newer = rotated.json()
        assert me(http, first.base_url, newer["access_token"]).status_code == 200

        # Introspection and revocation work across the two.
        for server in (first, second):
            assert _introspect(http, server.base_url, newer["access_token"])["active"] is True
        revoked = http.post(
            second.url("/api/v1/oauth/revoke"),
            data={"token": newer["refresh_token"], "client_id": "authly"},
        )
        assert revoked.status_code == 200, revoked.text
        again = refresh(http, first.base_url, newer["refresh_token"])
        assert again.status_code == 400
        assert again.json()["error"] == "invalid_grant"
        assert _introspect(http, first.base_url, newer["refresh_token"])["active"] is False
        assert first.log_problems() == [], first.output()
        assert second.log_problems() == [], second.output()
    finally:
        await redis.kill()


def test_a_configured_issuer_always_wins(spawn, http: httpx.Client, tmp_path: Path) -> None:
    shared = tmp_path / "authly.db"
    first = spawn(name="first", env=authly_env(shared))
    first.wait_healthy()
    own = "http://auth.configured.test"
    configured = spawn(name="configured", env=authly_env(shared, AUTHLY_ISSUER=own))
    configured.wait_healthy()
    document = http.get(configured.url("/.well-known/openid-configuration")).json()
    assert document["issuer"] == own
    assert not [ln for ln in configured.log_lines() if "AUTHLY_ISSUER is unset" in ln]
