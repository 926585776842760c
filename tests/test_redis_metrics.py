"""The guide's monitoring through a real app's /metrics (issue 11, item 4): lower-case
operation labels, Redis latency and pipeline sizes, the pool gauges while Redis is down,
and cache hits/misses by cache name and by the backend that answered."""

from __future__ import annotations

from typing import Any

import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families

from authly.factory import create_app
from authly.metrics import CACHE_BACKENDS, CACHE_NAMES, cache_name
from tests.conftest import login, services_of
from tests.supervisor_helpers import (
    HANG,
    metrics_text,
    redis_settings,
    steady_redis_settings,
    wait_all,
)

WELL_KNOWN = {
    "jwks": "/.well-known/jwks.json",
    "discovery": "/.well-known/openid-configuration",
    "metadata": "/.well-known/oauth-authorization-server",
}

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(text: str) -> Samples:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def get(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def lookups(samples: Samples) -> dict[tuple[str, str, str], float]:
    """(hits|misses, cache, backend) -> count."""
    return {
        (kind, name, backend): get(
            samples, f"authly_cache_{kind}_total", cache=name, backend=backend
        )
        for kind in ("hits", "misses")
        for name in CACHE_NAMES
        for backend in CACHE_BACKENDS
    }


def delta(before: Samples, after: Samples) -> dict[tuple[str, str, str], float]:
    old = lookups(before)
    return {key: count - old[key] for key, count in lookups(after).items() if count != old[key]}


async def fetch_twice(client: Any, cache: str) -> None:
    for _ in range(2):
        assert (await client.get(WELL_KNOWN[cache])).status_code == 200


def test_cache_names_come_from_the_key():
    assert cache_name("jwks") == "jwks"
    assert cache_name("metadata:openid-configuration") == "discovery"
    assert cache_name("metadata:oauth-authorization-server") == "metadata"
    assert cache_name("user:0b5c") == "profile"
    assert cache_name("revoked:jti-1") == "revocation"
    assert cache_name("user") == "profile"
    assert cache_name("metadata:something-new") == "other"
    assert cache_name("rate:k") == "other"
    assert cache_name("") == "other"
    assert set(CACHE_NAMES) == {"jwks", "discovery", "metadata", "profile", "revocation", "other"}


async def test_cache_lookups_on_memory_are_counted_by_name(client):
    before = scrape(await metrics_text(client))
    await fetch_twice(client, "jwks")
    await fetch_twice(client, "discovery")
    after = scrape(await metrics_text(client))
    changed = delta(before, after)
    for cache in ("jwks", "discovery"):
        # The first request may fill the cache (a miss); the second one hits it.
        hits = changed.get(("hits", cache, "memory"), 0)
        assert hits >= 1
        assert hits + changed.get(("misses", cache, "memory"), 0) == 2
    assert all(backend == "memory" for _, _, backend in changed)
    # The design's totals count every cache on every backend.
    for kind in ("hits", "misses"):
        total = after[(f"authly_redis_cache_{kind}_total", ())]
        total -= before[(f"authly_redis_cache_{kind}_total", ())]
        assert total == sum(v for (k, _, _), v in changed.items() if k == kind)
    for feature in ("rate_limit", "cache", "session"):
        assert get(after, "authly_redis_feature_enabled", feature=feature) == 0
    assert get(after, "authly_redis_pool_size") == 0


@pytest.mark.redis
async def test_redis_metrics_after_real_traffic(tmp_path, redis_server):
    app = create_app(steady_redis_settings(tmp_path, redis_server.url))
    async with app.test_app() as test_app:
        client = test_app.test_client()
        before = scrape(await metrics_text(client))
        for cache in WELL_KNOWN:
            await fetch_twice(client, cache)
        tokens = await (await login(client)).get_json()
        bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
        for _ in range(2):
            assert (await client.get("/api/v1/users/me", headers=bearer)).status_code == 200
        await login(client, password="wrong-password")
        after = scrape(await metrics_text(client))
        services = services_of(test_app)

    # Cache lookups by name, all answered by Redis.
    changed = delta(before, after)
    for cache in (*WELL_KNOWN, "profile"):
        assert changed.get(("hits", cache, "redis"), 0) >= 1, (cache, changed)
    for cache in WELL_KNOWN:
        assert changed[("hits", cache, "redis")] + changed.get(("misses", cache, "redis"), 0) == 2
    assert all(backend == "redis" for _, _, backend in changed), changed
    for kind in ("hits", "misses"):
        total = after[(f"authly_redis_cache_{kind}_total", ())]
        total -= before[(f"authly_redis_cache_{kind}_total", ())]
        assert total == sum(v for (k, _, _), v in changed.items() if k == kind)

    # Operations: lower-case command names, as the user guide shows.
    operations = {
        dict(labels)["operation"]: v
        for (name, labels), v in after.items()
        if name == "authly_redis_operations_total"
    }
    assert {"get", "set", "evalsha", "ping"} <= set(operations), operations
    assert all(op == op.lower() for op in operations), operations

    # Latency per operation and pipeline sizes were observed.
    for operation in ("get", "evalsha", "ping"):
        count = get(after, "authly_redis_operation_duration_seconds_count", operation=operation)
        assert 1 <= count <= operations[operation]
        labels = {"operation": operation, "le": "+Inf"}
        assert get(after, "authly_redis_operation_duration_seconds_bucket", **labels) == count
    pipelines = get(after, "authly_redis_pipeline_size_count")
    assert pipelines >= 1
    assert get(after, "authly_redis_pipeline_size_sum") >= pipelines
    assert get(after, "authly_redis_pipeline_size_sum") <= sum(operations.values())

    # Pool gauges: the setting, at least one open connection, none lent while idle.
    assert get(after, "authly_redis_pool_size") == services.supervisor.actor.pool_size == 10
    assert get(after, "authly_redis_connections_active") >= 1
    assert get(after, "authly_redis_connections_in_use") in (0, 1)  # a probe may be out
    for feature in ("rate_limit", "cache", "session"):
        assert get(after, "authly_redis_feature_enabled", feature=feature) == 1
    assert sum(get(after, "authly_redis_errors_total", kind=k) for k in ("timeout", "auth")) == 0


@pytest.mark.redis
async def test_pool_gauges_and_cache_backend_while_redis_is_down(tmp_path, redis_server):
    app = create_app(redis_settings(tmp_path, redis_server.url))
    async with app.test_app() as test_app:
        client = test_app.test_client()
        services = services_of(test_app)
        await fetch_twice(client, "jwks")
        up = scrape(await metrics_text(client))
        assert get(up, "authly_redis_connections_active") >= 1
        assert get(up, "authly_redis_up") == 1

        await redis_server.kill()
        await wait_all(services, "memory")
        # While Redis is down: no open connection (the dead ones are not counted), none
        # lent but for a probe's connection attempt in flight, the pool size unchanged.
        with trio.fail_after(HANG):
            while True:
                down = scrape(await metrics_text(client))
                assert get(down, "authly_redis_connections_active") == 0
                assert get(down, "authly_redis_pool_size") == 10
                if get(down, "authly_redis_connections_in_use") == 0:
                    break
                await trio.sleep(0.01)
        assert get(down, "authly_redis_up") == 0
        assert get(down, "authly_redis_errors_total", kind="connection") >= 1
        assert get(down, "authly_backend_active", feature="cache", backend="memory") == 1

        # The cache now answers from memory: counted under backend="memory".
        await fetch_twice(client, "jwks")
        after = scrape(await metrics_text(client))
        changed = delta(down, after)
        assert set(changed) <= {("hits", "jwks", "memory"), ("misses", "jwks", "memory")}
        assert sum(changed.values()) == 2
