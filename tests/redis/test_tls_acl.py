"""TLS and the least-privilege ACL user, tested on a real redis-server (issue 11, item 3).

The server serves TLS only with a certificate the test generates, asks for client
certificates, and knows the user ``authly`` with exactly the ACL line docs/redis.md gives
(tests/redis_tls.py). Through that user, over ``rediss://`` with ``ssl_ca_certs`` and a
client certificate, on database 1 (SELECT): the whole backend contract suite, then a
server's life (start-up, an outage and the switch back with state carried over, an
operator pin that hands the sessions back to the store) — and Redis's ``ACL LOG`` stays
empty: Authly never ran a command, or touched a key, the line does not allow.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import trio

import tests.backends.test_contract as contract
from authly.backends.redis import RedisCache, RedisRateLimiter, RedisSessionStore
from authly.factory import create_app
from authly.redis.actor import RedisActor
from authly.redis.url import parse_redis_url
from tests.conftest import services_of
from tests.redis_server import RedisServer, requires_redis
from tests.redis_tls import ACL_LINE, tls_acl_server, tls_url
from tests.supervisor_helpers import redis_settings, wait_all
from tests.web.admin_client import AdminClient, session_handle
from tests.web.helpers import json_of

pytestmark = [pytest.mark.redis, requires_redis]

DOCS = Path(__file__).resolve().parents[2] / "docs" / "redis.md"

# The contract suite (tests/backends/test_contract.py), unchanged, over TLS + ACL: its
# test functions collected here use this module's fixtures below.
for _name in dir(contract):
    if _name.startswith("test_"):
        globals()[_name] = getattr(contract, _name)


async def _acl_actor(nursery: trio.Nursery, tmp_path: Path) -> RedisActor:
    server, pki = tls_acl_server(nursery, tmp_path / "pki")
    await server.start()
    url = tls_url(server, ca=pki.ca_cert, client=pki, db=1)
    actor = RedisActor(parse_redis_url(url), op_timeout=30.0)
    await nursery.start(actor.run)
    return actor


@pytest.fixture
async def limiter(nursery, tmp_path) -> RedisRateLimiter:
    return RedisRateLimiter(await _acl_actor(nursery, tmp_path))


@pytest.fixture
async def cache(nursery, tmp_path) -> RedisCache:
    return RedisCache(await _acl_actor(nursery, tmp_path))


@pytest.fixture
async def sessions(nursery, tmp_path) -> RedisSessionStore:
    return RedisSessionStore(await _acl_actor(nursery, tmp_path))


def test_the_acl_line_is_the_one_documented():
    assert ACL_LINE in DOCS.read_text()


async def _default_user(nursery: trio.Nursery, server: RedisServer, pki) -> RedisActor:
    """The tests' own client (the open ``default`` user) for ACL LOG and key checks."""
    url = tls_url(server, ca=pki.ca_cert, client=pki, user=None, password=None, db=1)
    actor = RedisActor(parse_redis_url(url), op_timeout=30.0)
    await nursery.start(actor.run)
    return actor


async def test_a_server_lives_through_the_acl_user_over_tls(tmp_path, nursery, caplog):
    caplog.set_level(logging.INFO)
    server, pki = tls_acl_server(nursery, tmp_path / "pki")
    await server.start()
    url = tls_url(server, ca=pki.ca_cert, client=pki, db=1)
    settings = redis_settings(tmp_path, url, op_timeout_ms=5_000, connect_timeout=5)
    app = create_app(settings)
    async with app.test_app() as test_app:
        services = services_of(test_app)
        await wait_all(services, "redis")  # start-up: PING, heartbeat script
        limiter, cache, sessions = services.rate_limit, services.cache, services.sessions
        assert (await limiter.check_rate_limit("acl", 3, 60)).allowed
        await cache.set("doc", "v", 60)
        assert await cache.get("doc") == "v"
        assert await cache.exists("doc")
        await cache.delete("doc")
        await sessions.set("s1", {"user_id": "u1"}, 300)
        assert await sessions.touch("s1", 300)
        assert await sessions.get("s1") == {"user_id": "u1"}

        # An outage and the switch back carry state into Redis (session copy, window merge).
        await server.kill()
        await wait_all(services, "memory")
        await sessions.set("during-outage", {"user_id": "u2"}, 300)
        assert (await limiter.check_rate_limit("acl", 3, 60)).allowed
        await server.start()  # empty: SCRIPT LOAD after NOSCRIPT, through the ACL user
        await wait_all(services, "redis")
        assert await sessions.get("during-outage") == {"user_id": "u2"}

        # The operator pins sessions to the store: the sessions Redis holds are handed
        # over (SCAN, HGETALL, PTTL); then released again.
        client = test_app.test_client()
        admin = AdminClient(client, await session_handle(client))
        backends = "/api/v1/admin/backends"
        answer = await json_of(await admin.call("PUT", backends, json={"session": "memory"}))
        assert answer["features"]["session"]["backend"] == "database"
        assert await sessions.get("during-outage") == {"user_id": "u2"}
        answer = await json_of(await admin.call("PUT", backends, json={"session": "redis"}))
        assert answer["features"]["session"]["backend"] == "redis"
        health = await json_of(await client.get("/health"))

        mine = await _default_user(nursery, server, pki)
        assert await mine.execute("EXISTS", "authly:sess:during-outage") == 1
        assert await mine.execute("ACL", "LOG") == []  # nothing was ever denied
    assert health["redis"]["available"] is True
    assert "pw-acl" not in caplog.text
