"""A real redis-server per test, on a free loopback port (never the shared 6379).

``RedisServer`` (tests/support/processes.py's ``RedisProcess`` tied to a test's nursery)
can start, kill (SIGKILL), pause (SIGSTOP), resume and restart on the same port. Tests
that use it are marked ``redis`` and skipped when the binary is absent (CI installs it;
see .ci/run).
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import AsyncIterator, Iterator, Sequence

import pytest
import trio

from tests.support.cluster import REDIS_CLI, RedisClusterGroup
from tests.support.processes import REDIS_SERVER, RedisProcess, RedisTls

requires_redis = pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server not installed")


class RedisServer(RedisProcess):
    """A RedisProcess that does not outlive ``nursery``: killed when it is cancelled (the
    ``nursery`` fixture is, at the end of the test), whether or not the test stopped it."""

    def __init__(
        self,
        nursery: trio.Nursery,
        *,
        password: str | None = None,
        tls: RedisTls | None = None,
        extra_args: Sequence[str] = (),
    ) -> None:
        super().__init__(password=password, tls=tls, extra_args=extra_args)
        nursery.start_soon(self._close_when_cancelled)

    async def _close_when_cancelled(self) -> None:
        try:
            await trio.sleep_forever()
        finally:
            self.close()


@pytest.fixture
async def redis_server(nursery: trio.Nursery) -> AsyncIterator[RedisServer]:
    if REDIS_SERVER is None:
        pytest.skip("redis-server not installed")
    server = RedisServer(nursery)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture(scope="session")
def shared_redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterGroup]:
    """One 3-master, 3-replica Redis Cluster for the whole run, for tests that only use
    it (the contract suite), each test emptying it first (``emptied``). Tests
    that kill nodes start their own (tests/redis/test_cluster.py)."""
    if REDIS_SERVER is None or REDIS_CLI is None:
        pytest.skip("redis-server or redis-cli not installed")
    group = RedisClusterGroup(tmp_path_factory.mktemp("redis-cluster"))
    # First asked for from inside a trio test: its own trio.run, in a thread of its own.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(trio.run, group.start).result()
    try:
        yield group
    finally:
        group.close()


async def emptied(group: RedisClusterGroup) -> RedisClusterGroup:
    """``group`` after FLUSHALL on every master."""
    for port in await group.master_ports():
        await group.node_command(port, "FLUSHALL")
    return group
