"""Each Redis-backed feature, end to end through the HTTP API, checked in Redis itself."""

from __future__ import annotations

import json
import logging
import re

import pytest

from authly.factory import create_app
from authly.redis.actor import RedisActor
from authly.redis.url import parse_redis_url
from tests.conftest import login, services_of
from tests.supervisor_helpers import steady_redis_settings

pytestmark = pytest.mark.redis


async def raw_client(nursery, server) -> RedisActor:
    actor = RedisActor(parse_redis_url(server.url), op_timeout=30.0)
    await nursery.start(actor.run)
    return actor


async def test_cache_session_and_rate_limit_live_in_redis(tmp_path, redis_server, nursery):
    redis = await raw_client(nursery, redis_server)
    app = create_app(steady_redis_settings(tmp_path, redis_server.url))
    async with app.test_app() as test_app:
        client = test_app.test_client()
        tokens = await (await login(client)).get_json()
        bearer = {"Authorization": f"Bearer {tokens['access_token']}"}

        # Cache: the JWKS document and the profile are cache-aside entries in Redis.
        jwks = await (await client.get("/.well-known/jwks.json")).get_json()
        cached = await redis.execute("GET", "authly:cache:jwks")
        assert json.loads(cached) == jwks
        me = await (await client.get("/api/v1/users/me", headers=bearer)).get_json()
        profile = json.loads(await redis.execute("GET", f"authly:cache:user:{me['id']}"))
        assert profile["profile"]["username"] == "admin"
        assert 0 < await redis.execute("PTTL", f"authly:cache:user:{me['id']}") <= 60_000
        await client.get("/api/v1/users/me", headers=bearer)
        metrics = (await (await client.get("/metrics")).get_data()).decode()
        hits = re.search(r"^authly_redis_cache_hits_total (\S+)$", metrics, re.M)
        assert hits is not None
        assert float(hits.group(1)) >= 1  # the profile (and the revocation-list entry)

        # Session: the login session is a Redis hash keyed by the token's sid.
        session = await (await client.get("/api/v1/auth/session", headers=bearer)).get_json()
        stored = await redis.execute("HGETALL", f"authly:sess:{session['session_id']}")
        assert stored["user_id"] == me["id"]
        await client.post("/api/v1/auth/logout", json={"refresh_token": tokens["refresh_token"]})
        assert await redis.execute("EXISTS", f"authly:sess:{session['session_id']}") == 0

        # Rate limit: failed logins are hits in a Redis sorted set, per user and per IP.
        for _ in range(2):
            await login(client, password="wrong-password")
        assert await redis.execute("ZCARD", "authly:rl:login:user:admin") == 2
        metrics = (await (await client.get("/metrics")).get_data()).decode()
        assert 'authly_redis_operations_total{operation="evalsha"}' in metrics
        assert "authly_redis_connections_active" in metrics
        assert services_of(test_app).supervisor.instances_seen == 1


async def test_redis_password_is_never_shown(tmp_path, nursery, caplog):
    from tests.redis_server import RedisServer

    caplog.set_level(logging.DEBUG)
    server = RedisServer(nursery, password="s3cret-pass")
    await server.start()
    app = create_app(steady_redis_settings(tmp_path, server.url))
    async with app.test_app() as test_app:
        client = test_app.test_client()
        health = await (await client.get("/health")).get_json()
        assert health["redis"]["available"] is True
        assert health["redis"]["url"] == f"redis://:***@127.0.0.1:{server.port}/0"
        metrics = (await (await client.get("/metrics")).get_data()).decode()
    assert "connecting to Redis at redis://:***@" in caplog.text
    assert "s3cret-pass" not in caplog.text
    assert "s3cret-pass" not in json.dumps(health)
    assert "s3cret-pass" not in metrics
    await server.stop()


async def test_missing_redis_dependency_runs_on_memory(tmp_path):
    """Without redis-py installed (import blocked here), a configured Redis is reported
    and ignored: the server serves on memory (sessions on the store)."""
    import sys
    import textwrap

    import trio

    script = textwrap.dedent(
        f"""
        import sys, logging, trio
        sys.modules["redis"] = None  # as if the [redis] extra were not installed
        sys.modules["trio_asyncio"] = None
        logging.basicConfig(level=logging.INFO, format="%(message)s")
        from authly.factory import create_app
        from tests.conftest import make_settings
        from tests.test_supervisor import redis_settings
        from pathlib import Path

        async def main():
            app = create_app(redis_settings(Path({str(tmp_path)!r}), "redis://127.0.0.1:1/0"))
            async with app.test_app() as test_app:
                health = await (await test_app.test_client().get("/health")).get_json()
                print("BACKENDS", sorted(set(health["redis"]["backends"].values())))
                print("LAST_ERROR", health["redis"]["last_error"]["error"])

        trio.run(main)
        """
    )
    result = await trio.run_process(
        [sys.executable, "-c", script], capture_stdout=True, capture_stderr=True, check=False
    )
    err = result.stderr.decode()
    assert result.returncode == 0, err
    assert "Redis dependency not available" in err
    assert "Redis connection failed, falling back to memory: Redis dependency not available" in err
    assert "BACKENDS ['database', 'memory']" in result.stdout.decode()  # sessions: the store
    assert "LAST_ERROR Redis dependency not available" in result.stdout.decode()
