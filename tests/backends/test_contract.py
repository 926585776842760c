"""ONE contract suite, run unchanged over the memory and the Redis implementations (and,
for sessions, over the store on SQLite and PostgreSQL)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import trio
import trio.testing

from authly.backends.memory import MemoryCache, MemoryRateLimiter, MemorySessionStore
from authly.backends.redis import RedisCache, RedisRateLimiter, RedisSessionStore
from authly.core.store_sessions import StoreSessionStore
from authly.redis.actor import RedisActor
from authly.redis.url import parse_redis_url
from authly.store.db import open_database
from tests.redis_server import RedisServer, emptied, requires_redis

IMPLS = [
    pytest.param("memory", id="memory"),
    pytest.param("redis", id="redis", marks=[pytest.mark.redis, requires_redis]),
    # Three masters (and their replicas): every script's keys must share a slot.
    pytest.param("redis-cluster", id="redis-cluster", marks=[pytest.mark.redis, requires_redis]),
]


async def _actor(request, nursery: trio.Nursery) -> RedisActor:
    if request.param == "redis-cluster":
        url = (await emptied(request.getfixturevalue("shared_redis_cluster"))).url
    else:
        server = RedisServer(nursery)
        await server.start()
        url = server.url
    actor = RedisActor(parse_redis_url(url), op_timeout=30.0)
    await nursery.start(actor.run)
    return actor


@pytest.fixture(params=IMPLS)
async def limiter(request, nursery) -> AsyncIterator[object]:
    if request.param == "memory":
        yield MemoryRateLimiter()
    else:
        yield RedisRateLimiter(await _actor(request, nursery))


@pytest.fixture(params=IMPLS)
async def cache(request, nursery) -> AsyncIterator[object]:
    if request.param == "memory":
        yield MemoryCache()
    else:
        yield RedisCache(await _actor(request, nursery))


SESSION_IMPLS = [
    *IMPLS,
    # "Database sessions": the session feature when it is not on Redis (core/store_sessions.py).
    pytest.param("sqlite", id="database-sqlite"),
    pytest.param("postgresql", id="database-postgresql"),
]


@pytest.fixture(params=SESSION_IMPLS)
async def sessions(request, nursery, tmp_path) -> AsyncIterator[object]:
    if request.param == "memory":
        yield MemorySessionStore()
    elif request.param.startswith("redis"):
        yield RedisSessionStore(await _actor(request, nursery))
    else:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path / 'sessions.db'}"
        else:
            url = request.getfixturevalue("postgres_url")
        db = await open_database(nursery, url)
        try:
            yield StoreSessionStore(db)
        finally:
            db.close()


async def wait_for(predicate, timeout: float = 30.0) -> None:
    with trio.fail_after(timeout):
        while not await predicate():
            await trio.sleep(0.02)


# ---- RateLimiter -----------------------------------------------------------------------


async def test_limit_allows_exactly_max_then_denies(limiter):
    decisions = [await limiter.check_rate_limit("k", 3, 60) for _ in range(5)]
    assert [d.allowed for d in decisions] == [True, True, True, False, False]
    assert [d.remaining for d in decisions[:3]] == [2, 1, 0]
    denied = decisions[3]
    assert 0 < denied.retry_after <= 60
    assert denied.member is None


async def test_keys_are_independent(limiter):
    for _ in range(2):
        assert (await limiter.check_rate_limit("a", 2, 60)).allowed
    assert not (await limiter.check_rate_limit("a", 2, 60)).allowed
    assert (await limiter.check_rate_limit("b", 2, 60)).allowed


async def test_refund_gives_the_slot_back(limiter):
    first = await limiter.check_rate_limit("r", 1, 60)
    assert first.allowed
    assert not (await limiter.check_rate_limit("r", 1, 60)).allowed
    await limiter.refund("r", first.member)
    assert (await limiter.check_rate_limit("r", 1, 60)).allowed


async def test_window_slides(limiter):
    # A one-second window: long enough that a loaded machine cannot let it pass between
    # the first two calls, short enough to wait for it to slide.
    assert (await limiter.check_rate_limit("s", 1, 1.0)).allowed
    denied = await limiter.check_rate_limit("s", 1, 1.0)
    assert not denied.allowed
    assert 0 < denied.retry_after <= 1.0

    async def allowed_again() -> bool:
        return (await limiter.check_rate_limit("s", 1, 1.0)).allowed

    await wait_for(allowed_again)


async def test_concurrent_hits_never_exceed_the_limit(limiter):
    allowed = []

    async def hit() -> None:
        allowed.append((await limiter.check_rate_limit("burst", 7, 60)).allowed)

    async with trio.open_nursery() as nursery:
        for _ in range(100):
            nursery.start_soon(hit)
    assert allowed.count(True) == 7


# ---- Cache -------------------------------------------------------------------------------


async def test_cache_set_get_delete_exists(cache):
    key = uuid.uuid4().hex
    assert await cache.get(key) is None
    assert not await cache.exists(key)
    await cache.set(key, '{"a": 1}', 60)
    assert await cache.get(key) == '{"a": 1}'
    assert await cache.exists(key)
    await cache.set(key, "v2", 60)
    assert await cache.get(key) == "v2"
    await cache.delete(key)
    assert await cache.get(key) is None
    await cache.delete(key)  # deleting twice is fine


async def test_cache_entries_expire(cache):
    await cache.set("short", "x", 0.1)
    await cache.set("long", "y", 60)

    async def gone() -> bool:
        return await cache.get("short") is None

    await wait_for(gone)
    assert await cache.get("long") == "y"


# ---- SessionStore ------------------------------------------------------------------------


async def test_session_roundtrip_replace_delete(sessions):
    await sessions.set("s1", {"user_id": "u1", "csrf": "t"}, 60)
    assert await sessions.get("s1") == {"user_id": "u1", "csrf": "t"}
    await sessions.set("s1", {"user_id": "u2"}, 60)
    assert await sessions.get("s1") == {"user_id": "u2"}  # replaced, not merged
    await sessions.delete("s1")
    assert await sessions.get("s1") is None
    assert await sessions.get("never") is None


async def test_empty_session_is_stored(sessions):
    await sessions.set("empty", {}, 60)
    assert await sessions.get("empty") == {}


async def test_session_expires_and_touch_extends(sessions):
    await sessions.set("t", {"a": "1"}, 1.0)
    # Written after t with the same TTL: once x is gone, t's first deadline has passed.
    await sessions.set("x", {"a": "1"}, 1.0)
    assert await sessions.touch("t", 60)
    assert not await sessions.touch("missing", 60)

    async def x_gone() -> bool:
        return await sessions.get("x") is None

    await wait_for(x_gone)
    assert await sessions.get("t") == {"a": "1"}  # touched: still there


async def test_take_returns_the_entry_once(sessions):
    await sessions.set("once", {"a": "1"}, 60)
    await sessions.set("empty-one", {}, 60)
    assert await sessions.take("once") == {"a": "1"}
    assert await sessions.take("once") is None
    assert await sessions.get("once") is None
    assert await sessions.take("empty-one") == {}
    assert await sessions.take("never") is None


async def test_concurrent_takers_of_one_entry_exactly_one_wins(sessions):
    """Twenty tasks released together on one entry: one gets it, nineteen get None."""
    await sessions.set("contended", {"code": "c"}, 60)
    results: list[object] = []
    go = trio.Event()

    async def taker() -> None:
        await go.wait()
        results.append(await sessions.take("contended"))

    async with trio.open_nursery() as nursery:
        for _ in range(20):
            nursery.start_soon(taker)
        await trio.testing.wait_all_tasks_blocked()
        go.set()
    assert results.count({"code": "c"}) == 1
    assert results.count(None) == 19


async def test_a_full_pool_evicts_only_its_own_oldest_entries(sessions):
    """Anonymous state goes to a bounded pool; filling it never evicts a session."""
    await sessions.set("login-session", {"user_id": "u1"}, 600)
    evicted = 0
    for i in range(25):
        evicted += await sessions.add(f"p{i}", {"n": str(i)}, 600, pool="pending", max_entries=10)
    assert evicted == 15
    assert await sessions.get("login-session") == {"user_id": "u1"}
    live = [i for i in range(25) if await sessions.get(f"p{i}") is not None]
    assert live == list(range(15, 25))  # the newest ten
    # An entry answered (taken) frees its place without counting as an eviction.
    assert await sessions.take("p24", pool="pending") == {"n": "24"}
    assert await sessions.add("p25", {"n": "25"}, 600, pool="pending", max_entries=10) == 0
    assert await sessions.add("p26", {"n": "26"}, 600, pool="pending", max_entries=10) == 1
    assert await sessions.get("p15") is None
    # Entries of a pool can be updated in place (the pending request's consent step).
    await sessions.set("p26", {"n": "26", "user_id": "u1"}, 500)
    assert await sessions.get("p26") == {"n": "26", "user_id": "u1"}
    assert await sessions.get("login-session") == {"user_id": "u1"}
