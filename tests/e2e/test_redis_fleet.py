"""Several real server processes sharing one Redis and one SQLite file."""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
import trio

from tests.e2e.server import ADMIN_PASSWORD, authly_env, run_cli
from tests.support.processes import ServerProcess

pytestmark = [pytest.mark.e2e, pytest.mark.redis]

# The burst comes from 127.0.0.1; X-Forwarded-For (trusted from loopback here) gives
# each phase its own client address, so per-IP windows of one phase do not spill over.
TRUSTED = "127.0.0.1/32"


def fleet_env(tmp_path: Path, redis_url: str, **extra: str) -> dict[str, str]:
    return authly_env(
        tmp_path / "authly.db",
        AUTHLY_REDIS_URL=redis_url,
        AUTHLY_REDIS_RATE_LIMIT="true",
        AUTHLY_REDIS_CACHE="true",
        AUTHLY_REDIS_SESSION="true",
        AUTHLY_REDIS_HEALTH_INTERVAL_MS="100",
        AUTHLY_ISSUER="http://authly.fleet.test",
        AUTHLY_TRUSTED_PROXIES=TRUSTED,
        **extra,
    )


def start_fleet(tmp_path: Path, env: dict[str, str], count: int) -> list[ServerProcess]:
    servers = [ServerProcess(tmp_path, name=f"i{n}", env=env).start() for n in range(count)]
    try:
        for server in servers:
            server.wait_healthy()
    except BaseException:
        for server in servers:  # never leave a started process behind
            server.kill()
        raise
    return servers


def backends(server: ServerProcess) -> set[str]:
    body = httpx.get(server.url("/health"), timeout=2).json()
    return set(body["redis"]["backends"].values())


# How long a switch may take before the test calls it a hang. Not a timing assertion:
# how fast switches happen is measured by scripts/chaos.py (docs/benchmarks.md).
HANG = 30.0


def wait_backends(servers: list[ServerProcess], name: str, timeout: float = HANG) -> None:
    """Until every server runs every feature on ``name``; "memory" means the fallbacks
    (process memory, and the store for sessions: "database")."""
    wanted = {"memory", "database"} if name == "memory" else {name}
    deadline = time.monotonic() + timeout
    while not all(backends(s) == wanted for s in servers):
        assert time.monotonic() < deadline, f"not all on {name} within {timeout}s"
        time.sleep(0.02)


async def burst(servers: list[ServerProcess], username: str, client_ip: str, n: int) -> Counter:
    """n concurrent failed logins for one username, spread round-robin over servers."""
    statuses: Counter[int] = Counter()
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    async with httpx.AsyncClient(timeout=10, limits=limits) as client:

        async def attempt(i: int) -> None:
            server = servers[i % len(servers)]
            response = await client.post(
                server.url("/api/v1/auth/login"),
                json={"username": username, "password": "wrong-password"},
                headers={"X-Forwarded-For": client_ip},
            )
            statuses[response.status_code] += 1

        async with trio.open_nursery() as nursery:
            for i in range(n):
                nursery.start_soon(attempt, i)
    return statuses


def create_user(server: ServerProcess, username: str) -> None:
    args = ("admin", "user", "create", "--username", username, "--password-stdin")
    result = run_cli(args, server.env, server.workdir, stdin="victim-password-1\n")
    assert result.returncode == 0, result.stderr


async def test_three_instances_burst_gets_exactly_the_limit(tmp_path, redis_server):
    servers = start_fleet(tmp_path, fleet_env(tmp_path, redis_server.url), 3)
    try:
        create_user(servers[0], "victim")
        statuses = await burst(servers, "victim", "192.0.2.10", 100)
        assert statuses == Counter({401: 5, 429: 95}), statuses

        # Redis down: every instance falls back to memory with limit // instances each.
        await redis_server.kill()
        wait_backends(servers, "memory")
        statuses = await burst(servers, "victim2", "192.0.2.20", 100)
        assert statuses[401] <= 5, statuses
        assert statuses[401] + statuses[429] == 100, statuses
    finally:
        for server in servers:
            server.kill()


