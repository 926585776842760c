"""Every Prometheus metric Authly exports, in one place, on a registry per app.

Label sets are bounded: routes are URL rules (never raw paths), features and backends
are fixed names, Redis operations are the command names Authly sends (lower case), error
kinds are ``authly.redis.observer.ERROR_KINDS`` and cache names come from
``CACHE_NAMES``.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from authly.redis.observer import ERROR_KINDS, RedisObserver
from authly.store.db import Database
from authly.store.purge import KINDS as PURGED_KINDS

if TYPE_CHECKING:
    from authly.redis.actor import ActorStatistics

FEATURES = ("rate_limit", "cache", "session")
BACKENDS = ("memory", "redis", "database")  # database: sessions in the store
BACKCHANNEL_RESULTS = ("delivered", "failed", "dropped")
CACHE_BACKENDS = ("memory", "redis")
# The cache name of a cache key (label ``cache`` of authly_cache_hits/misses_total): whole
# keys first, then the part before the first ":"; anything else is "other".
CACHE_KEYS = {
    "jwks": "jwks",  # /.well-known/jwks.json
    "metadata:openid-configuration": "discovery",  # /.well-known/openid-configuration
    "metadata:oauth-authorization-server": "metadata",  # RFC 8414
}
CACHE_PREFIXES = {
    "user": "profile",  # user:<id>, the profile behind /api/v1/users/me and userinfo
    "revoked": "revocation",  # revoked:<jti>, the revocation list
}
CACHE_NAMES = (*dict.fromkeys([*CACHE_KEYS.values(), *CACHE_PREFIXES.values()]), "other")
REDIS_LATENCY_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)
PIPELINE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


def cache_name(key: str) -> str:
    """``user:42`` -> ``profile``; ``jwks`` -> ``jwks``; an unknown key -> ``other``."""
    name = CACHE_KEYS.get(key)
    if name is None:
        name = CACHE_PREFIXES.get(key.split(":", 1)[0], "other")
    return name


CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.http_requests = Counter(
            "authly_http_requests",
            "HTTP requests by route, method and status",
            ["route", "method", "status"],
            registry=r,
        )
        self.http_latency = Histogram(
            "authly_http_request_duration_seconds",
            "HTTP request latency by route",
            ["route", "method"],
            registry=r,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
        )
        self.rate_limit_decisions = Counter(
            "authly_rate_limit_decisions", "Rate limit decisions", ["result"], registry=r
        )
        self.rate_limit_evictions = Counter(
            "authly_rate_limit_evictions",
            "Expired or empty in-memory rate-limit windows evicted to make room for a new key",
            registry=r,
        )
        self.rate_limit_table_full = Counter(
            "authly_rate_limit_table_full",
            "Hits refused (or Redis shadows dropped) because the in-memory rate-limit table"
            " was full of live windows",
            registry=r,
        )
        self.rate_limit_instances = Gauge(
            "authly_rate_limit_instances",
            "Instances the memory rate limiter divides each budget by (seen on the store,"
            " or on Redis before an outage)",
            registry=r,
        )
        self.rate_limit_instances.set(1)
        self.redis_connections_active = Gauge(
            "authly_redis_connections_active", "Open connections to Redis", registry=r
        )
        self.redis_operations = Counter(
            "authly_redis_operations", "Redis commands sent", ["operation"], registry=r
        )
        self.redis_operation_duration = Histogram(
            "authly_redis_operation_duration_seconds",
            "Redis commands by operation: from when the actor sent the pipeline holding"
            " the command to when the pipeline's reply arrived",
            ["operation"],
            registry=r,
            buckets=REDIS_LATENCY_BUCKETS,
        )
        self.redis_pipeline_size = Histogram(
            "authly_redis_pipeline_size",
            "Commands per pipeline the Redis actor sends",
            registry=r,
            buckets=PIPELINE_BUCKETS,
        )
        self.redis_errors = Counter(
            "authly_redis_errors",
            "Failed Redis calls by kind (timeout, connection, auth, unavailable, command,"
            " overload, other), each counted once",
            ["kind"],
            registry=r,
        )
        self.redis_pool_size = Gauge(
            "authly_redis_pool_size",
            "Connections the Redis client may open (AUTHLY_REDIS_POOL_SIZE; 0 without Redis)",
            registry=r,
        )
        self.redis_connections_in_use = Gauge(
            "authly_redis_connections_in_use",
            "Redis connections lent to a pipeline right now",
            registry=r,
        )
        self.cache_hits = Counter(
            "authly_redis_cache_hits", "Cache hits (every cache, every backend)", registry=r
        )
        self.cache_misses = Counter(
            "authly_redis_cache_misses", "Cache misses (every cache, every backend)", registry=r
        )
        self.cache_hits_by_name = Counter(
            "authly_cache_hits",
            "Cache hits by cache name and by the backend that answered",
            ["cache", "backend"],
            registry=r,
        )
        self.cache_misses_by_name = Counter(
            "authly_cache_misses",
            "Cache misses by cache name and by the backend that answered",
            ["cache", "backend"],
            registry=r,
        )
        self.redis_up = Gauge("authly_redis_up", "1 while Redis answers probes", registry=r)
        self.redis_failures = Counter(
            "authly_redis_failures",
            "Failed Redis calls, each counted once, by who saw it (health_probe, request)",
            ["seen_by"],
            registry=r,
        )
        self.backend_active = Gauge(
            "authly_backend_active",
            "1 for the backend each feature runs on",
            ["feature", "backend"],
            registry=r,
        )
        self.redis_feature_enabled = Gauge(
            "authly_redis_feature_enabled",
            "1 for each feature configured to run on Redis (AUTHLY_REDIS_URL and its"
            " AUTHLY_REDIS_<FEATURE> flag)",
            ["feature"],
            registry=r,
        )
        self.backend_pinned = Gauge(
            "authly_backend_pinned",
            "1 for a feature the operator pinned to its fallback (PUT /api/v1/admin/backends)",
            ["feature"],
            registry=r,
        )
        for feature in FEATURES:
            self.backend_pinned.labels(feature).set(0)
        self.backend_switches = Counter(
            "authly_backend_switches",
            "Backend switches per feature",
            ["feature", "to"],
            registry=r,
        )
        self.session_evictions = Counter(
            "authly_session_evictions",
            "Session-store entries evicted to keep a size bound, by pool",
            ["pool"],
            registry=r,
        )
        self.store_purged = Counter(
            "authly_store_purged",
            "Expired store rows deleted by the housekeeping task, by kind",
            ["kind"],
            registry=r,
        )
        self.store_query_duration = Histogram(
            "authly_store_query_duration_seconds",
            "Store calls (one repository function: a query or one transaction), queueing"
            " for the store's thread or pool included",
            ["backend"],
            registry=r,
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0),
        )
        self.store_pool_size = Gauge(
            "authly_store_pool_size", "Connections the store may open (SQLite: 1)", registry=r
        )
        self.store_pool_in_use = Gauge(
            "authly_store_pool_connections_in_use",
            "Store connections lent to a query right now",
            registry=r,
        )
        self.backchannel_logout = Counter(
            "authly_backchannel_logout",
            "Back-channel logout notices by result (delivered, failed, dropped)",
            ["result"],
            registry=r,
        )
        for result in BACKCHANNEL_RESULTS:
            self.backchannel_logout.labels(result)
        for kind in PURGED_KINDS:  # zero from the start, so rate() works at once
            self.store_purged.labels(kind)
        for feature in FEATURES:
            for backend in BACKENDS:
                self.backend_active.labels(feature, backend).set(0)
                self.backend_switches.labels(feature, backend)
            self.redis_feature_enabled.labels(feature).set(0)
        for result in ("allowed", "denied"):
            self.rate_limit_decisions.labels(result)
        for seen_by in ("health_probe", "request"):
            self.redis_failures.labels(seen_by)
        for kind in ERROR_KINDS:
            self.redis_errors.labels(kind)
        for cache in CACHE_NAMES:
            for backend in CACHE_BACKENDS:
                self.cache_hits_by_name.labels(cache, backend)
                self.cache_misses_by_name.labels(cache, backend)

    def set_backend(self, feature: str, backend: str) -> None:
        for name in BACKENDS:
            self.backend_active.labels(feature, name).set(1 if name == backend else 0)

    def count_decision(self, allowed: bool) -> None:
        self.rate_limit_decisions.labels("allowed" if allowed else "denied").inc()

    def count_rate_limit_eviction(self) -> None:
        self.rate_limit_evictions.inc()

    def count_rate_limit_table_full(self) -> None:
        self.rate_limit_table_full.inc()

    def count_purged(self, kind: str, rows: int) -> None:
        self.store_purged.labels(kind).inc(rows)

    def count_backchannel_logout(self, result: str) -> None:
        self.backchannel_logout.labels(result).inc()

    def count_session_eviction(self, pool: str) -> None:
        self.session_evictions.labels(pool).inc()

    def count_lookup(self, key: str, hit: bool, backend: str) -> None:
        """One cache lookup of ``key``, answered by ``backend`` (memory or redis)."""
        (self.cache_hits if hit else self.cache_misses).inc()
        by_name = self.cache_hits_by_name if hit else self.cache_misses_by_name
        if backend not in CACHE_BACKENDS:
            backend = "memory"
        by_name.labels(cache_name(key), backend).inc()

    def redis_observer(self) -> RedisObserver:
        """The hooks the Redis actor calls (``RedisActor(observer=...)``)."""
        return _RedisMetrics(self)

    def watch_redis(self, pool_size: int, statistics: Callable[[], ActorStatistics]) -> None:
        """Read the Redis actor's pool at each scrape (so never stale while Redis is down)."""
        self.redis_pool_size.set(pool_size)
        self.redis_connections_active.set_function(lambda: statistics().connections)
        self.redis_connections_in_use.set_function(lambda: statistics().in_use)

    def watch_store(self, db: Database) -> None:
        """Time every store call of ``db`` and read its pool at each scrape."""
        db.observe = self.store_query_duration.labels(db.backend).observe
        self.store_pool_size.set_function(lambda: db.stats()["size"])
        self.store_pool_in_use.set_function(lambda: db.stats()["in_use"])

    def value(self, name: str, **labels: str) -> float:
        """One sample's current value (0 when it has none yet): for the status page."""
        return self.registry.get_sample_value(name, labels) or 0.0

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _RedisMetrics(RedisObserver):
    """Feeds the Redis metrics from the actor's hooks; label children cached (hot path)."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics
        self._operations: dict[str, Any] = {}
        self._durations: dict[str, Any] = {}

    def command(self, operation: str) -> None:
        child = self._operations.get(operation)
        if child is None:
            child = self._operations[operation] = self._metrics.redis_operations.labels(operation)
        child.inc()

    def pipeline(self, size: int) -> None:
        self._metrics.redis_pipeline_size.observe(size)

    def replied(self, operations: Sequence[str], seconds: float) -> None:
        histogram = self._metrics.redis_operation_duration
        for operation, count in Tally(operations).items():
            child = self._durations.get(operation)
            if child is None:
                child = self._durations[operation] = histogram.labels(operation)
            for _ in range(count):
                child.observe(seconds)

    def error(self, kind: str) -> None:
        self._metrics.redis_errors.labels(kind if kind in ERROR_KINDS else "other").inc()
