"""The supervisor against real redis-server processes: swap out, swap back, carry state."""

from __future__ import annotations

import logging

import pytest
import trio

from authly.factory import create_app
from authly.redis.actor import RedisActor
from authly.redis.url import parse_redis_url
from tests.conftest import login, services_of
from tests.redis_server import RedisServer
from tests.supervisor_helpers import FALLBACKS, HANG, redis_settings, wait_all

pytestmark = pytest.mark.redis

__all__ = ["redis_settings"]  # imported from here by tests/test_redis_features.py


async def test_startup_with_redis_logs_and_uses_redis(tmp_path, redis_server, caplog):
    caplog.set_level(logging.INFO)
    app = create_app(redis_settings(tmp_path, redis_server.url))
    async with app.test_app() as test_app:
        services = services_of(test_app)
        assert [s.backend_name for s in services.slots()] == ["redis"] * 3
        health = await (await test_app.test_client().get("/health")).get_json()
        assert health["status"] == "healthy"
        assert health["redis"]["available"] is True
        assert health["redis"]["backends"] == {
            "rate_limit": "redis",
            "cache": "redis",
            "session": "redis",
        }
    text = caplog.text
    for line in (
        "Redis connection initialized successfully",
        "Redis integration enabled",
        "Using Redis rate limiting backend",
        "Using Redis caching backend",
        "Using Redis session backend",
    ):
        assert line in text


async def test_kill_swaps_to_memory_and_restart_swaps_back(tmp_path, redis_server):
    app = create_app(redis_settings(tmp_path, redis_server.url))
    async with app.test_app() as test_app:
        client = test_app.test_client()
        services = services_of(test_app)
        await redis_server.kill()
        await wait_all(services, "memory")
        health = await (await client.get("/health")).get_json()
        assert health["status"] == "degraded"
        assert health["redis"]["available"] is False
        assert health["redis"]["last_switch"]["to"] == "database"  # sessions: the last switch
        assert (await login(client)).status_code == 200  # still serving
        await redis_server.start()
        await wait_all(services, "redis")
        health = await (await client.get("/health")).get_json()
        assert health["status"] == "healthy"
        assert health["redis"]["last_switch"]["to"] == "redis"
        metrics = (await (await client.get("/metrics")).get_data()).decode()
        assert 'authly_backend_switches_total{feature="session",to="database"} 1.0' in metrics
        assert 'authly_backend_switches_total{feature="session",to="redis"} 2.0' in metrics
        assert "authly_redis_up 1.0" in metrics


async def test_pause_swaps_to_memory_and_resume_swaps_back(tmp_path, redis_server):
    app = create_app(redis_settings(tmp_path, redis_server.url))
    async with app.test_app() as test_app:
        services = services_of(test_app)
        redis_server.pause()
        await wait_all(services, "memory")
        redis_server.resume()
        await wait_all(services, "redis")


async def test_boot_with_redis_down_then_redis_starts(tmp_path, nursery, caplog):
    caplog.set_level(logging.INFO)
    server = RedisServer(nursery)  # port chosen, not started yet
    app = create_app(redis_settings(tmp_path, server.url))
    async with app.test_app() as test_app:
        services = services_of(test_app)
        assert [s.backend_name for s in services.slots()] == FALLBACKS
        assert "Redis connection failed, falling back to memory" in caplog.text
        assert "using memory backends" in caplog.text
        assert (await login(test_app.test_client())).status_code == 200
        await server.start()
        await wait_all(services, "redis")
        await server.stop()


async def test_session_written_during_outage_is_in_redis_after_switch_back(
    tmp_path, redis_server, nursery
):
    app = create_app(redis_settings(tmp_path, redis_server.url))
    async with app.test_app() as test_app:
        services = services_of(test_app)
        await redis_server.kill()
        await wait_all(services, "memory")
        await services.sessions.set("outage-session", {"user_id": "u1"}, 300)
        await redis_server.start()
        await wait_all(services, "redis")
        assert await services.sessions.get("outage-session") == {"user_id": "u1"}
        # Another instance (a separate client) sees it in Redis, with its TTL.
        other = RedisActor(parse_redis_url(redis_server.url), op_timeout=30.0)
        await nursery.start(other.run)
        assert await other.execute("HGET", "authly:sess:outage-session", "user_id") == "u1"
        assert 0 < await other.execute("PTTL", "authly:sess:outage-session") <= 300_000


async def test_rate_limit_windows_survive_a_flap(tmp_path, redis_server):
    settings = redis_settings(tmp_path, redis_server.url)
    app = create_app(settings)
    async with app.test_app() as test_app:
        services = services_of(test_app)
        limiter = services.rate_limit
        for _ in range(3):  # recorded in Redis (and shadowed locally)
            assert (await limiter.check_rate_limit("flap", 5, 60)).allowed
        await redis_server.restart()  # Redis comes back EMPTY, maybe between two probes
        with trio.fail_after(HANG):
            while await other_hits(redis_server) < 3:  # merged back, swap or no swap
                await trio.sleep(0.02)
        await wait_all(services, "redis")
        # The merge carried the 3 hits back: exactly 2 more are allowed.
        results = [(await limiter.check_rate_limit("flap", 5, 60)).allowed for _ in range(4)]
        assert results == [True, True, False, False]


async def other_hits(server: RedisServer) -> int:
    """ZCARD of the 'flap' window, read over a raw connection (no Authly code)."""
    try:
        stream = await trio.open_tcp_stream("127.0.0.1", server.port)
    except OSError:
        return -1
    async with stream:
        await stream.send_all(b"ZCARD authly:rl:flap\r\n")
        reply = await stream.receive_some(64)
    return int(reply[1:].strip()) if reply.startswith(b":") else -1


async def test_limit_never_fails_open_while_down(tmp_path, redis_server):
    app = create_app(redis_settings(tmp_path, redis_server.url))
    async with app.test_app() as test_app:
        services = services_of(test_app)
        limiter = services.rate_limit
        await redis_server.kill()
        await wait_all(services, "memory")
        allowed = [(await limiter.check_rate_limit("down", 5, 60)).allowed for _ in range(10)]
        assert allowed.count(True) == 5


async def test_request_path_failure_is_answered_from_memory(tmp_path, redis_server):
    # A long health interval: only the request-path breaker can trigger the swap.
    settings = redis_settings(tmp_path, redis_server.url, health_interval_ms=60_000)
    app = create_app(settings)
    async with app.test_app() as test_app:
        services = services_of(test_app)
        await redis_server.kill()
        await services.sessions.set("s", {"a": "1"}, 60)  # answered by memory, no error
        await wait_all(services, "memory")
        assert await services.sessions.get("s") == {"a": "1"}
