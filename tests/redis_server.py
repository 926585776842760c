"""A real redis-server per test, on a free loopback port (never the shared 6379).

``RedisServer`` can start, kill (SIGKILL), pause (SIGSTOP), resume and restart on the
same port. Tests that use it are marked ``redis`` and skipped when the binary is absent
(CI installs it; see .ci/run).
"""

from __future__ import annotations

import functools
import os
import shutil
import signal
import subprocess
from collections.abc import AsyncIterator

import pytest
import trio
from scripts.benchlib import free_port, redis_argv, redis_ping

REDIS_SERVER = shutil.which("redis-server")

requires_redis = pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server not installed")


class RedisServer:
    def __init__(self, nursery: trio.Nursery, *, password: str | None = None) -> None:
        self._nursery = nursery
        self.port = free_port()
        self.password = password
        self._proc: trio.Process | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        assert REDIS_SERVER is not None
        argv = redis_argv(REDIS_SERVER, self.port, self.password)
        self._proc = await self._nursery.start(
            functools.partial(trio.run_process, argv, stdout=subprocess.DEVNULL, check=False)
        )
        with trio.fail_after(5):
            while not await redis_ping(self.port, self.password):
                await trio.sleep(0.01)

    async def kill(self) -> None:
        assert self._proc is not None
        self._proc.kill()
        await self._proc.wait()

    def pause(self) -> None:
        assert self._proc is not None
        os.kill(self._proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self._proc is not None
        os.kill(self._proc.pid, signal.SIGCONT)

    async def restart(self) -> None:
        await self.kill()
        await self.start()

    async def stop(self) -> None:
        if self._proc is not None and self._proc.returncode is None:
            self.resume()
            await self.kill()


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
