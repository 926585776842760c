"""In-memory backends (DESIGN §5): sliding-window limiter, TTL cache, sessions.

Every test drives time with a fake clock (``clock=lambda: now[0]``).
"""

from __future__ import annotations

import pytest

from authly.backends.memory import MemoryCache, MemoryRateLimiter, MemorySessionStore
from authly.backends.slot import CacheSlot, RateLimiterSlot, SessionSlot


@pytest.fixture
def now() -> list[float]:
    return [100.0]


@pytest.fixture
def limiter(now: list[float]) -> MemoryRateLimiter:
    return MemoryRateLimiter(max_keys=100, clock=lambda: now[0])


# --- MemoryRateLimiter -------------------------------------------------------------


async def test_allows_up_to_the_limit_then_refuses(limiter):
    decisions = [await limiter.check_rate_limit("k", 3, 10) for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions] == [2, 1, 0, 0]
    assert all(d.member is not None for d in decisions[:3])
    assert decisions[3].member is None


async def test_members_are_unique_even_at_the_same_instant(limiter):
    members = {(await limiter.check_rate_limit("k", 50, 10)).member for _ in range(50)}
    assert len(members) == 50


async def test_keys_are_independent(limiter):
    for _ in range(3):
        await limiter.check_rate_limit("a", 3, 10)
    assert not (await limiter.check_rate_limit("a", 3, 10)).allowed
    assert (await limiter.check_rate_limit("b", 3, 10)).allowed


async def test_retry_after_is_time_until_the_oldest_hit_leaves(limiter, now):
    for t in (100.0, 101.0, 102.0):
        now[0] = t
        assert (await limiter.check_rate_limit("k", 3, 10)).allowed
    now[0] = 103.0
    decision = await limiter.check_rate_limit("k", 3, 10)
    assert not decision.allowed
    assert decision.retry_after == pytest.approx(7.0)
    now[0] = 109.75
    assert (await limiter.check_rate_limit("k", 3, 10)).retry_after == pytest.approx(0.25)


async def test_window_slides(limiter, now):
    for t in (100.0, 101.0, 102.0):
        now[0] = t
        await limiter.check_rate_limit("k", 3, 10)
    now[0] = 109.999
    assert not (await limiter.check_rate_limit("k", 3, 10)).allowed
    now[0] = 110.0  # the hit at t=100 leaves exactly one window later
    decision = await limiter.check_rate_limit("k", 3, 10)
    assert decision.allowed
    assert decision.remaining == 0
    refused = await limiter.check_rate_limit("k", 3, 10)
    assert not refused.allowed
    assert refused.retry_after == pytest.approx(1.0)  # the hit at t=101 goes at t=111
    now[0] = 125.0  # everything has left
    assert (await limiter.check_rate_limit("k", 3, 10)).remaining == 2


async def test_refused_hits_are_not_recorded(limiter, now):
    for _ in range(3):
        await limiter.check_rate_limit("k", 3, 10)
    now[0] = 105.0
    for _ in range(20):
        assert not (await limiter.check_rate_limit("k", 3, 10)).allowed
    now[0] = 110.0
    assert (await limiter.check_rate_limit("k", 3, 10)).allowed


async def test_refund_removes_exactly_that_hit(limiter, now):
    first = await limiter.check_rate_limit("k", 3, 10)
    now[0] = 101.0
    second = await limiter.check_rate_limit("k", 3, 10)
    now[0] = 102.0
    await limiter.check_rate_limit("k", 3, 10)
    assert not (await limiter.check_rate_limit("k", 3, 10)).allowed
    await limiter.refund("k", second.member)
    again = await limiter.check_rate_limit("k", 3, 10)
    assert again.allowed
    # The refunded hit was the one at t=101: the oldest left is still t=100.
    refused = await limiter.check_rate_limit("k", 3, 10)
    assert refused.retry_after == pytest.approx(100.0 + 10 - 102.0)
    await limiter.refund("k", first.member)
    now[0] = 103.0
    refused = await limiter.check_rate_limit("k", 3, 10)
    assert refused.allowed


