"""The public helpers under asyncio, as the user guide's Python example uses them.

The guide's example runs ``get_rate_limit_backend()`` under ``asyncio.run`` and catches
the refusal; here its ``except`` clause names our exception
(``authly.errors.RateLimitExceeded``, also exported by ``authly.core.backend_factory``).
Under asyncio the backends live in a Trio run in a thread of its own per asyncio loop
(core/asyncio_host.py): the same Redis-or-memory choice and failover, and nothing left
running once the loop is gone.
"""

from __future__ import annotations

import asyncio
import re
import sys
import textwrap
import threading
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
import trio

from authly.core import asyncio_host, backend_factory
from authly.core.asyncio_host import THREAD_NAME, BackendsClosed
from authly.core.backend_factory import (
    get_cache_backend,
    get_rate_limit_backend,
    get_session_backend,
)
from authly.errors import ConfigError, RateLimitExceeded
from tests.redis_server import requires_redis

# The guide's example ("Python Client Example"), its except clause pointing at our exception.
GUIDE_EXAMPLE = textwrap.dedent(
    """
    import asyncio
    from authly.core.backend_factory import get_rate_limit_backend
    from authly.errors import RateLimitExceeded

    async def example_rate_limiting():
        # Get backend (automatically uses Redis if configured)
        backend = await get_rate_limit_backend()

        # Check rate limit
        try:
            await backend.check_rate_limit("user:123", max_requests=10, window_seconds=60)
            print("Request allowed")
        except RateLimitExceeded:
            print("Rate limit exceeded")

    # Run example
    asyncio.run(example_rate_limiting())
    """
)

Main = Callable[[], Coroutine[Any, Any, Any]]


def run_plain(main: Main) -> Any:
    """asyncio's own loop (no trio-asyncio policy)."""
    with asyncio.Runner(loop_factory=asyncio.SelectorEventLoop) as runner:
        return runner.run(main())


def run_default(main: Main) -> Any:
    """``asyncio.run`` as a user calls it: once Authly (hence trio-asyncio) is imported,
    that is trio-asyncio's loop."""
    return asyncio.run(main())


RUNNERS = pytest.mark.parametrize("run", [run_default, run_plain], ids=["asyncio.run", "plain"])


def helper_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == THREAD_NAME]


@pytest.fixture(autouse=True)
def _memory_by_default(monkeypatch):
    monkeypatch.delenv("AUTHLY_REDIS_URL", raising=False)
    yield
    asyncio_host.stop_all()
    assert helper_threads() == []


async def hit(backend: backend_factory.EnforcingRateLimiter, times: int) -> tuple[int, int]:
    """(allowed, refused) for ``times`` hits on user:123 at 10 per minute."""
    allowed = 0
    refusals: list[RateLimitExceeded] = []
    for _ in range(times):
        try:
            await backend.check_rate_limit("user:123", max_requests=10, window_seconds=60)
            allowed += 1
        except RateLimitExceeded as exc:
            refusals.append(exc)
    assert all(exc.status_code == 429 for exc in refusals)
    assert all(int(exc.headers()["Retry-After"]) >= 1 for exc in refusals)
    return allowed, len(refusals)


@RUNNERS
def test_guide_example_under_asyncio_on_memory(run, capsys):
    async def main() -> str:
        for _ in range(11):
            await example_rate_limiting()
        return (await get_rate_limit_backend()).slot.backend_name

    # The guide's coroutine, defined here as the script defines it.
    namespace: dict[str, Any] = {}
    exec(GUIDE_EXAMPLE.split("# Run example")[0], namespace)  # noqa: S102 - the guide's code
    example_rate_limiting = namespace["example_rate_limiting"]

    assert run(main) == "memory"
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["Request allowed"] * 10 + ["Rate limit exceeded"]
    assert helper_threads() == []  # the loop's end stopped the backends' thread


@RUNNERS
def test_all_three_helpers_under_asyncio(run):
    async def main() -> None:
        limiter = await get_rate_limit_backend()
        assert await hit(limiter, 12) == (10, 2)
        decision = await (await get_rate_limit_backend()).check_rate_limit("other", 1, 60)
        assert decision.allowed
        assert decision.member is not None
        await limiter.refund("other", decision.member)  # the refunded hit frees the window
        assert (await limiter.check_rate_limit("other", 1, 60)).allowed
        with pytest.raises(RateLimitExceeded) as caught:
            await limiter.check_rate_limit("other", 1, 60)
        assert caught.value.retry_after >= 1

        cache = await get_cache_backend()
        assert cache.backend_name == "memory"
        assert await cache.get("k") is None
        await cache.set("k", "v", 60)
        assert await cache.get("k") == "v"
        assert await cache.exists("k")
        await cache.delete("k")
        assert not await cache.exists("k")

        sessions = await get_session_backend()
        await sessions.set("s", {"a": "b"}, 60)
        assert await sessions.get("s") == {"a": "b"}
        assert await sessions.touch("s", 120)
        assert await sessions.add("p1", {"x": "1"}, 60, pool="pending", max_entries=1) == 0
        assert await sessions.add("p2", {"x": "2"}, 60, pool="pending", max_entries=1) == 1
        taken = await asyncio.gather(*(sessions.take("p2", pool="pending") for _ in range(5)))
        assert taken.count({"x": "2"}) == 1  # one-shot
        assert taken.count(None) == 4
        await sessions.delete("s")
        assert await sessions.get("s") is None
        assert not await sessions.touch("s", 60)

    run(main)


