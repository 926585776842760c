"""The supervisor: watches Redis and hot-swaps each Redis-enabled feature.

States: ``connecting -> up -> down -> probing -> up ...``

This task alone decides and performs every switch, copy and merge, one after the other,
and records the reason (DESIGN §5 "Ownership"). The request path only answers its own
call from memory and trips the slots' shared ``Breaker`` (so the next calls go straight
to memory); the actor only raises ``BackendUnavailable``.

- Start-up: one PING with AUTHLY_REDIS_TIMEOUT decides the first backends; ``run``
  reports readiness (``task_status.started``) only after that, so the app never serves
  before a backend is chosen. Redis down at boot is not fatal: memory, and keep probing.
- Up: PING (+ heartbeat) every AUTHLY_REDIS_HEALTH_INTERVAL_MS, or at once when the
  breaker trips. A failed probe switches every Redis feature to memory; the reason names
  who saw the failure first: ``request failed: <error>`` when the breaker had tripped,
  ``health probe failed: <error>`` otherwise. A tripped breaker whose probe passes is a
  false alarm: what was written to memory meanwhile is carried back, the breaker closes,
  and nothing switches.
- Down: probe with backoff (interval doubling, capped at 1 s so a returning Redis is
  used within ≈ 2 s); after ``good_probes`` consecutive successes, carry state over
  (backends/reconcile.py) and switch back (reason ``redis recovered``).
- While up, each probe refreshes this instance's heartbeat and pushes the number of
  instances sharing the Redis to the rate-limit slot (limits are divided by it on memory).
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import trio

from authly.backends.reconcile import REDIS_ERRORS, Reconciler
from authly.backends.records import LastError, Switch
from authly.backends.redis import RedisCache, RedisRateLimiter, RedisSessionStore, fleet_keys
from authly.backends.slot import (
    Breaker,
    CacheSlot,
    FailureReport,
    RateLimiterSlot,
    SessionSlot,
    Slot,
)
from authly.config import RedisSettings
from authly.errors import BackendUnavailable, StoreError
from authly.metrics import Metrics
from authly.redis.actor import ConnectionLost, RedisActor, mask_password

log = logging.getLogger("authly.supervisor")

# Reads the features the operator pinned to their fallback (from the store).
ReadPins = Callable[[], Awaitable[Iterable[str]]]

MAX_BACKOFF = 1.0
RECENT_SWITCHES = 20
FALLBACK_LINE = "Redis connection failed, falling back to memory: %s"
FEATURE_LOG = {
    "rate_limit": "Using Redis rate limiting backend",
    "cache": "Using Redis caching backend",
    "session": "Using Redis session backend",
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
        read_pins: ReadPins | None = None,
    ) -> None:
        self.settings = settings
        self.actor = actor
        self.metrics = metrics
        self.good_probes = good_probes
        self.state = "connecting"
        self.instances_seen = 1
        self.last_switch: Switch | None = None
        self.recent_switches: deque[Switch] = deque(maxlen=RECENT_SWITCHES)  # /status
        self.last_ping_seconds: float | None = None  # the last PING that was answered
        self.last_error: LastError | None = None
        self.breaker = Breaker()
        self.probes = 0  # probes done so far (``wait_for_probes``)
        self._probed = trio.Event()
        self.instance_id = f"{os.getpid()}-{secrets.token_hex(4)}"
        self._interval = settings.health_interval_ms / 1000
        self._op_timeout = settings.op_timeout_ms / 1000
        self._logged_error: str | None = None  # last error logged while down
        self._logged_alarm: str | None = None  # last false alarm logged while up
        self._rate_limit = rate_limit
        # Features the operator pinned to their fallback (PUT /api/v1/admin/backends),
        # read from the store at start-up and at every probe; ``pins_seen`` counts reads.
        self._read_pins = read_pins
        self.pinned: frozenset[str] = frozenset()
        self.pins_seen = 0
        self._managed: list[tuple[Slot[Any, Any], Any]] = []
        for slot, impl in (
            (rate_limit, RedisRateLimiter(actor)),
            (cache, RedisCache(actor)),
            (sessions, RedisSessionStore(actor)),
        ):
            if settings.uses_redis(slot.feature):
                self._managed.append((slot, impl))
                slot.breaker = self.breaker
        self.reconciler = Reconciler(
            actor,
            rate_limit=rate_limit if settings.uses_redis("rate_limit") else None,
            cache=cache if settings.uses_redis("cache") else None,
            sessions=sessions if settings.uses_redis("session") else None,
        )

    @property
    def available(self) -> bool:
        return self.state == "up"

    @property
    def features(self) -> frozenset[str]:
        """The features configured to use Redis (URL and flag)."""
        return frozenset(slot.feature for slot, _ in self._managed)

    def _active(self) -> list[tuple[Slot[Any, Any], Any]]:
        """The managed slots the operator has not pinned to their fallback."""
        return [(slot, impl) for slot, impl in self._managed if slot.feature not in self.pinned]

    async def _follow_operator(self) -> None:
        """Apply the operator's pins (read from the store): a newly pinned feature moves
        to its fallback now (reason ``operator``), carrying its state; a released one
        goes back to Redis with the usual carry-over (or at recovery, if Redis is down).
        A store that cannot be read keeps the pins last seen."""
        if self._read_pins is None:
            return
        try:
            wanted = frozenset(await self._read_pins()) & self.features
        except StoreError as exc:
            log.warning("cannot read the operator's backend choice, keeping it: %s", exc)
            return
        self.pins_seen += 1
        if wanted == self.pinned:
            return
        pinned, released = wanted - self.pinned, self.pinned - wanted
        self.pinned = wanted
        for feature in self.features:
            self.metrics.backend_pinned.labels(feature).set(1 if feature in wanted else 0)
        self.reconciler.enabled = self.features - wanted
        for slot, _ in self._managed:
            if slot.feature in pinned and slot.current is not slot.memory:
                await self._hand_back(slot.feature)
                self._switch(slot, slot.memory, "operator")
                await self._hand_back(slot.feature)  # what was written in between
        if released and self.state == "up":
            error = await self._promote("operator")
            if error is not None:
                self._go_down(f"health probe failed: {error}", error)

    async def wait_for_probes(self, count: int) -> None:
        """Return once ``count`` probes have been done in all (for tests and scripts)."""
        while self.probes < count:
            await self._probed.wait()

    async def run(
        self, *, task_status: trio.TaskStatus[trio.CancelScope] = trio.TASK_STATUS_IGNORED
    ) -> None:
        with trio.CancelScope() as scope:
            await self._start()
            task_status.started(scope)
            while True:
                if self.state == "up":
                    await self._watch_up()
                else:
                    await self._recover()

    async def _hand_back(self, feature: str) -> None:
        try:
            await self.reconciler.hand_back(feature)
        except (*REDIS_ERRORS, StoreError) as exc:
            log.warning("carrying %s back from Redis failed: %s", feature, exc)

    async def _start(self) -> None:
        await self._follow_operator()
        error = await self._probe(self.settings.connect_timeout)
        if error is None:
            log.info("Redis connection initialized successfully")
            log.info("Redis integration enabled")
            error = await self._promote("startup", announce=True)
            if error is None:
                return
            if self.state == "up":  # failed after the swap (not at start-up in practice)
                self._go_down(f"health probe failed: {error}", error)
                return
        self.state = "down"
        log.warning(FALLBACK_LINE, error)
        log.warning("using memory backends")
        self._logged_error = error

    async def _watch_up(self) -> None:
        with trio.move_on_after(self._interval):
            await self.breaker.wait()
        report = self._take_report()
        error = await self._probe(self._op_timeout)
        if error is None:
            await self._follow_operator()
        if error is not None:  # the reason names who saw it first; the error is the latest
            seen = f"request failed: {report.error}" if report else f"health probe failed: {error}"
            self._go_down(seen, error)
        elif self.breaker.tripped:
            if report is not None and report.error != self._logged_alarm:
                self._logged_alarm = report.error
                log.info("a Redis call failed (%s) but Redis answers its probe", report.error)
            error = await self._promote(None)
            if error is not None:
                self._go_down(f"health probe failed: {error}", error)

    async def _recover(self) -> None:
        backoff = self._interval
        good = 0
        while good < self.good_probes:
            await trio.sleep(backoff if good == 0 else min(self._interval, 0.2))
            self.state = "probing"
            await self._follow_operator()
            error = await self._probe(self._op_timeout)
            if error is None:
                good += 1
                continue
            good = 0
            self.state = "down"
            backoff = min(backoff * 2, MAX_BACKOFF)
            if error != self._logged_error:  # once per change of error, not per probe
                log.warning("Redis still unavailable: %s", error)
                self._logged_error = error
        error = await self._promote("redis recovered")
        if error is None:
            return
        if self.state == "up":  # it failed after the swap: straight back to memory
            self._go_down(f"health probe failed: {error}", error)
            return
        self.state = "down"
        log.warning("switch back to Redis called off, staying on memory: %s", error)
        self._logged_error = error

    def _take_report(self) -> FailureReport | None:
        report = self.breaker.take()
        if report is not None:
            self.metrics.redis_failures.labels("request").inc(report.count)
            self._note_error(report.error, report.time)
        return report

    def _note_error(self, error: str, when: float | None = None) -> None:
        when = time.time() if when is None else when
        if self.last_error is not None and when < self.last_error.time:
            return  # an older report, taken late
        password = self.settings.url.password if self.settings.url else None
        self.last_error = LastError(when, mask_password(error, password))

    def _own_call_failed(self, error: str) -> str:
        """Count and record a failure seen by one of this task's own calls."""
        self.metrics.redis_failures.labels("health_probe").inc()
        self.metrics.redis_up.set(0)
        self._note_error(error)
        return error

    async def _ping(self, timeout: float) -> None:
        try:
            reply = await self.actor.execute("PING", timeout=timeout)
        except ConnectionLost:
            # Maybe a connection left over from before a Redis restart: ask once more on
            # a fresh one, which also says why Redis is unusable (refused, WRONGPASS, ...).
            reply = await self.actor.execute("PING", timeout=timeout)
        if reply is not True:
            raise BackendUnavailable(f"unexpected PING reply {reply!r}")

    async def _probe(self, timeout: float) -> str | None:
        """None when Redis answered PING and the heartbeat; otherwise why not."""
        started = time.perf_counter()
        try:
            await self._ping(timeout)
            self.last_ping_seconds = time.perf_counter() - started
            seen, data_lost = await self.actor.run_script(
                "heartbeat",
                fleet_keys(self.actor),
                [self.instance_id, max(int(self._interval * 3000), 3000)],
                timeout=timeout,
            )
            self.instances_seen = int(seen)
            self._rate_limit.instances = self.instances_seen
            self.metrics.rate_limit_instances.set(self.instances_seen)
            if int(data_lost) and self.state == "up":
                # Redis restarted empty between two probes (or was flushed) without
                # any call failing: put back what this instance knows.
                log.warning("Redis lost its data; merging local rate-limit windows back")
                await self.reconciler.merge_rate_limits(force=True)
        except REDIS_ERRORS as exc:
            return self._own_call_failed(str(exc))
        finally:
            self.metrics.redis_connections_active.set(self.actor.statistics().connections)
            self.probes += 1
            self._probed.set()
            self._probed = trio.Event()
        self.metrics.redis_up.set(1)
        return None

    def _switch(self, slot: Slot[Any, Any], impl: Any, reason: str) -> None:
        previous = slot.backend_name
        slot.swap(impl)
        record = Switch(time.time(), slot.feature, previous, slot.backend_name, reason)
        self.last_switch = record
        self.recent_switches.append(record)
        self.metrics.set_backend(slot.feature, record.to_backend)
        self.metrics.backend_switches.labels(slot.feature, record.to_backend).inc()
        log.warning(
            "Backend switch: feature=%s from=%s to=%s reason=%s",
            record.feature,
            record.from_backend,
            record.to_backend,
            reason,
        )

    def _go_down(self, reason: str, error: str) -> None:
        self.state = "down"
        self.metrics.redis_up.set(0)
        log.warning(FALLBACK_LINE, error)
        self._logged_error = error
        for slot, _ in self._managed:
            if slot.current is not slot.memory:
                self._switch(slot, slot.memory, reason)
        # Failures of calls still in flight on Redis are this outage's; drop them.
        self._take_report()
        self.breaker.close()

    async def _promote(self, reason: str | None, *, announce: bool = False) -> str | None:
        """Carry memory state into Redis, then put every feature on Redis and close the
        breaker. ``reason`` None: the features are on Redis already (a false alarm).
        Returns None, or the error that stopped it (then nothing was dropped)."""
        rec = self.reconciler
        rec.begin()
        try:
            mark, _ = await rec.copy_sessions(0)
            await rec.merge_rate_limits(force=reason is not None)
            mark, quiet = await rec.copy_sessions(mark)
        except REDIS_ERRORS as exc:
            return self._own_call_failed(str(exc))
        except StoreError as exc:  # sessions fall back to the store, which failed too
            log.warning("switch back to Redis waits: the store failed: %s", exc)
            return f"store unavailable: {exc}"
        # No await from the last (quiet) export to here: nothing was written in between.
        self.state = "up"
        self.metrics.redis_up.set(1)
        self._logged_error = None
        if reason is not None:
            self._logged_alarm = None
        for slot, impl in self._active():
            if slot.current is not impl:
                self._switch(slot, impl, reason or "redis recovered")
            if announce:
                log.info(FEATURE_LOG[slot.feature])
        self.breaker.close()
        rec.settle(mark)
        try:
            if not quiet:  # writes never stopped: copy the last ones now
                mark, _ = await rec.copy_sessions(mark)
                rec.settle(mark)
            await rec.forget_copied()
            await rec.merge_rate_limits(force=reason is not None)
        except REDIS_ERRORS as exc:
            return self._own_call_failed(str(exc))
        except StoreError as exc:  # on Redis now; the copies left in the store expire
            log.warning("could not tidy the sessions carried back to Redis: %s", exc)
        return None
