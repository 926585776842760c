"""Redis Sentinel (issue 11, item 2) against real processes: a master, a replica and three
``redis-server --sentinel`` (tests/support/sentinel.py). Authly starts on the master the
sentinels name, keeps answering through a forced failover (SENTINEL FAILOVER) and through
the master's death (SIGKILL), and ends up writing to the new master, with the sessions
and rate-limit hits written (and replicated) before the failover still there.

What is not asserted, because asynchronous replication cannot promise it: writes the old
master acknowledged but had not yet sent to the replica, and writes it took between the
promotion and its own demotion (docs/redis.md, "Sentinel").
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio

from authly.factory import create_app
from tests.conftest import services_of
from tests.supervisor_helpers import Traffic, redis_settings, wait_all
from tests.support.processes import REDIS_SERVER
from tests.support.sentinel import SentinelGroup

pytestmark = pytest.mark.redis

PASSWORD = "s3nt1nel-data-pw"  # the data nodes' (the URL's) password
HANG = 60.0  # hang detector for each phase, not a timing assertion
SESSIONS = [f"before-{i}" for i in range(5)]
LIMIT_KEY = "sentinel-limit"


@pytest.fixture
async def group(tmp_path) -> AsyncIterator[SentinelGroup]:
    if REDIS_SERVER is None:
        pytest.skip("redis-server not installed")
    workdir = tmp_path / "sentinel"
    workdir.mkdir()
    group = SentinelGroup(workdir, password=PASSWORD)
    try:
        await group.start()
        yield group
    finally:
        group.close()


async def _replicated(group: SentinelGroup, replica: int) -> bool:
    for sid in SESSIONS:
        if await group.node_command(replica, "EXISTS", f"authly:sess:{sid}") != 1:
            return False
    return await group.node_command(replica, "ZCARD", f"authly:rl:{LIMIT_KEY}") == 3


async def _run_failover(tmp_path, group: SentinelGroup, *, kill: bool) -> None:
    old = await group.master_port()
    replica = next(n.port for n in group.nodes if n.port != old)
    app = create_app(redis_settings(tmp_path, group.url))
    async with app.test_app() as test_app:
        services = services_of(test_app)
        assert [s.backend_name for s in services.slots()] == ["redis"] * 3
        health = await (await test_app.test_client().get("/health")).get_json()
        assert health["redis"]["available"] is True
        assert PASSWORD not in health["redis"]["url"]
        assert health["redis"]["url"].startswith("redis+sentinel://:***@127.0.0.1:")
        # Written on the old master, then replicated.
        for i, sid in enumerate(SESSIONS):
            await services.sessions.set(sid, {"user_id": f"u{i}"}, 300)
        limiter = services.rate_limit
        for _ in range(3):
            assert (await limiter.check_rate_limit(LIMIT_KEY, 5, 60)).allowed
        assert await group.node_command(old, "EXISTS", "authly:sess:before-0") == 1
        with trio.fail_after(HANG):
            while not await _replicated(group, replica):
                await trio.sleep(0.05)

        traffic = Traffic(test_app, services)
        stop = trio.Event()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(traffic.run, stop)
            new = await (group.kill_master() if kill else group.failover())
            assert new == replica
            # Authly ends up on Redis again, writing to the NEW master.
            with trio.fail_after(HANG):
                n = 0
                while True:
                    await wait_all(services, "redis", timeout=HANG)
                    n += 1
                    await services.sessions.set(f"after-{n}", {"user_id": "a"}, 300)
                    if await group.node_command(new, "EXISTS", f"authly:sess:after-{n}") == 1:
                        break
                    await trio.sleep(0.05)
            answered_during = traffic.answered
            stop.set()
        assert answered_during > 0
        assert traffic.statuses == {200}
        assert await group.role(new) == "master"

        # What was replicated before the failover survived it.
        for i, sid in enumerate(SESSIONS):
            assert await services.sessions.get(sid) == {"user_id": f"u{i}"}
        results = [(await limiter.check_rate_limit(LIMIT_KEY, 5, 60)).allowed for _ in range(4)]
        assert results == [True, True, False, False]
        assert await group.node_command(new, "ZCARD", f"authly:rl:{LIMIT_KEY}") == 5

        health = await (await test_app.test_client().get("/health")).get_json()
        assert health["status"] == "healthy"
        assert health["redis"]["available"] is True
        assert PASSWORD not in str(health)


async def test_forced_failover_is_followed_to_the_new_master(tmp_path, group):
    await _run_failover(tmp_path, group, kill=False)


async def test_killed_master_is_replaced_and_followed(tmp_path, group):
    await _run_failover(tmp_path, group, kill=True)


async def test_no_sentinel_knows_the_service_falls_back_with_the_reason(tmp_path, group):
    url = group.url.replace("/authly-test/", "/no-such-service/")
    app = create_app(redis_settings(tmp_path, url))
    async with app.test_app() as test_app:
        services = services_of(test_app)
        await wait_all(services, "memory")
        health = await (await test_app.test_client().get("/health")).get_json()
        assert health["redis"]["available"] is False
        assert "No master found for 'no-such-service'" in health["redis"]["last_error"]["error"]
        assert PASSWORD not in str(health)
