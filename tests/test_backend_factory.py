"""The public helpers of the user guide, used as the guide shows: under trio.run."""

from __future__ import annotations

import sys
import textwrap

import pytest
import trio

from authly.core.backend_factory import (
    get_cache_backend,
    get_rate_limit_backend,
    get_session_backend,
)
from authly.errors import RateLimitExceeded
from tests.conftest import services_of
from tests.redis_server import requires_redis


async def test_helpers_on_memory_enforce_and_raise_429(monkeypatch):
    monkeypatch.delenv("AUTHLY_REDIS_URL", raising=False)
    backend = await get_rate_limit_backend()
    assert backend.name == "memory"
    for _ in range(10):
        await backend.check_rate_limit("user:123", max_requests=10, window_seconds=60)
    with pytest.raises(RateLimitExceeded) as caught:
        await backend.check_rate_limit("user:123", max_requests=10, window_seconds=60)
    assert caught.value.status_code == 429
    assert int(caught.value.headers()["Retry-After"]) >= 1
    assert await get_rate_limit_backend() is not backend  # wrappers are cheap...
    assert (await get_rate_limit_backend()).slot is backend.slot  # ...over one slot per run
    cache = await get_cache_backend()
    await cache.set("k", "v", 60)
    assert await cache.get("k") == "v"
    sessions = await get_session_backend()
    await sessions.set("s", {"a": "b"}, 60)
    assert await sessions.get("s") == {"a": "b"}


async def test_inside_a_serving_app_the_helpers_share_its_slots(app):
    """Custom code running beside a serving app gets the app's own slots, so its limits
    are the server's limits."""
    services = services_of(app)
    assert (await get_rate_limit_backend()).slot is services.rate_limit
    assert await get_cache_backend() is services.cache
    assert await get_session_backend() is services.sessions


@pytest.mark.redis
@requires_redis
async def test_helpers_use_redis_from_a_plain_trio_run(redis_server):
    # A separate process, exactly like a user's script: env in, trio.run, helpers.
    script = textwrap.dedent(
        """
        import trio
        from authly.core.backend_factory import get_rate_limit_backend
        from authly.errors import RateLimitExceeded

        async def main():
            backend = await get_rate_limit_backend()
            allowed = 0
            for _ in range(15):
                try:
                    await backend.check_rate_limit("user:123", max_requests=10, window_seconds=60)
                    allowed += 1
                except RateLimitExceeded as exc:
                    assert exc.status_code == 429
            print(backend.name, allowed)

        trio.run(main)
        """
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "AUTHLY_REDIS_URL": redis_server.url,
        "AUTHLY_REDIS_RATE_LIMIT": "true",
    }
    for _ in range(2):  # the second process sees the first one's hits in Redis
        result = await trio.run_process(
            [sys.executable, "-c", script],
            env=env,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode().split() == ["redis", "0"]
