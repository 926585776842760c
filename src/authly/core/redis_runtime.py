"""Build the three slots, and start the Redis actor + supervisor when configured.

Used by the app's lifecycle and by the public helpers in ``backend_factory``, so a
script gets exactly the backends (and the failover) the server has.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import trio

from authly.backends.memory import MemoryCache, MemoryRateLimiter, MemorySessionStore
from authly.backends.protocols import SessionStore
from authly.backends.records import LastError
from authly.backends.slot import CacheSlot, RateLimiterSlot, SessionSlot
from authly.config import RedisSettings, Settings
from authly.core.store_sessions import StoreSessionStore
from authly.metrics import FEATURES, Metrics
from authly.redis.actor import RedisActor, redis_dependency_available
from authly.store.db import Database
from authly.supervisor import ReadPins, Supervisor

log = logging.getLogger("authly")


@dataclass
class RedisRuntime:
    supervisor: Supervisor | None = None
    error: LastError | None = None  # why Redis was not even tried
    scopes: list[trio.CancelScope] = field(default_factory=list)


def make_slots(
    settings: Settings, metrics: Metrics, db: Database | None = None
) -> tuple[RateLimiterSlot, CacheSlot, SessionSlot]:
    """The three slots, on memory. With a store (``db``), sessions not on Redis live in
    the store instead ("Database sessions"), so every worker and instance sharing it
    sees them, and with Redis sessions on, the store is also their outage fallback
    (carried back by the supervisor). Without a store (the public helpers), process
    memory."""
    rate_limit = RateLimiterSlot(
        MemoryRateLimiter(
            max_keys=settings.rate_limit_max_keys,
            on_evict=metrics.count_rate_limit_eviction,
            on_full=metrics.count_rate_limit_table_full,
        ),
        on_decision=metrics.count_decision,
    )
    cache = CacheSlot(MemoryCache(), on_lookup=metrics.count_lookup)
    fallback: SessionStore
    if db is not None:
        fallback = StoreSessionStore(db, on_evict=metrics.count_session_eviction)
    else:
        fallback = MemorySessionStore(on_evict=metrics.count_session_eviction)
    sessions = SessionSlot(fallback, on_evict=metrics.count_session_eviction)
    for slot in (rate_limit, cache, sessions):
        metrics.set_backend(slot.feature, slot.backend_name)
        enabled = settings.redis.uses_redis(slot.feature)
        metrics.redis_feature_enabled.labels(slot.feature).set(1 if enabled else 0)
    metrics.redis_up.set(0)
    return rate_limit, cache, sessions


async def start_redis(
    nursery: trio.Nursery,
    redis: RedisSettings,
    metrics: Metrics,
    rate_limit: RateLimiterSlot,
    cache: CacheSlot,
    sessions: SessionSlot,
    read_pins: ReadPins | None = None,
) -> RedisRuntime:
    """Start the client actor and the supervisor when any feature is set to use Redis.

    The supervisor reports ready only after its first probe, so once this returns each
    feature is on the backend it should be on. The returned scopes stop both tasks.
    """
    runtime = RedisRuntime()
    if redis.url is None:
        return runtime
    if not any(redis.uses_redis(f) for f in FEATURES):
        log.info("AUTHLY_REDIS_URL is set but no Redis feature flag is on; using memory backends")
        return runtime
    if not redis_dependency_available():
        error = "Redis dependency not available (pip install 'authly[redis]')"
        runtime.error = LastError(time.time(), error)
        log.warning("Redis dependency not available")
        log.warning("Redis connection failed, falling back to memory: %s", error)
        log.warning("using memory backends")
        return runtime

    actor = RedisActor(
        redis.url,
        pool_size=redis.pool_size,
        connect_timeout=redis.connect_timeout,
        keepalive=redis.keepalive,
        op_timeout=redis.op_timeout_ms / 1000,
        observer=metrics.redis_observer(),
    )
    metrics.watch_redis(redis.pool_size, actor.statistics)
    log.info("connecting to Redis at %s", redis.url.masked())
    runtime.scopes.append(await nursery.start(actor.run))
    runtime.supervisor = Supervisor(
        redis,
        actor,
        rate_limit=rate_limit,
        cache=cache,
        sessions=sessions,
        metrics=metrics,
        read_pins=read_pins,
    )
    runtime.scopes.append(await nursery.start(runtime.supervisor.run))
    return runtime
