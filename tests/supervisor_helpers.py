"""Helpers shared by the supervisor tests: settings, waiting on slots, reading /metrics."""

from __future__ import annotations

import trio
from prometheus_client.parser import text_string_to_metric_families

from authly.redis.url import parse_redis_url
from tests.conftest import make_settings

ALL_FEATURES = {"rate_limit": True, "cache": True, "session": True}


def redis_settings(tmp_path, url: str, **redis_overrides):
    """Settings for outage tests: probes every 100 ms, and an op timeout of one second —
    a paused Redis is still noticed at once, while a loaded machine does not make a
    healthy Redis look paused (spurious switches would break what the tests check)."""
    base = make_settings(tmp_path)
    redis = base.redis.__class__(
        url=parse_redis_url(url),
        **ALL_FEATURES,
        health_interval_ms=100,
        op_timeout_ms=1_000,
        connect_timeout=2,
    )
    return base.replace(redis=redis.__class__(**{**redis.__dict__, **redis_overrides}))


def steady_redis_settings(tmp_path, url: str):
    """For tests that use Redis but are not about outages: deadlines generous enough
    that a loaded machine never sends a slow call to the memory fallback mid-test."""
    return redis_settings(
        tmp_path, url, op_timeout_ms=10_000, health_interval_ms=1_000, connect_timeout=10
    )


def on(name: str):
    return lambda impl: impl.name == name


# A hang detector for waits on switches, not a timing assertion: how fast switches
# happen is measured by scripts/chaos.py (docs/benchmarks.md).
HANG = 30.0


async def wait_all(services, name: str, timeout: float = HANG) -> None:
    """Until every slot is on ``name``; "memory" means each slot's fallback (process
    memory, or the store for sessions: "database")."""
    with trio.fail_after(timeout):
        for slot in services.slots():
            if name == "memory":
                await slot.wait_until(lambda impl, slot=slot: impl is slot.memory)
            else:
                await slot.wait_until(on(name))


FALLBACKS = ["memory", "memory", "database"]  # backend names of the slots on fallback


async def metrics_text(client) -> str:
    return (await (await client.get("/metrics")).get_data()).decode()


def sample(text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    raise AssertionError(f"no sample {name}{labels}")


def lines_with(caplog, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if text in r.getMessage()]


class Traffic:
    """Backend calls and requests in a loop while a test breaks Redis (a failover, a
    killed node): every /health answers 200 and no backend call raises (a raise fails
    the test through the nursery)."""

    def __init__(self, test_app, services) -> None:
        self.client, self.services = test_app.test_client(), services
        self.answered = 0
        self.statuses: set[int] = set()

    async def run(self, stop: trio.Event) -> None:
        n = 0
        while not stop.is_set():
            n += 1
            await self.services.sessions.set(f"traffic-{n}", {"user_id": "t"}, 300)
            await self.services.sessions.get(f"traffic-{n}")
            await self.services.rate_limit.check_rate_limit(f"traffic-{n % 7}", 1_000_000, 60)
            await self.services.cache.set(f"traffic-{n % 5}", "v", 60)
            self.statuses.add((await self.client.get("/health")).status_code)
            self.answered += 1
            await trio.sleep(0.01)