async def test_refund_is_idempotent_and_ignores_unknowns(limiter):
    decision = await limiter.check_rate_limit("k", 2, 10)
    await limiter.check_rate_limit("k", 2, 10)
    await limiter.refund("k", decision.member)
    await limiter.refund("k", decision.member)  # a second refund frees nothing more
    await limiter.refund("k", "no-such-member")
    await limiter.refund("no-such-key", "x")
    assert (await limiter.check_rate_limit("k", 2, 10)).allowed
    assert not (await limiter.check_rate_limit("k", 2, 10)).allowed
    assert len(limiter) == 1  # refunding an unknown key created no window


async def test_number_of_keys_is_bounded(limiter):
    for i in range(10_000):
        await limiter.check_rate_limit(f"key-{i}", 5, 60)
        assert len(limiter) <= 100
    assert len(limiter) == 100


async def test_a_full_table_of_live_windows_refuses_a_new_key_and_keeps_the_old(now):
    """Security review, defect A: the bound must never forget a window that is still
    limiting (an LRU let a flood of junk keys reset a user's failed-login window)."""
    full: list[int] = []
    limiter = MemoryRateLimiter(max_keys=100, clock=lambda: now[0], on_full=lambda: full.append(1))
    for _ in range(3):
        assert (await limiter.check_rate_limit("victim", 3, 60)).allowed
    for i in range(99):
        now[0] = 100.0 + i * 0.25  # the last one at t = 124.5
        assert (await limiter.check_rate_limit(f"key-{i}", 5, 60)).allowed
    now[0] = 130.0
    for i in range(1_000):
        refused = await limiter.check_rate_limit(f"junk-{i}", 5, 60)
        assert not refused.allowed
        assert refused.member is None
        assert refused.retry_after == pytest.approx(30.0)  # "victim" expires at t = 160
    assert len(limiter) == 100
    assert len(full) == 1_000
    assert not (await limiter.check_rate_limit("victim", 3, 60)).allowed
    assert (await limiter.check_rate_limit("key-0", 5, 60)).remaining == 3
    assert (await limiter.check_rate_limit("key-98", 5, 60)).remaining == 3


async def test_refused_hits_create_no_window(limiter, now):
    for i in range(100):
        await limiter.check_rate_limit(f"key-{i}", 1, 60)
    assert not (await limiter.check_rate_limit("new", 1, 60)).allowed
    limiter.record("new-shadow", 60, "redis-member")  # dropped, not evicting a live one
    assert len(limiter) == 100
    assert [key for key, _, _ in limiter.export()] == [f"key-{i}" for i in range(100)]
    # Refusals by a full window of an existing key create nothing either.
    assert not (await limiter.check_rate_limit("key-5", 1, 60)).allowed
    assert len(limiter) == 100


async def test_expired_windows_are_evicted_to_make_room(now):
    evicted: list[int] = []
    limiter = MemoryRateLimiter(
        max_keys=100, clock=lambda: now[0], on_evict=lambda: evicted.append(1)
    )
    for i in range(50):
        await limiter.check_rate_limit(f"old-{i}", 5, 60)  # t = 100, expire at t = 160
    now[0] = 130.0
    for i in range(50):
        await limiter.check_rate_limit(f"young-{i}", 5, 60)  # expire at t = 190
    now[0] = 160.0  # the old windows have just emptied
    for i in range(50):
        assert (await limiter.check_rate_limit(f"new-{i}", 5, 60)).allowed
    assert len(evicted) == 50
    assert len(limiter) == 100
    refused = await limiter.check_rate_limit("one-too-many", 5, 60)
    assert not refused.allowed
    assert refused.retry_after == pytest.approx(30.0)  # young-0 expires at t = 190
    for i in range(50):  # the live windows kept their hits
        assert (await limiter.check_rate_limit(f"young-{i}", 5, 60)).remaining == 3


