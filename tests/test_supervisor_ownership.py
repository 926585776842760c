"""One owner of backend state (DESIGN §5 "Ownership"): only the supervisor task switches,
copies and merges, in order; the request path answers from memory and trips the breaker.

Real redis-server processes; every interleaving is forced with gates and events."""

from __future__ import annotations

import logging

import pytest
import trio

from authly.backends.reconcile import MAX_PASSES
from authly.errors import BackendUnavailable
from authly.factory import create_app
from authly.redis.actor import RedisActor
from authly.redis.url import parse_redis_url
from tests.conftest import services_of
from tests.supervisor_helpers import (
    FALLBACKS,
    HANG,
    lines_with,
    metrics_text,
    redis_settings,
    sample,
    wait_all,
)

pytestmark = pytest.mark.redis

FEATURES = ("rate_limit", "cache", "session")


class GatedCopies:
    """Stands in for the supervisor's Redis session store while it copies sessions back:
    every copy waits at ``release`` after announcing itself on ``reached``."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.reached = trio.Event()
        self.release = trio.Event()

    async def set(self, session_id: str, data: dict[str, str], ttl: float) -> None:
        self.reached.set()
        await self.release.wait()
        await self.inner.set(session_id, data, ttl)


class WriterDuringCopies:
    """Each copy first writes one more session through the slot (at most ``extra``), so
    every export finds something new and the copy never goes quiet."""

    def __init__(self, inner, slot, extra: int) -> None:
        self.inner = inner
        self.slot = slot
        self.extra = extra
        self.written: list[str] = []

    async def set(self, session_id: str, data: dict[str, str], ttl: float) -> None:
        if len(self.written) < self.extra:
            sid = f"during-copy-{len(self.written)}"
            self.written.append(sid)
            await self.slot.set(sid, {"sid": sid}, 300)
        await self.inner.set(session_id, data, ttl)


async def write(sessions, prefix: str, count: int, written: list[str]) -> None:
    for i in range(count):
        sid = f"{prefix}-{i}"
        await sessions.set(sid, {"sid": sid}, 300)
        written.append(sid)


async def assert_all_kept(nursery, redis_url: str, services, written: list[str]) -> None:
    """Every session is readable through the slot AND stored in Redis with its data."""
    assert written
    for sid in written:
        assert await services.sessions.get(sid) == {"sid": sid}, sid
    other = RedisActor(parse_redis_url(redis_url), op_timeout=30.0)  # as another instance sees it
    scope = await nursery.start(other.run)
    try:
        for sid in written:
            assert await other.execute("HGET", f"authly:sess:{sid}", "sid") == sid, sid
    finally:
        scope.cancel()


async def test_paused_redis_without_traffic_is_a_health_probe_failure(
    tmp_path, redis_server, caplog
):
    caplog.set_level(logging.INFO)
    app = create_app(redis_settings(tmp_path, redis_server.url))
    async with app.test_app() as test_app:
        services = services_of(test_app)
        client = test_app.test_client()
        redis_server.pause()  # nothing calls Redis but the supervisor's probe
        await wait_all(services, "memory")
        health = await (await client.get("/health")).get_json()
        error = "Redis did not answer within 1000 ms"
        assert health["redis"]["last_switch"]["reason"] == f"health probe failed: {error}"
        assert health["redis"]["last_error"]["error"] == error
        assert lines_with(caplog, "Redis connection failed, falling back to memory") == [
            f"Redis connection failed, falling back to memory: {error}"
        ]
        switches = lines_with(caplog, "from=redis to=")
        assert [line.split(" to=")[1].split()[0] for line in switches] == FALLBACKS
        assert all(line.endswith(f"reason=health probe failed: {error}") for line in switches)
        text = await metrics_text(client)
        assert sample(text, "authly_redis_failures_total", seen_by="request") == 0
        assert sample(text, "authly_redis_failures_total", seen_by="health_probe") >= 1
        redis_server.resume()


async def test_a_request_failure_is_reported_as_such_and_counted_once(
    tmp_path, redis_server, caplog
):
    caplog.set_level(logging.INFO)
    # No timed probe for a minute: only the request can wake the supervisor.
    settings = redis_settings(tmp_path, redis_server.url, health_interval_ms=60_000)
    app = create_app(settings)
    async with app.test_app() as test_app:
        services = services_of(test_app)
        supervisor = services.supervisor
        client = test_app.test_client()
        await redis_server.kill()
        # The cache: its fallback (process memory) answers without a checkpoint, where
        # the sessions' fallback (the store) would await a query and let the supervisor
        # run in between.
        await services.cache.set("k", "v", 60)  # answered by memory, no error
        # No checkpoint since the failure: the supervisor has not even run yet. The
        # request only tripped the breaker; the slots are where the supervisor put them.
        assert supervisor.breaker.tripped
        assert [s.backend_name for s in services.slots()] == ["redis"] * 3
        await wait_all(services, "memory")
        assert await services.cache.get("k") == "v"
        health = await (await client.get("/health")).get_json()
        reason = health["redis"]["last_switch"]["reason"]
        assert reason.startswith("request failed: "), reason
        # The WARNING line and last_error carry the supervisor's own look at Redis.
        refused = f"Error 111 connecting to 127.0.0.1:{redis_server.port}"
        assert refused in health["redis"]["last_error"]["error"]
        (fallback,) = lines_with(caplog, "Redis connection failed, falling back to memory")
        assert refused in fallback
        switches = lines_with(caplog, "from=redis to=")
        assert [line.split(" to=")[1].split()[0] for line in switches] == FALLBACKS
        assert [line.split(" reason=")[1] for line in switches] == [reason] * 3
        text = await metrics_text(client)
        assert sample(text, "authly_redis_failures_total", seen_by="request") == 1
        assert sample(text, "authly_redis_failures_total", seen_by="health_probe") == 1
        for feature, fallback in zip(FEATURES, FALLBACKS, strict=True):
            assert sample(text, "authly_backend_switches_total", feature=feature, to=fallback) == 1


async def test_a_false_alarm_carries_memory_writes_back_and_switches_nothing(
    tmp_path, redis_server, nursery
):
    """The breaker trips but Redis answers the probe: what was written to memory
    meanwhile (also during the copy) reaches Redis, and no feature switches."""
    app = create_app(redis_settings(tmp_path, redis_server.url))
    async with app.test_app() as test_app:
        services = services_of(test_app)
        supervisor = services.supervisor
        gate = GatedCopies(supervisor.reconciler.redis_sessions)
        supervisor.reconciler.redis_sessions = gate
        supervisor.breaker.trip("session", BackendUnavailable("injected"))  # as a failed call
        written: list[str] = []
        await write(services.sessions, "tripped", 2, written)  # straight to memory
        assert await services.sessions.memory.get("tripped-0") == {"sid": "tripped-0"}
        with trio.fail_after(HANG):
            await gate.reached.wait()  # probed, found well, copying back
        await write(services.sessions, "during-copy", 2, written)  # still memory
        assert await services.sessions.memory.get("during-copy-0") == {"sid": "during-copy-0"}
        probes = supervisor.probes
        gate.release.set()
        await supervisor.wait_for_probes(probes + 1)  # the copy back is over
        assert not supervisor.breaker.tripped
        assert supervisor.last_switch.reason == "startup"  # nothing switched since
        assert [s.backend_name for s in services.slots()] == ["redis"] * 3
        await assert_all_kept(nursery, redis_server.url, services, written)
        assert await services.sessions.memory.count() == 0  # copied, then dropped from the store


async def test_redis_going_away_during_the_copy_back_loses_no_session(
    tmp_path, redis_server, nursery
):
    app = create_app(redis_settings(tmp_path, redis_server.url))
    async with app.test_app() as test_app:
        services = services_of(test_app)
        supervisor = services.supervisor
        sessions = services.sessions
        written: list[str] = []
        await write(sessions, "before", 3, written)  # on Redis
        redis_server.pause()
        await wait_all(services, "memory")
        await write(sessions, "outage-1", 3, written)  # on memory
        gate = GatedCopies(supervisor.reconciler.redis_sessions)
        supervisor.reconciler.redis_sessions = gate
        redis_server.resume()
        with trio.fail_after(HANG):
            await gate.reached.wait()  # two good probes: copying back, not swapped yet
        assert [s.backend_name for s in services.slots()] == FALLBACKS
        await write(sessions, "during-copy", 3, written)  # after the export being copied
        redis_server.pause()  # the flap: Redis goes away in the middle of the copy
        probes = supervisor.probes
        gate.release.set()  # the copies now time out: the switch back is called off
        await supervisor.wait_for_probes(probes + 1)
        assert [s.backend_name for s in services.slots()] == FALLBACKS
        await write(sessions, "outage-2", 3, written)
        redis_server.resume()
        await wait_all(services, "redis")
        await assert_all_kept(nursery, redis_server.url, services, written)
        assert await sessions.memory.count() == 0


async def test_a_copy_that_never_goes_quiet_still_keeps_every_session(
    tmp_path, redis_server, nursery
):
    app = create_app(redis_settings(tmp_path, redis_server.url))
    async with app.test_app() as test_app:
        services = services_of(test_app)
        supervisor = services.supervisor
        written: list[str] = []
        redis_server.pause()
        await wait_all(services, "memory")
        await write(services.sessions, "outage", 2, written)
        chatty = WriterDuringCopies(supervisor.reconciler.redis_sessions, services.sessions, 100)
        supervisor.reconciler.redis_sessions = chatty
        redis_server.resume()
        await wait_all(services, "redis")
        probes = supervisor.probes
        await supervisor.wait_for_probes(probes + 1)  # the switch back has finished
        assert len(chatty.written) > 2 * MAX_PASSES  # never quiet: swapped after MAX_PASSES
        await assert_all_kept(nursery, redis_server.url, services, written + chatty.written)
        assert await services.sessions.memory.count() == 0


async def test_sessions_written_while_redis_flaps_are_all_kept(tmp_path, redis_server, nursery):
    app = create_app(redis_settings(tmp_path, redis_server.url, health_interval_ms=50))
    async with app.test_app() as test_app:
        services = services_of(test_app)
        supervisor = services.supervisor
        written: list[str] = []
        flaps_done = trio.Event()

        async def writer() -> None:
            i = 0
            while not flaps_done.is_set():
                await write(services.sessions, f"w{i}", 1, written)
                i += 1
                await trio.sleep(0.001)  # a steady stream, on Redis or on memory alike

        async with trio.open_nursery() as inner:
            inner.start_soon(writer)
            for _ in range(4):
                redis_server.pause()
                await wait_all(services, "memory")
                redis_server.resume()
                await wait_all(services, "redis")
            flaps_done.set()
        # Whatever the writer's last calls tripped has been probed and carried back.
        await supervisor.wait_for_probes(supervisor.probes + 2)
        assert not supervisor.breaker.tripped
        assert len(written) > 20
        await assert_all_kept(nursery, redis_server.url, services, written)
        assert await services.sessions.memory.count() == 0
        text = await metrics_text(test_app.test_client())
        switched = sample(text, "authly_backend_switches_total", feature="session", to="database")
        assert switched >= 4  # more only if a busy machine made a probe miss its deadline


async def test_the_instance_count_is_pushed_to_the_rate_limit_slot(tmp_path, redis_server):
    app = create_app(redis_settings(tmp_path, redis_server.url))
    async with app.test_app() as test_app:
        services = services_of(test_app)
        supervisor = services.supervisor
        other = RedisActor(parse_redis_url(redis_server.url), op_timeout=30.0)
        async with trio.open_nursery() as nursery:
            scope = await nursery.start(other.run)
            # Two more instances keep a heartbeat in the same Redis.
            for name in ("i2", "i3"):
                await other.run_script(
                    "heartbeat", ["authly:instances", "authly:epoch"], [name, 60_000]
                )
            scope.cancel()
        await supervisor.wait_for_probes(supervisor.probes + 2)
        assert services.rate_limit.instances == supervisor.instances_seen == 3
        redis_server.pause()
        await wait_all(services, "memory")
        allowed = [
            (await services.rate_limit.check_rate_limit("k", 6, 60)).allowed for _ in range(4)
        ]
        assert allowed == [True, True, False, False]  # 6 // 3 per instance while down
        redis_server.resume()


def test_breaker_reports_each_failure_once_and_closes_only_when_quiet():
    from authly.backends.slot import Breaker

    breaker = Breaker()
    assert breaker.take() is None
    breaker.trip("session", BackendUnavailable("first"))
    breaker.trip("cache", BackendUnavailable("second"))
    report = breaker.take()
    assert (report.feature, report.error, report.count) == ("session", "first", 2)
    assert breaker.take() is None
    breaker.trip("session", BackendUnavailable("third"))
    assert breaker.close() is False  # a failure the supervisor has not looked at yet
    assert breaker.tripped
    breaker.take()
    assert breaker.close() is True
    assert not breaker.tripped
