"""Every Prometheus metric Authly exports, in one place, on a registry per app.

Label sets are bounded: routes are URL rules (never raw paths), features and backends
are fixed names.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from authly.store.db import Database
from authly.store.purge import KINDS as PURGED_KINDS

FEATURES = ("rate_limit", "cache", "session")
BACKENDS = ("memory", "redis", "database")  # database: sessions in the store
BACKCHANNEL_RESULTS = ("delivered", "failed", "dropped")

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
        self.cache_hits = Counter("authly_redis_cache_hits", "Cache hits", registry=r)
        self.cache_misses = Counter("authly_redis_cache_misses", "Cache misses", registry=r)
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
        for result in ("allowed", "denied"):
            self.rate_limit_decisions.labels(result)
        for seen_by in ("health_probe", "request"):
            self.redis_failures.labels(seen_by)

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

    def count_lookup(self, hit: bool) -> None:
        (self.cache_hits if hit else self.cache_misses).inc()

    def watch_store(self, db: Database) -> None:
        """Time every store call of ``db`` and read its pool at each scrape."""
        db.observe = self.store_query_duration.labels(db.backend).observe
        self.store_pool_size.set_function(lambda: db.stats()["size"])
        self.store_pool_in_use.set_function(lambda: db.stats()["in_use"])

    def render(self) -> bytes:
        return generate_latest(self.registry)