async def test_eviction_looks_at_every_window_length(now):
    limiter = MemoryRateLimiter(max_keys=100, clock=lambda: now[0])
    await limiter.check_rate_limit("short", 5, 10)  # expires at t = 110
    for i in range(99):
        await limiter.check_rate_limit(f"long-{i}", 5, 3600)
    now[0] = 110.0
    assert (await limiter.check_rate_limit("new", 5, 3600)).allowed
    assert "short" not in {key for key, _, _ in limiter.export()}
    assert len(limiter) == 100
    refused = await limiter.check_rate_limit("newer", 5, 10)
    assert not refused.allowed
    assert refused.retry_after == pytest.approx(3600.0 - 10.0)


async def test_a_hit_keeps_its_window_from_eviction(now):
    limiter = MemoryRateLimiter(max_keys=100, clock=lambda: now[0])
    for i in range(100):
        await limiter.check_rate_limit(f"key-{i}", 5, 60)  # t = 100
    now[0] = 150.0
    await limiter.check_rate_limit("key-0", 5, 60)  # key-0 now expires at t = 210
    now[0] = 170.0
    for i in range(99):
        assert (await limiter.check_rate_limit(f"new-{i}", 5, 60)).allowed
    assert not (await limiter.check_rate_limit("one-too-many", 5, 60)).allowed
    assert (await limiter.check_rate_limit("key-0", 5, 60)).remaining == 3


async def test_a_window_emptied_by_refunds_is_dropped(limiter):
    decision = await limiter.check_rate_limit("k", 3, 10)
    assert len(limiter) == 1
    await limiter.refund("k", decision.member)
    assert len(limiter) == 0
    assert limiter.export() == []


async def test_check_nowait_shares_the_window_with_check(limiter):
    assert limiter.check_nowait("k", 2, 10).allowed
    assert (await limiter.check_rate_limit("k", 2, 10)).allowed
    assert not limiter.check_nowait("k", 2, 10).allowed
    assert not (await limiter.check_rate_limit("k", 2, 10)).allowed


# --- MemoryCache ----------------------------------------------------------------------


@pytest.fixture
def cache(now: list[float]) -> MemoryCache:
    return MemoryCache(max_items=10, clock=lambda: now[0])


async def test_cache_set_get_exists_delete(cache):
    assert await cache.get("k") is None
    assert not await cache.exists("k")
    await cache.set("k", "v", 30)
    assert await cache.get("k") == "v"
    assert await cache.exists("k")
    await cache.delete("k")
    assert await cache.get("k") is None
    assert not await cache.exists("k")
    await cache.delete("k")  # deleting a missing key is fine


async def test_cache_entry_expires_at_its_ttl(cache, now):
    await cache.set("k", "v", 30)
    now[0] = 129.999
    assert await cache.get("k") == "v"
    now[0] = 130.0
    assert await cache.get("k") is None
    assert not await cache.exists("k")
    assert len(cache) == 0  # expired entries are dropped when seen


async def test_cache_overwrite_resets_value_and_ttl(cache, now):
    await cache.set("k", "old", 10)
    now[0] = 105.0
    await cache.set("k", "new", 10)
    now[0] = 114.0
    assert await cache.get("k") == "new"
    now[0] = 115.0
    assert await cache.get("k") is None


async def test_cache_is_bounded_and_evicts_least_recently_used(cache):
    await cache.set("keep", "v", 1000)
    for i in range(100):
        await cache.set(f"k{i}", str(i), 1000)
        assert await cache.get("keep") == "v"  # reading keeps it recent
        assert len(cache) <= 10
    assert len(cache) == 10
    assert await cache.get("k99") == "99"
    assert await cache.get("k0") is None


async def test_cache_clear(cache):
    await cache.set("a", "1", 10)
    await cache.set("b", "2", 10)
    cache.clear()
    assert len(cache) == 0
    assert await cache.get("a") is None


# --- MemorySessionStore ---------------------------------------------------------------