def test_one_set_of_backends_per_loop():
    async def hits_left() -> int:
        backend = await get_rate_limit_backend()
        return (await backend.check_rate_limit("user:1", 3, 60)).remaining

    async def same_loop() -> list[int]:
        # Concurrent first callers share the one build of this loop.
        return list(await asyncio.gather(*(hits_left() for _ in range(3))))

    assert sorted(run_default(same_loop)) == [0, 1, 2]
    assert run_default(hits_left) == 2  # a new loop, new (memory) backends
    assert helper_threads() == []


def test_a_backend_kept_past_its_loop_says_so():
    async def keep() -> backend_factory.EnforcingRateLimiter:
        return await get_rate_limit_backend()

    kept = run_default(keep)

    async def reuse() -> None:
        with pytest.raises(BackendsClosed):
            await kept.check_rate_limit("user:123", 10, 60)

    run_default(reuse)


def test_a_loop_closed_without_cancelling_its_tasks_is_cleaned_up():
    loop = asyncio.SelectorEventLoop()
    try:
        backend = loop.run_until_complete(get_rate_limit_backend())
        assert loop.run_until_complete(backend.check_rate_limit("k", 1, 60)).allowed
        assert len(helper_threads()) == 1
    finally:
        loop.close()  # its tasks (the keeper) left pending
    asyncio_host.stop_all()  # what atexit (or the next loop's first helper call) does
    assert helper_threads() == []


def test_the_next_loop_sweeps_a_closed_one():
    loop = asyncio.SelectorEventLoop()
    try:
        loop.run_until_complete(get_rate_limit_backend())
    finally:
        loop.close()
    [left] = helper_threads()

    async def main() -> None:
        await get_rate_limit_backend()

    run_plain(main)
    left.join(10)
    assert not left.is_alive()


def test_cancelling_an_asyncio_caller_cancels_the_call():
    async def main() -> None:
        sessions = await get_session_backend()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0):
                await sessions.get("s")
        await sessions.set("s", {"a": "b"}, 60)  # the backends are unharmed
        assert await sessions.get("s") == {"a": "b"}

    run_default(main)


def test_a_bad_setting_raises_config_error_under_asyncio(monkeypatch):
    monkeypatch.setenv("AUTHLY_REDIS_POOL_SIZE", "abc")

    async def main() -> None:
        with pytest.raises(ConfigError) as caught:
            await get_rate_limit_backend()
        assert caught.value.variable == "AUTHLY_REDIS_POOL_SIZE"

    run_default(main)
    assert helper_threads() == []


@pytest.mark.redis
@requires_redis
async def test_guide_example_in_a_script_with_redis(redis_server):
    # A separate process, exactly like a user's script: env in, asyncio.run, helpers.
    env = {
        "PATH": "/usr/bin:/bin",
        "AUTHLY_REDIS_URL": redis_server.url,
        "AUTHLY_REDIS_RATE_LIMIT": "true",
    }
    script = GUIDE_EXAMPLE.replace(
        "asyncio.run(example_rate_limiting())",
        "for _ in range(6):\n    asyncio.run(example_rate_limiting())",
    )
    outputs = []
    for _ in range(2):  # two processes (twelve loops) share the window in Redis
        result = await trio.run_process(
            [sys.executable, "-c", script],
            env=env,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr.decode()
        assert b"Backend switch: feature=rate_limit from=memory to=redis" in result.stderr
        outputs += result.stdout.decode().splitlines()
    assert outputs == ["Request allowed"] * 10 + ["Rate limit exceeded"] * 2


@pytest.mark.redis
@requires_redis
async def test_redis_fallback_under_asyncio_never_fails_open(redis_server, monkeypatch):
    monkeypatch.setenv("AUTHLY_REDIS_URL", redis_server.url)
    monkeypatch.setenv("AUTHLY_REDIS_RATE_LIMIT", "true")
    monkeypatch.setenv("AUTHLY_REDIS_CACHE", "true")

    async def main() -> tuple[list[str], int, int, str | None]:
        backend = await get_rate_limit_backend()
        cache = await get_cache_backend()
        names = [backend.slot.backend_name, cache.backend_name]
        before = await hit(backend, 5)
        await cache.set("k", "v", 60)
        redis_server.close()  # SIGKILL, mid-run
        after = await hit(backend, 10)  # every call answered, from memory
        await cache.set("k2", "v2", 60)
        value = await cache.get("k2")
        async with asyncio.timeout(5):  # the supervisor switches (it does not wait for us)
            while "redis" in (backend.slot.backend_name, cache.backend_name):
                await asyncio.sleep(0.01)
        names += [backend.slot.backend_name, cache.backend_name]
        return names, before[0] + after[0], before[1] + after[1], value

    names, allowed, refused, value = await trio.to_thread.run_sync(run_default, main)
    assert names == ["redis", "redis", "memory", "memory"]
    assert (allowed, refused) == (10, 5)  # the hits made on Redis still count
    assert value == "v2"
    assert helper_threads() == []


def python_blocks(path: Path, first_line: str) -> list[str]:
    text = path.read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
    return [b for b in blocks if b.startswith(first_line)]


@pytest.mark.parametrize("first_line", ["import asyncio", "import trio"])
def test_the_examples_in_docs_redis_md_run(first_line, capsys):
    blocks = python_blocks(Path(__file__).resolve().parents[1] / "docs" / "redis.md", first_line)
    assert len(blocks) == 1
    for _ in range(2):  # each run is a new loop: new memory backends, the first hit allowed
        exec(blocks[0], {"__name__": "__main__"})  # noqa: S102 - the documented code
    assert "Rate limit exceeded" not in capsys.readouterr().out
