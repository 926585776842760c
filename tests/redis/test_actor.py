"""The client actor against a real redis-server."""

from __future__ import annotations

import pytest
import trio

from authly.errors import BackendUnavailable
from authly.redis.actor import RedisActor, RedisCommandError
from authly.redis.url import parse_redis_url

pytestmark = pytest.mark.redis


async def start_actor(nursery, server, **kwargs) -> RedisActor:
    # Tests about deadlines pass their own op_timeout; for the others a loaded machine
    # must not turn a slow reply into a failure.
    kwargs.setdefault("op_timeout", 30.0)
    actor = RedisActor(parse_redis_url(server.url), **kwargs)
    await nursery.start(actor.run)
    return actor


async def test_commands_and_errors_come_back_per_call(nursery, redis_server):
    actor = await start_actor(nursery, redis_server)
    assert await actor.execute("SET", "k", "v") is True
    assert await actor.execute("GET", "k") == "v"
    with pytest.raises(RedisCommandError):
        await actor.execute("INCR", "k")  # not an integer: only this call fails
    assert await actor.execute("GET", "k") == "v"


async def test_concurrent_callers_are_batched_and_each_gets_its_own_reply(nursery, redis_server):
    actor = await start_actor(nursery, redis_server, pool_size=2)
    results: dict[int, int] = {}

    async def incr(i: int) -> None:
        results[i] = await actor.execute("INCR", f"c{i % 7}")

    async with trio.open_nursery() as inner:
        for i in range(700):
            inner.start_soon(incr, i)
    for key in range(7):
        assert sorted(v for i, v in results.items() if i % 7 == key) == list(range(1, 101))
    stats = actor.statistics()
    assert stats.batches < stats.calls  # auto-pipelining actually batched


async def test_script_reloaded_after_script_flush(nursery, redis_server):
    actor = await start_actor(nursery, redis_server)
    first = await actor.run_script("sliding_window", ["w"], [60_000_000, 5, "a"])
    assert first[0] == 1
    await actor.execute("SCRIPT", "FLUSH")
    second = await actor.run_script("sliding_window", ["w"], [60_000_000, 5, "b"])
    assert second[0] == 1
    assert second[1] == 2


async def test_dead_server_gives_backend_unavailable_within_deadline(nursery, redis_server):
    actor = await start_actor(nursery, redis_server, op_timeout=0.2)
    assert await actor.execute("PING") is True
    await redis_server.kill()
    with trio.fail_after(10), pytest.raises(BackendUnavailable, match=r"^ConnectionError: "):
        await actor.execute("PING")  # refused: fails at once, well within the deadline
    assert actor.statistics().failures == 1  # counted once; nobody is called back


async def test_paused_server_times_out_and_recovers(nursery, redis_server):
    actor = await start_actor(nursery, redis_server, op_timeout=0.2)
    assert await actor.execute("SET", "x", "1") is True
    redis_server.pause()
    with pytest.raises(BackendUnavailable):
        await actor.execute("GET", "x")
    redis_server.resume()
    with trio.fail_after(30):  # a hang detector
        while True:
            try:
                assert await actor.execute("GET", "x") == "1"
                break
            except BackendUnavailable:
                await trio.sleep(0.05)


async def test_cancelled_caller_does_not_mix_up_replies(nursery, redis_server):
    actor = await start_actor(nursery, redis_server)
    for i in range(50):
        await actor.execute("SET", f"k{i}", str(i))
    for i in range(50):
        with trio.move_on_after(0):
            await actor.execute("GET", f"k{i}")
        assert await actor.execute("GET", f"k{i}") == str(i)


async def test_restart_reconnects(nursery, redis_server):
    actor = await start_actor(nursery, redis_server, op_timeout=0.2)
    await actor.execute("SET", "a", "1")
    await redis_server.restart()
    with trio.fail_after(30):  # a hang detector
        while True:
            try:
                assert await actor.execute("GET", "a") is None  # new empty server
                break
            except BackendUnavailable:
                await trio.sleep(0.05)


async def test_refusals_are_backend_unavailable_in_redis_words(nursery):
    """WRONGPASS / NOPERM mean "Redis will not serve us": BackendUnavailable (the slot
    answers from memory) with Redis's own words, never the password."""
    from tests.redis_server import RedisServer

    server = RedisServer(nursery, password="pw-admin-51d0")
    await server.start()
    admin = RedisActor(parse_redis_url(server.url), op_timeout=30.0)
    await nursery.start(admin.run)
    await admin.execute("ACL", "SETUSER", "reader", "on", ">pw-reader-0b7e", "~*", "-@all", "+get")
    port = server.port
    reader = await start_actor_url(nursery, f"redis://reader:pw-reader-0b7e@127.0.0.1:{port}/0")
    assert await reader.execute("GET", "missing") is None
    with pytest.raises(BackendUnavailable, match=r"^NOPERM .*'set' command"):
        await reader.execute("SET", "k", "v")
    wrong = await start_actor_url(nursery, f"redis://:pw-wrong-77aa@127.0.0.1:{port}/0")
    with pytest.raises(BackendUnavailable) as caught:
        await wrong.execute("PING")
    assert str(caught.value) == "WRONGPASS invalid username-password pair or user is disabled."
    with pytest.raises(RedisCommandError, match=r"^ERR wrong number"):  # still one call's error
        await admin.execute("HSET", "h")
    await server.stop()


async def start_actor_url(nursery, url: str) -> RedisActor:
    actor = RedisActor(parse_redis_url(url), op_timeout=0.5)
    await nursery.start(actor.run)
    return actor