@pytest.fixture
def sessions(now: list[float]) -> MemorySessionStore:
    return MemorySessionStore(max_items=10, clock=lambda: now[0])


async def test_session_set_get_delete(sessions):
    assert await sessions.get("s") is None
    await sessions.set("s", {"user": "u1", "state": "x"}, 60)
    assert await sessions.get("s") == {"user": "u1", "state": "x"}
    await sessions.delete("s")
    assert await sessions.get("s") is None
    await sessions.delete("s")


async def test_session_data_is_copied_in_and_out(sessions):
    data = {"user": "u1"}
    await sessions.set("s", data, 60)
    data["user"] = "changed"
    got = await sessions.get("s")
    assert got == {"user": "u1"}
    got["user"] = "changed too"
    assert await sessions.get("s") == {"user": "u1"}


async def test_session_expires_at_its_ttl(sessions, now):
    await sessions.set("s", {"a": "1"}, 60)
    now[0] = 159.9
    assert await sessions.get("s") == {"a": "1"}
    now[0] = 160.0
    assert await sessions.get("s") is None


async def test_touch_extends_from_now(sessions, now):
    await sessions.set("s", {"a": "1"}, 10)  # expires at 110
    now[0] = 108.0
    assert await sessions.touch("s", 10) is True  # now expires at 118
    now[0] = 115.0
    assert await sessions.get("s") == {"a": "1"}
    now[0] = 118.0
    assert await sessions.get("s") is None


async def test_touch_missing_or_expired_session_is_false(sessions, now):
    assert await sessions.touch("missing", 10) is False
    await sessions.set("s", {"a": "1"}, 10)
    now[0] = 110.0
    assert await sessions.touch("s", 10) is False
    assert await sessions.get("s") is None


async def test_sessions_are_bounded(sessions):
    for i in range(1000):
        await sessions.set(f"s{i}", {"i": str(i)}, 60)
        assert len(sessions) <= 10
    assert await sessions.get("s999") == {"i": "999"}
    assert await sessions.get("s0") is None


# --- Slots over the memory backends ----------------------------------------------------


async def test_rate_limiter_slot_forwards_and_reports_decisions(now):
    seen: list[bool] = []
    first = MemoryRateLimiter(clock=lambda: now[0])
    slot = RateLimiterSlot(first, on_decision=seen.append)
    assert slot.backend_name == "memory"
    assert (await slot.check_rate_limit("k", 1, 10)).allowed
    assert not (await slot.check_rate_limit("k", 1, 10)).allowed
    assert seen == [True, False]
    second = MemoryRateLimiter(clock=lambda: now[0])
    assert slot.swap(second) is first
    assert slot.current is second
    assert (await slot.check_rate_limit("k", 1, 10)).allowed  # new backend, new window
    assert slot.statistics().swaps == 1


async def test_rate_limiter_slot_refund_reaches_the_backend(now):
    slot = RateLimiterSlot(MemoryRateLimiter(clock=lambda: now[0]))
    decision = await slot.check_rate_limit("k", 1, 10)
    await slot.refund("k", decision.member)
    assert (await slot.check_rate_limit("k", 1, 10)).allowed


async def test_cache_slot_counts_hits_and_misses(cache):
    lookups: list[tuple[str, bool, str]] = []
    slot = CacheSlot(cache, on_lookup=lambda *lookup: lookups.append(lookup))
    assert await slot.get("k") is None
    await slot.set("k", "v", 10)
    assert await slot.get("k") == "v"
    assert await slot.exists("k")
    await slot.delete("k")
    assert not await slot.exists("k")
    assert lookups == [("k", False, "memory"), ("k", True, "memory")]


async def test_session_slot_forwards(sessions):
    slot = SessionSlot(sessions)
    await slot.set("s", {"a": "1"}, 10)
    assert await slot.get("s") == {"a": "1"}
    assert await slot.touch("s", 10)
    await slot.delete("s")
    assert await slot.get("s") is None
    assert slot.feature == "session"
