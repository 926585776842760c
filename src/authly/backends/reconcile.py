"""Carry what an instance wrote to memory into Redis: used by the supervisor task only
(never by the request path).

When the supervisor puts the Redis features back on Redis (after an outage, or after a
request saw a failure its own probe did not confirm), what was written to memory
meanwhile must reach Redis before Redis answers for it:

- Sessions are copied with their remaining TTL, pass after pass, each pass copying what
  was written during the one before, until an export finds nothing new (``quiet``). The
  supervisor swaps right after a quiet export, with no await in between, so no write can
  fall between the last copy and the swap. Afterwards only the entries whose *last*
  write was copied are dropped from memory (``settle``): an entry written again after
  its copy stays, and is copied next time. Memory is never cleared wholesale.
- When the sessions' fallback is the store (shared by every instance: "Database
  sessions"), a pass lists its live entries and copies those whose version was not
  copied yet; the pass is quiet when it found nothing new AND this instance's slot
  wrote nothing to the store while it looked (the slot counts its fallback writes).
  After the swap, ``forget_copied`` deletes the entries still at the version copied;
  an entry another instance wrote since stays for that instance's own copy.
- Rate-limit windows are merged into Redis by hit id (nothing counts twice): before the
  swap, so Redis decides with the hits made on memory, and once more after it for the
  hits made in between.
- The memory cache is dropped (other instances may have changed things meanwhile).

Every step either finishes or raises BackendUnavailable / RedisCommandError, and drops
nothing before its copy has succeeded; the supervisor then stays on (or goes back to)
memory.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import cast

import trio

from authly.backends.memory import MemorySessionStore
from authly.backends.protocols import SharedSessionStore
from authly.backends.redis import RedisRateLimiter, RedisSessionStore
from authly.backends.slot import CacheSlot, RateLimiterSlot, SessionSlot
from authly.errors import BackendUnavailable
from authly.redis.actor import RedisActor, RedisCommandError

log = logging.getLogger("authly.supervisor")

MAX_PASSES = 4  # session copy passes before swapping anyway (a steady stream of writes)
WIDTH = 256  # calls in flight at once (the actor pipelines them)

REDIS_ERRORS = (BackendUnavailable, RedisCommandError)


async def run_all(calls: list[Callable[[], Awaitable[object]]]) -> None:
    """Run ``calls`` WIDTH at a time; raise the first Redis failure after each group."""
    failures: list[Exception] = []

    async def one(call: Callable[[], Awaitable[object]]) -> None:
        try:
            await call()
        except REDIS_ERRORS as exc:
            failures.append(exc)

    for start in range(0, len(calls), WIDTH):
        async with trio.open_nursery() as nursery:
            for call in calls[start : start + WIDTH]:
                nursery.start_soon(one, call)
        if failures:
            raise failures[0]


class Reconciler:
    """The copy and merge steps; each feature is None when it is not on Redis."""

    def __init__(
        self,
        actor: RedisActor,
        *,
        rate_limit: RateLimiterSlot | None,
        cache: CacheSlot | None,
        sessions: SessionSlot | None,
    ) -> None:
        self._rate_limit = rate_limit
        self._cache = cache
        self._sessions = sessions
        self._redis_limiter = RedisRateLimiter(actor)
        self.redis_sessions = RedisSessionStore(actor)  # where copies go (tests gate it)
        self._answers_merged = -1  # rate-limit memory answers already merged
        self._copied: dict[str, str] = {}  # shared fallback: session id -> version copied
        # Features whose state is carried (the supervisor drops operator-pinned ones).
        slots = {"rate_limit": rate_limit, "cache": cache, "session": sessions}
        self.enabled = frozenset(name for name, slot in slots.items() if slot is not None)

    async def copy_sessions(self, since: int) -> tuple[int, bool]:
        """Copy the sessions written to memory after sequence ``since``, again and again.

        Returns (mark, quiet): everything written up to ``mark`` is in Redis; ``quiet``
        when the last export found nothing new, i.e. nothing unsaved is in memory *now*
        (the caller must swap before its next await to keep that true).
        """
        if self._sessions is None or "session" not in self.enabled:
            return since, True
        memory = self._sessions.memory
        if not isinstance(memory, MemorySessionStore):
            return 0, await self._copy_shared(cast(SharedSessionStore, memory))
        mark = since
        copied = 0
        for _ in range(MAX_PASSES):
            items, high = memory.export(mark)
            if not items:
                self._log_copied(copied)
                return high, True
            await run_all([partial(self.redis_sessions.set, *item) for item in items])
            copied += len(items)
            mark = high
        self._log_copied(copied)
        return mark, False

    def begin(self) -> None:
        """A new carry-over starts: what an earlier, called-off one copied may be gone
        from Redis since, so everything is copied again."""
        self._copied = {}

    async def _copy_shared(self, store: SharedSessionStore) -> bool:
        """Copy the store's live entries not copied yet at their version; True if the
        last pass found nothing new and nothing was written meanwhile (quiet)."""
        slot = self._sessions
        assert slot is not None
        copied = 0
        for _ in range(MAX_PASSES):
            done = slot.fallback_writes_done
            idle = slot.fallback_writes_in_flight == 0
            entries = await store.live()
            now = time.time()
            fresh = [
                e
                for e in entries
                if self._copied.get(e.session_id) != e.version and e.expires_at > now
            ]
            if not fresh:
                if (
                    idle
                    and slot.fallback_writes_in_flight == 0
                    and slot.fallback_writes_done == done
                ):
                    self._log_copied(copied)
                    return True
                continue  # this instance wrote while the store was read: look again
            sessions = self.redis_sessions
            await run_all(
                [partial(sessions.set, e.session_id, e.data, e.expires_at - now) for e in fresh]
            )
            for entry in fresh:
                self._copied[entry.session_id] = entry.version
            copied += len(fresh)
        self._log_copied(copied)
        return False

    async def forget_copied(self) -> None:
        """After the swap: delete from the shared store what was copied to Redis (at the
        version copied). No-op for a memory fallback (``settle`` did it)."""
        if self._sessions is None or isinstance(self._sessions.memory, MemorySessionStore):
            return
        if "session" not in self.enabled:
            return
        copied, self._copied = list(self._copied.items()), {}
        if copied:
            await cast(SharedSessionStore, self._sessions.memory).forget(copied)

    async def hand_back(self, feature: str) -> None:
        """The operator pinned ``feature`` to its fallback while Redis is up: give the
        fallback what Redis holds. Sessions are copied where the fallback has none (an
        entry written there since the switch wins); the memory cache is dropped, since
        other instances changed Redis meanwhile; rate-limit windows need nothing, as
        every hit Redis allowed is shadowed in memory already."""
        if feature == "cache" and self._cache is not None:
            self._cache.memory.clear()
        if feature != "session" or self._sessions is None:
            return
        fallback = self._sessions.memory
        entries = await self.redis_sessions.export_all()
        missing: list[Callable[[], Awaitable[object]]] = []
        for session_id, data, ttl in entries:
            if await fallback.get(session_id) is None:
                missing.append(partial(fallback.set, session_id, data, ttl))
        await run_all(missing)
        if missing:
            log.info("handed %d sessions from Redis to the %s backend", len(missing), fallback.name)

    def _log_copied(self, copied: int) -> None:
        if copied:
            log.info("copied %d sessions from memory to Redis", copied)

    async def merge_rate_limits(self, *, force: bool) -> None:
        """Merge memory windows into Redis: always when ``force``, otherwise only if the
        rate-limit slot answered from memory since the last merge."""
        if self._rate_limit is None or "rate_limit" not in self.enabled:
            return
        answers = self._rate_limit.statistics().memory_answers
        if not force and answers == self._answers_merged:
            return
        windows = self._rate_limit.memory.export()
        limiter = self._redis_limiter
        await run_all(
            [partial(limiter.merge, key, seconds, hits) for key, seconds, hits in windows]
        )
        self._answers_merged = answers
        if windows:
            log.info("merged %d rate-limit windows into Redis", len(windows))

    def settle(self, mark: int) -> None:
        """After the swap: drop what was copied (written at or before ``mark``) and the
        memory cache. Synchronous, so it runs in the same step as the swap."""
        if self._sessions is not None:
            memory = self._sessions.memory
            if isinstance(memory, MemorySessionStore):
                memory.discard_through(mark)
        if self._cache is not None and "cache" in self.enabled:
            self._cache.memory.clear()
