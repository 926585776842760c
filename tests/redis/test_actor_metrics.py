"""The actor's metric hooks against a real redis-server: operation names, the latency and
pipeline-size histograms, errors by kind and the pool gauges (issue 11, item 4)."""

from __future__ import annotations

import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families

from authly.errors import BackendUnavailable
from authly.metrics import Metrics
from authly.redis.actor import RedisActor, RedisCommandError
from authly.redis.observer import ERROR_KINDS
from authly.redis.url import parse_redis_url

pytestmark = pytest.mark.redis

HANG = 30.0  # a hang detector, not a timing assertion


async def watched_actor(nursery, url: str, **kwargs) -> tuple[RedisActor, Metrics]:
    """An actor reporting to its own Metrics, wired as the app wires it."""
    kwargs.setdefault("op_timeout", 30.0)
    metrics = Metrics()
    actor = RedisActor(parse_redis_url(url), observer=metrics.redis_observer(), **kwargs)
    metrics.watch_redis(actor.pool_size, actor.statistics)
    await nursery.start(actor.run)
    return actor, metrics


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape, as (name, sorted labels) -> value."""
    text = metrics.render().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(metrics: Metrics, name: str, **labels: str) -> float:
    return samples(metrics).get((name, tuple(sorted(labels.items()))), 0.0)


def errors(metrics: Metrics) -> dict[str, float]:
    return {kind: value(metrics, "authly_redis_errors_total", kind=kind) for kind in ERROR_KINDS}


async def test_operations_are_lower_case_and_timed_per_command(nursery, redis_server):
    actor, metrics = await watched_actor(nursery, redis_server.url, pool_size=2)

    async def incr(i: int) -> None:
        await actor.execute("INCR", f"c{i % 5}")

    async with trio.open_nursery() as inner:
        for i in range(200):
            inner.start_soon(incr, i)
    assert await actor.execute("GET", "c0") == "40"
    await actor.run_script("sliding_window", ["w"], [60_000_000, 5, "a"])

    scraped = samples(metrics)
    operations = {
        dict(labels)["operation"]: v
        for (name, labels), v in scraped.items()
        if name == "authly_redis_operations_total"
    }
    # A fresh server has no scripts: NOSCRIPT, then SCRIPT LOAD + EVALSHA again.
    assert operations == {"incr": 200, "get": 1, "evalsha": 2, "script": 1}
    for operation, sent in operations.items():
        # Every command's reply arrived: one latency observation per command.
        count = value(metrics, "authly_redis_operation_duration_seconds_count", operation=operation)
        assert count == sent
        assert (
            value(metrics, "authly_redis_operation_duration_seconds_sum", operation=operation) > 0
        )
        inf = {"operation": operation, "le": "+Inf"}
        assert value(metrics, "authly_redis_operation_duration_seconds_bucket", **inf) == sent
    # One pipeline-size observation per pipeline, adding up to every command sent.
    stats = actor.statistics()
    reloads = 1  # the SCRIPT LOAD + EVALSHA pipeline
    assert value(metrics, "authly_redis_pipeline_size_count") == stats.batches + reloads
    assert value(metrics, "authly_redis_pipeline_size_sum") == 204
    assert stats.batches < 200  # the 200 concurrent INCRs were batched
    assert errors(metrics) == dict.fromkeys(ERROR_KINDS, 0.0)


async def test_a_command_error_is_counted_as_command(nursery, redis_server):
    actor, metrics = await watched_actor(nursery, redis_server.url)
    await actor.execute("SET", "k", "v")
    with pytest.raises(RedisCommandError):
        await actor.execute("INCR", "k")
    assert errors(metrics) == {**dict.fromkeys(ERROR_KINDS, 0.0), "command": 1}


async def test_a_paused_server_counts_one_timeout_per_call(nursery, redis_server):
    actor, metrics = await watched_actor(
        nursery, redis_server.url, op_timeout=0.2, connect_timeout=2.0
    )
    assert await actor.execute("SET", "x", "1") is True
    redis_server.pause()
    try:
        with pytest.raises(BackendUnavailable, match="did not answer"):
            await actor.execute("GET", "x")
        # The abandoned pipeline still holds its connection until the actor's own
        # deadline: the gauge says so, then goes back to zero (not stale).
        assert value(metrics, "authly_redis_connections_in_use") == 1
        with trio.fail_after(HANG):
            while value(metrics, "authly_redis_connections_in_use") != 0:
                await trio.sleep(0.02)
    finally:
        redis_server.resume()
    with trio.fail_after(HANG):
        while True:
            try:
                assert await actor.execute("GET", "x") == "1"
                break
            except BackendUnavailable:
                await trio.sleep(0.05)
    counted = errors(metrics)
    # The call that timed out is counted once as a timeout, even though its pipeline
    # later failed too; retries while the server came back are timeouts or connections.
    assert counted["timeout"] >= 1
    assert sum(counted.values()) == counted["timeout"] + counted["connection"]
    assert counted["command"] == counted["auth"] == counted["other"] == 0


async def test_a_killed_server_counts_connection_errors_and_the_pool_empties(nursery, redis_server):
    actor, metrics = await watched_actor(nursery, redis_server.url, pool_size=4, op_timeout=0.5)

    async def ping() -> None:
        assert await actor.execute("PING") is True

    for _ in range(5):  # enough concurrent pipelines to open more than one connection
        async with trio.open_nursery() as inner:
            for _ in range(64):
                inner.start_soon(ping)
    clients = await actor.execute("CLIENT", "LIST")
    open_now = len([line for line in clients.splitlines() if line.strip()])
    assert open_now >= 1
    # Idle: every open connection is counted, none is in use; the pool size is the setting.
    assert value(metrics, "authly_redis_pool_size") == 4
    assert value(metrics, "authly_redis_connections_active") == open_now
    assert value(metrics, "authly_redis_connections_in_use") == 0

    await redis_server.kill()
    with pytest.raises(BackendUnavailable, match=r"^ConnectionError: "):
        await actor.execute("PING")
    assert errors(metrics) == {**dict.fromkeys(ERROR_KINDS, 0.0), "connection": 1}
    # While Redis is down: nothing open, nothing lent, and the pool size unchanged.
    assert value(metrics, "authly_redis_connections_active") == 0
    assert value(metrics, "authly_redis_connections_in_use") == 0
    assert value(metrics, "authly_redis_pool_size") == 4


async def test_refused_credentials_and_permissions_count_as_auth(nursery):
    from tests.redis_server import RedisServer

    server = RedisServer(nursery, password="pw-admin-9c1e")
    await server.start()
    admin, _ = await watched_actor(nursery, server.url)
    await admin.execute("ACL", "SETUSER", "reader", "on", ">pw-reader-3f2a", "~*", "-@all", "+get")
    port = server.port
    reader, reader_metrics = await watched_actor(
        nursery, f"redis://reader:pw-reader-3f2a@127.0.0.1:{port}/0", op_timeout=0.5
    )
    with pytest.raises(BackendUnavailable, match=r"^NOPERM"):
        await reader.execute("SET", "k", "v")
    assert errors(reader_metrics) == {**dict.fromkeys(ERROR_KINDS, 0.0), "auth": 1}
    wrong, wrong_metrics = await watched_actor(
        nursery, f"redis://:pw-wrong-0000@127.0.0.1:{port}/0", op_timeout=0.5
    )
    with pytest.raises(BackendUnavailable, match=r"^WRONGPASS"):
        await wrong.execute("PING")
    assert errors(wrong_metrics) == {**dict.fromkeys(ERROR_KINDS, 0.0), "auth": 1}
    await server.stop()
