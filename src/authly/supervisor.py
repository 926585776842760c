"""The supervisor: watches Redis and hot-swaps each Redis-enabled feature.

States: ``connecting -> up -> down -> probing -> up ...``

- Start-up: one PING with AUTHLY_REDIS_TIMEOUT decides the first backends; ``run``
  reports readiness (``task_status.started``) only after that, so the app never serves
  before a backend is chosen. Redis down at boot is not fatal: memory, and keep probing.
- Up: PING every AUTHLY_REDIS_HEALTH_INTERVAL_MS, or at once when a request-path call
  failed (the actor and the slots call ``report_failure``). The first failed probe
  switches every Redis feature to memory.
- Down: probe with backoff (interval doubling, capped at 1 s so a returning Redis is
  used within ≈ 2 s); after ``good_probes`` consecutive successes, switch back and
  carry state over: sessions written to memory are copied to Redis with their remaining
  TTL, memory rate-limit windows are merged into Redis (by member, so nothing counts
  twice), and the memory cache is dropped (other instances may have changed things).
- While up, each probe also refreshes this instance's heartbeat and learns how many
  instances share the Redis; while down, limits are divided by that number.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from dataclasses import dataclass
from typing import Any

import trio

from authly.backends.redis import PREFIX, RedisCache, RedisRateLimiter, RedisSessionStore
from authly.backends.slot import CacheSlot, RateLimiterSlot, SessionSlot, Slot
from authly.config import RedisSettings
from authly.errors import BackendUnavailable
from authly.metrics import Metrics
from authly.redis.actor import RedisActor

log = logging.getLogger("authly.supervisor")

MAX_BACKOFF = 1.0
FEATURE_LOG = {
    "rate_limit": "Using Redis rate limiting backend",
    "cache": "Using Redis caching backend",
    "session": "Using Redis session backend",
}


@dataclass(frozen=True)
class Switch:
    time: float
    feature: str
    from_backend: str
    to_backend: str
    reason: str

    def as_json(self) -> dict[str, Any]:
        return {
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.time)),
            "feature": self.feature,
            "from": self.from_backend,
            "to": self.to_backend,
            "reason": self.reason,
        }


class Supervisor:
    def __init__(
        self,
        settings: RedisSettings,
        actor: RedisActor,
        *,
        rate_limit: RateLimiterSlot,
        cache: CacheSlot,
        sessions: SessionSlot,
        metrics: Metrics,
        good_probes: int = 2,
    ) -> None:
        self.settings = settings
        self.actor = actor
        self.metrics = metrics
        self.good_probes = good_probes
        self.state = "connecting"
        self.instances_seen = 1
        self.last_switch: Switch | None = None
        self.instance_id = f"{os.getpid()}-{secrets.token_hex(4)}"
        self._interval = settings.health_interval_ms / 1000
        self._op_timeout = settings.op_timeout_ms / 1000
        self._wake = trio.Event()
        self._rate_limit = rate_limit
        self._cache = cache
        self._sessions = sessions
        self._redis_limiter = RedisRateLimiter(actor)
        self._redis_cache = RedisCache(actor)
        self._redis_sessions = RedisSessionStore(actor)
        self._managed: list[tuple[Slot[Any, Any], Any]] = []
        for slot, impl in (
            (rate_limit, self._redis_limiter),
            (cache, self._redis_cache),
            (sessions, self._redis_sessions),
        ):
            if settings.uses_redis(slot.feature):
                self._managed.append((slot, impl))
                slot.on_failure = self.report_failure
        rate_limit.instances = lambda: self.instances_seen

    @property
    def available(self) -> bool:
        return self.state == "up"

    def report_failure(self, error: BaseException) -> None:
        """Called when a Redis call failed: the breaker.

        The failure is evidence enough, so the switch to memory happens here and now
        (before the failing request makes its next call), and the loop is woken to
        start probing for the way back. Waiting for a probe instead would cost every
        request another op timeout while Redis hangs.
        """
        if self.state == "up":
            self._go_down(f"request failed: {error}")
        self._wake.set()

    async def run(
        self, *, task_status: trio.TaskStatus[trio.CancelScope] = trio.TASK_STATUS_IGNORED
    ) -> None:
        with trio.CancelScope() as scope:
            if await self._probe(self.settings.connect_timeout):
                log.info("Redis connection initialized successfully")
                log.info("Redis integration enabled")
                await self._go_up("startup", announce=True)
            else:
                log.warning("Redis connection failed, falling back to memory")
                log.warning("using memory backends")
                self._go_down("startup: Redis unreachable")
            task_status.started(scope)
            while True:
                if self.state == "up":
                    await self._watch_up()
                else:
                    await self._recover()

    async def _watch_up(self) -> None:
        with trio.move_on_after(self._interval):
            await self._wake.wait()
        self._wake = trio.Event()
        if self.state == "up" and not await self._probe(self._op_timeout):
            self._go_down("health probe failed")

    async def _recover(self) -> None:
        backoff = self._interval
        good = 0
        while good < self.good_probes:
            await trio.sleep(backoff if good == 0 else min(self._interval, 0.2))
            self.state = "probing"
            if await self._probe(self._op_timeout):
                good += 1
            else:
                good = 0
                self.state = "down"
                backoff = min(backoff * 2, MAX_BACKOFF)
        self._wake = trio.Event()
        await self._go_up("Redis answered again")

    async def _probe(self, timeout: float) -> bool:
        try:
            ok = await self.actor.execute("PING", timeout=timeout) is True
            if ok:
                seen, data_lost = await self.actor.run_script(
                    "heartbeat",
                    [PREFIX + "instances", PREFIX + "epoch"],
                    [self.instance_id, max(int(self._interval * 3000), 3000)],
                    timeout=timeout,
                )
                self.instances_seen = int(seen)
                if int(data_lost) and self.state == "up":
                    # Redis restarted empty between two probes (or was flushed) without
                    # any call failing: put back what this instance knows.
                    log.warning("Redis lost its data; merging local rate-limit windows back")
                    await self._merge_rate_limits()
        except BackendUnavailable:
            ok = False
        self.metrics.redis_up.set(1 if ok else 0)
        self.metrics.redis_connections_active.set(self.actor.statistics().connections)
        return ok

    def _switch(self, slot: Slot[Any, Any], impl: Any, reason: str) -> None:
        previous = slot.backend_name
        slot.swap(impl)
        record = Switch(time.time(), slot.feature, previous, slot.backend_name, reason)
        self.last_switch = record
        self.metrics.set_backend(slot.feature, record.to_backend)
        self.metrics.backend_switches.labels(slot.feature, record.to_backend).inc()
        log.warning(
            "Backend switch: feature=%s from=%s to=%s reason=%s",
            record.feature,
            record.from_backend,
            record.to_backend,
            reason,
        )

    def _go_down(self, reason: str) -> None:
        self.state = "down"
        self.metrics.redis_up.set(0)
        for slot, _ in self._managed:
            if slot.current is not slot.memory:
                self._switch(slot, slot.memory, reason)

    async def _go_up(self, reason: str, *, announce: bool = False) -> None:
        sessions_mark = await self._copy_sessions(0)
        self.state = "up"
        for slot, impl in self._managed:
            if slot.current is not impl:
                self._switch(slot, impl, reason)
            if announce:
                log.info(FEATURE_LOG[slot.feature])
        # Second pass: sessions written to memory between the first copy and the swap.
        await self._copy_sessions(sessions_mark, clear=True)
        await self._merge_rate_limits()
        if self.settings.cache:
            self._cache.memory.clear()

    async def _copy_sessions(self, since: int, *, clear: bool = False) -> int:
        if not self.settings.session:
            return since
        items, mark = self._sessions.memory.export(since)
        try:
            for session_id, data, ttl in items:
                await self._redis_sessions.set(session_id, data, ttl)
        except BackendUnavailable:
            log.warning("could not copy %d sessions to Redis; kept in memory", len(items))
            return since
        if clear:
            self._sessions.memory.clear()
        if items:
            log.info("copied %d sessions from memory to Redis", len(items))
        return mark

    async def _merge_rate_limits(self) -> None:
        if not self.settings.rate_limit:
            return
        windows = self._rate_limit.memory.export()
        try:
            for key, window, hits in windows:
                await self._redis_limiter.merge(key, window, hits)
        except BackendUnavailable:
            log.warning("could not merge rate-limit windows into Redis")
            return
        if windows:
            log.info("merged %d rate-limit windows into Redis", len(windows))
