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
import socket
import subprocess
from collections.abc import AsyncIterator

import pytest
import trio

REDIS_SERVER = shutil.which("redis-server")

requires_redis = pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server not installed")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def ping(port: int) -> bool:
    try:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
    except OSError:
        return False
    async with stream:
        with trio.move_on_after(0.5):
            await stream.send_all(b"PING\r\n")
            return (await stream.receive_some(64)).startswith(b"+PONG")
    return False


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
        argv = [
            REDIS_SERVER,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--loglevel",
            "warning",
        ]
        if self.password:
            argv += ["--requirepass", self.password]
        self._proc = await self._nursery.start(
            functools.partial(trio.run_process, argv, stdout=subprocess.DEVNULL, check=False)
        )
        with trio.fail_after(5):
            while not await self._answers():
                await trio.sleep(0.01)

    async def _answers(self) -> bool:
        if self.password:
            return await _ping_with_auth(self.port, self.password)
        return await ping(self.port)

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


async def _ping_with_auth(port: int, password: str) -> bool:
    try:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
    except OSError:
        return False
    async with stream:
        with trio.move_on_after(0.5):
            cmd = f"AUTH {password}\r\nPING\r\n".encode()
            await stream.send_all(cmd)
            data = b""
            while b"PONG" not in data:
                chunk = await stream.receive_some(64)
                if not chunk:
                    return False
                data += chunk
            return True
    return False


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
