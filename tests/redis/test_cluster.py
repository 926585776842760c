"""Redis Cluster (issue 11, item 1) against real processes: three masters with a replica
each (tests/support/cluster.py). Authly starts on the comma-separated URL, spreads
rate-limit windows and cache entries over the masters, keeps every script's keys in one
slot, and keeps answering while a master dies: the features fall back (the probe PINGs
every master), the cluster promotes the replica, and the features come back on Redis
with what was written during the outage carried over. A planned failover (CLUSTER
FAILOVER on a replica) is followed through MOVED replies.

The contract suite runs over the cluster too (tests/backends/test_contract.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio

from authly.factory import create_app
from tests.conftest import services_of
from tests.redis_server import emptied
from tests.redis_tls import ACL_PASSWORD, ACL_RULES, ACL_USER, acl_args
from tests.supervisor_helpers import (
    FALLBACKS,
    Traffic,
    metrics_text,
    redis_settings,
    sample,
    steady_redis_settings,
    wait_all,
)
from tests.support.cluster import REDIS_CLI, RedisClusterGroup
from tests.support.processes import REDIS_SERVER
from tests.support.sentinel import RedisReplyError
from tests.web.admin_client import AdminClient, session_handle
from tests.web.helpers import json_of

pytestmark = pytest.mark.redis

PASSWORD = "clust3r-data-pw"
HANG = 60.0  # hang detector for each phase, not a timing assertion


@pytest.fixture
async def group(tmp_path) -> AsyncIterator[RedisClusterGroup]:
    """A cluster of its own: these tests kill and fail over its nodes."""
    if REDIS_SERVER is None or REDIS_CLI is None:
        pytest.skip("redis-server or redis-cli not installed")
    workdir = tmp_path / "cluster"
    workdir.mkdir()
    group = RedisClusterGroup(workdir, password=PASSWORD)
    try:
        await group.start()
        yield group
    finally:
        group.close()


async def owner_of(group: RedisClusterGroup, key: str) -> int | None:
    """The master that holds ``key`` (None when none does)."""
    for port in await group.master_ports():
        try:
            if await group.node_command(port, "EXISTS", key) == 1:
                return port
        except RedisReplyError:  # MOVED: another master owns its slot
            continue
    return None


async def test_authly_serves_on_a_cluster_with_keys_spread_over_the_masters(
    tmp_path, shared_redis_cluster
):
    cluster = await emptied(shared_redis_cluster)
    app = create_app(steady_redis_settings(tmp_path, cluster.url))
    async with app.test_app() as test_app:
        services = services_of(test_app)
        await wait_all(services, "redis")
        client = test_app.test_client()
        health = await (await client.get("/health")).get_json()
        assert health["status"] == "healthy"
        assert health["redis"]["url"] == cluster.url
        for i in range(60):
            assert (await services.rate_limit.check_rate_limit(f"user-{i}", 5, 60)).allowed
            await services.cache.set(f"doc-{i}", "x", 60)
        await services.sessions.set("s1", {"user_id": "u1"}, 300)
        masters = await cluster.master_ports()
        sizes = [await cluster.node_command(p, "DBSIZE") for p in masters]
        assert all(size > 0 for size in sizes), sizes  # every master holds some keys
        # Sessions and the heartbeat keep their tag, so their scripts touch one slot.
        assert await owner_of(cluster, "authly:{s}:sess:s1") is not None
        assert await owner_of(cluster, "authly:{fleet}:instances") is not None
        assert await services.sessions.get("s1") == {"user_id": "u1"}
        text = await metrics_text(client)
        assert sample(text, "authly_redis_up") == 1
        assert sample(text, "authly_redis_connections_active") >= len(masters)


async def test_a_killed_master_is_replaced_and_authly_follows(tmp_path, group):
    """SIGKILL a master mid-run: its slots fail, so the probe (PING to every master)
    fails and the features fall back; the cluster promotes the replica, and Authly,
    mapping the slots anew, comes back to Redis. Every request is answered."""
    app = create_app(redis_settings(tmp_path, group.url))
    async with app.test_app() as test_app:
        services = services_of(test_app)
        await wait_all(services, "redis", timeout=HANG)
        client = test_app.test_client()
        assert (await services.rate_limit.check_rate_limit("kill-limit", 5, 60)).allowed
        victim = await owner_of(group, "authly:rl:kill-limit")
        assert victim is not None
        traffic = Traffic(test_app, services)
        stop = trio.Event()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(traffic.run, stop)
            new = await group.kill_master(victim)
            await wait_all(services, "redis", timeout=HANG)
            await services.sessions.set("after", {"user_id": "a"}, 300)
            answered = traffic.answered
            stop.set()
        assert answered > 0
        assert traffic.statuses == {200}
        assert new in await group.master_ports()
        assert victim not in await group.master_ports()
        assert await services.sessions.get("after") == {"user_id": "a"}
        text = await metrics_text(client)
        for feature in ("rate_limit", "cache", "session"):
            assert sample(text, "authly_backend_switches_total", feature=feature, to="redis") >= 2
        health = await (await client.get("/health")).get_json()
        assert health["status"] == "healthy"
        assert PASSWORD not in str(health)


async def test_without_a_replica_to_promote_authly_serves_from_fallbacks_until_whole(
    tmp_path, group
):
    """A master and its replica die: the cluster cannot heal itself, so the outage lasts
    until they are started again. State written meanwhile is carried back to Redis."""
    app = create_app(redis_settings(tmp_path, group.url))
    async with app.test_app() as test_app:
        services = services_of(test_app)
        await wait_all(services, "redis", timeout=HANG)
        limiter = services.rate_limit
        victim = (await group.master_ports())[0]
        replica = await group.replica_of(victim)
        traffic = Traffic(test_app, services)
        stop = trio.Event()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(traffic.run, stop)
            await group.kill_node(replica)
            await group.kill_node(victim)
            await wait_all(services, "memory", timeout=HANG)
            assert [s.backend_name for s in services.slots()] == FALLBACKS
            await services.sessions.set("during", {"user_id": "d"}, 300)
            assert (await limiter.check_rate_limit("outage-limit", 3, 60)).allowed
            assert (await limiter.check_rate_limit("outage-limit", 3, 60)).allowed
            await group.restart_node(victim)
            await group.restart_node(replica)
            await wait_all(services, "redis", timeout=HANG)
            answered = traffic.answered
            stop.set()
        assert answered > 0
        assert traffic.statuses == {200}
        # Carried back: the session and the two hits written during the outage.
        assert await owner_of(group, "authly:{s}:sess:during") is not None
        assert await services.sessions.get("during") == {"user_id": "d"}
        results = [
            (await limiter.check_rate_limit("outage-limit", 3, 60)).allowed for _ in range(2)
        ]
        assert results == [True, False]
        health = await (await test_app.test_client().get("/health")).get_json()
        assert health["status"] == "healthy"
        assert health["redis"]["last_switch"]["reason"] == "redis recovered"


async def test_a_planned_failover_is_followed_through_moved_replies(tmp_path, group):
    app = create_app(redis_settings(tmp_path, group.url))
    async with app.test_app() as test_app:
        services = services_of(test_app)
        await wait_all(services, "redis", timeout=HANG)
        await services.sessions.set("before", {"user_id": "b"}, 300)
        old = await owner_of(group, "authly:{s}:sess:before")
        assert old is not None
        replica = await group.replica_of(old)
        traffic = Traffic(test_app, services)
        stop = trio.Event()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(traffic.run, stop)
            await group.failover_to(replica)  # the replica caught up first: nothing lost
            with trio.fail_after(HANG):  # Authly ends up writing to the promoted master
                n = 0
                while await owner_of(group, f"authly:{{s}}:sess:after-{n}") != replica:
                    n += 1
                    await wait_all(services, "redis", timeout=HANG)
                    await services.sessions.set(f"after-{n}", {"user_id": "a"}, 300)
                    await trio.sleep(0.05)
            stop.set()
        assert traffic.statuses == {200}
        assert await services.sessions.get("before") == {"user_id": "b"}


async def test_scripts_lost_by_the_masters_are_sent_again(tmp_path, shared_redis_cluster):
    """After SCRIPT FLUSH (a master restarted): NOSCRIPT is answered with EVAL."""
    cluster = await emptied(shared_redis_cluster)
    app = create_app(steady_redis_settings(tmp_path, cluster.url))
    async with app.test_app() as test_app:
        services = services_of(test_app)
        await wait_all(services, "redis")
        assert (await services.rate_limit.check_rate_limit("flushed", 2, 60)).allowed
        for port in await cluster.master_ports():
            await cluster.node_command(port, "SCRIPT", "FLUSH")
        results = [(await services.rate_limit.check_rate_limit("flushed", 2, 60)).allowed]
        results.append((await services.rate_limit.check_rate_limit("flushed", 2, 60)).allowed)
        assert results == [True, False]
        await services.sessions.set("s", {"a": "1"}, 60)  # session_set, reloaded as well
        assert await services.sessions.get("s") == {"a": "1"}
        assert [s.backend_name for s in services.slots()] == ["redis"] * 3


async def test_an_operator_pin_hands_the_cluster_sessions_to_the_store(
    tmp_path, shared_redis_cluster
):
    """The hand-back SCANs every master (sessions live under the {s} tag)."""
    cluster = await emptied(shared_redis_cluster)
    app = create_app(steady_redis_settings(tmp_path, cluster.url))
    async with app.test_app() as test_app:
        services = services_of(test_app)
        await wait_all(services, "redis")
        for i in range(30):
            await services.sessions.set(f"pinned-{i}", {"n": str(i)}, 300)
        client = test_app.test_client()
        admin = AdminClient(client, await session_handle(client))
        answer = await json_of(
            await admin.call("PUT", "/api/v1/admin/backends", json={"session": "memory"})
        )
        assert answer["features"]["session"]["backend"] == "database"
        for i in range(30):
            assert await services.sessions.get(f"pinned-{i}") == {"n": str(i)}
        await admin.call("PUT", "/api/v1/admin/backends", json={"session": "redis"})
        assert services.sessions.backend_name == "redis"
        assert await owner_of(cluster, "authly:{s}:sess:pinned-7") is not None


# The documented least-privilege user (docs/redis.md), plus what a cluster needs.
CLUSTER_ADDITIONS = ("+command", "+cluster|slots", "+cluster|info", "+eval")
CLUSTER_ACL_RULES = " ".join([ACL_RULES, *CLUSTER_ADDITIONS])


async def _acl_cluster(tmp_path, rules: str) -> RedisClusterGroup:
    if REDIS_SERVER is None or REDIS_CLI is None:
        pytest.skip("redis-server or redis-cli not installed")
    workdir = tmp_path / "acl-cluster"
    workdir.mkdir()
    group = RedisClusterGroup(workdir, replicas=0, extra_args=acl_args(rules))
    try:
        await group.start()
    except BaseException:
        group.close()
        raise
    return group


def _as_acl_user(group: RedisClusterGroup) -> str:
    return group.url.replace("redis://", f"redis://{ACL_USER}:{ACL_PASSWORD}@")


async def test_the_documented_acl_user_serves_a_cluster(tmp_path):
    """docs/redis.md's ACL line plus its three cluster additions: the contract's calls,
    lost scripts (EVAL), the heartbeat, a hand-back's SCAN; Redis's ACL LOG stays empty."""
    group = await _acl_cluster(tmp_path, CLUSTER_ACL_RULES)
    try:
        app = create_app(steady_redis_settings(tmp_path, _as_acl_user(group)))
        async with app.test_app() as test_app:
            services = services_of(test_app)
            await wait_all(services, "redis")
            for i in range(20):
                assert (await services.rate_limit.check_rate_limit(f"acl-{i}", 3, 60)).allowed
                await services.cache.set(f"acl-{i}", "v", 60)
                await services.sessions.set(f"acl-{i}", {"n": str(i)}, 300)
            for port in await group.master_ports():
                await group.node_command(port, "SCRIPT", "FLUSH")
            assert (await services.rate_limit.check_rate_limit("acl-0", 3, 60)).allowed
            client = test_app.test_client()
            admin = AdminClient(client, await session_handle(client))
            await admin.call("PUT", "/api/v1/admin/backends", json={"session": "memory"})
            assert await services.sessions.get("acl-7") == {"n": "7"}  # handed to the store
            await admin.call("PUT", "/api/v1/admin/backends", json={"session": "redis"})
            assert [s.backend_name for s in services.slots()] == ["redis"] * 3
        for port in group.live_ports():
            assert await group.node_command(port, "ACL", "LOG") == [], port
    finally:
        group.close()


# What /health says without each addition (redis-py words a refused CLUSTER SLOTS so).
WITHOUT = {
    "+command": "NOPERM this user has no permissions to run the 'command' command",
    "+cluster|slots": "Cluster mode is not enabled on this node",
    "+cluster|info": "NOPERM this user has no permissions to run the 'cluster|info' command",
    "+eval": "NOPERM this user has no permissions to run the 'eval' command",
}


@pytest.mark.parametrize("missing", CLUSTER_ADDITIONS)
async def test_each_cluster_addition_to_the_acl_line_is_needed(tmp_path, missing):
    rules = " ".join([ACL_RULES, *(c for c in CLUSTER_ADDITIONS if c != missing)])
    group = await _acl_cluster(tmp_path, rules)
    try:
        app = create_app(redis_settings(tmp_path, _as_acl_user(group)))
        async with app.test_app() as test_app:
            services = services_of(test_app)
            await wait_all(services, "memory", timeout=HANG)
            health = await json_of(await test_app.test_client().get("/health"))
            assert WITHOUT[missing] in health["redis"]["last_error"]["error"]
    finally:
        group.close()