async def test_session_from_outage_readable_on_another_instance_during_and_after(
    tmp_path, redis_server
):
    env = fleet_env(tmp_path, redis_server.url)
    a, b = start_fleet(tmp_path, env, 2)
    try:
        with httpx.Client(timeout=5) as client:
            await redis_server.kill()
            wait_backends([a], "memory")
            tokens = client.post(
                a.url("/api/v1/auth/login"),
                json={"username": "admin", "password": ADMIN_PASSWORD},
            ).json()
            bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
            # b is on its fallback too, which for sessions is the shared store: it
            # knows the session written on a during the outage (no sticky routing).
            wait_backends([b], "memory")
            response = client.get(b.url("/api/v1/auth/session"), headers=bearer)
            assert response.status_code == 200, response.text
            await redis_server.start()  # same port, empty data
            wait_backends([a, b], "redis")
            response = client.get(b.url("/api/v1/auth/session"), headers=bearer)
            assert response.status_code == 200, response.text
            assert response.json()["client_id"] == "authly"
    finally:
        a.kill()
        b.kill()


class Stream:
    """A steady stream of logins and /users/me calls from a thread, until stopped
    (bounded: at most 20,000 requests or 120 s)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.statuses: list[int] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        try:
            self._run()
        finally:
            self.stopped.set()

    def _run(self) -> None:
        deadline = time.monotonic() + 120.0
        with httpx.Client(timeout=30) as client:
            login = {"username": "admin", "password": ADMIN_PASSWORD}
            token = client.post(self.base_url + "/api/v1/auth/login", json=login).json()
            bearer = {"Authorization": f"Bearer {token['access_token']}"}
            i = 0
            while not self.stopped.is_set() and time.monotonic() < deadline and i < 20_000:
                i += 1
                if i % 2:
                    response = client.post(self.base_url + "/api/v1/auth/login", json=login)
                else:
                    response = client.get(self.base_url + "/api/v1/users/me", headers=bearer)
                self.statuses.append(response.status_code)
                time.sleep(0.005)

    def wait_for(self, more: int) -> None:
        """Until the stream has made ``more`` further requests (a hang detector bounds it)."""
        target = len(self.statuses) + more
        deadline = time.monotonic() + HANG
        while len(self.statuses) < target:
            assert not self.stopped.is_set(), "the stream ended early"
            assert time.monotonic() < deadline, "the stream stalled"
            time.sleep(0.01)


@pytest.mark.parametrize("outage", ["kill", "pause", "restart"])
async def test_requests_keep_answering_through_an_outage(tmp_path, redis_server, outage):
    """Every request is answered (200) before, during and after the outage, and the
    instance switches to memory once and back. Latency through outages is measured by
    scripts/chaos.py, not asserted here."""
    env = fleet_env(tmp_path, redis_server.url, AUTHLY_LOGIN_RATE_LIMIT="100000")
    (server,) = start_fleet(tmp_path, env, 1)
    stream = Stream(server.base_url)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(trio.to_thread.run_sync, stream.run)
            try:
                await trio.to_thread.run_sync(stream.wait_for, 20)
                if outage == "restart":  # back at once: maybe no probe ever sees it down
                    await redis_server.restart()
                else:
                    if outage == "pause":
                        redis_server.pause()
                    else:
                        await redis_server.kill()
                    await trio.to_thread.run_sync(wait_backends, [server], "memory")
                    await trio.to_thread.run_sync(stream.wait_for, 20)  # served from memory
                    if outage == "pause":
                        redis_server.resume()
                    else:
                        await redis_server.start()
                await trio.to_thread.run_sync(wait_backends, [server], "redis")
                await trio.to_thread.run_sync(stream.wait_for, 20)
            finally:
                stream.stopped.set()
        statuses = Counter(stream.statuses)
        assert set(statuses) == {200}, statuses
        if outage != "restart":
            metrics = httpx.get(server.url("/metrics"), timeout=5).text
            switched = re.search(
                r'authly_backend_switches_total\{feature="rate_limit",to="memory"\} (\S+)', metrics
            )
            assert switched is not None
            assert float(switched.group(1)) == 1.0, server.output()
    finally:
        server.kill()
