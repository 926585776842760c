"""Several real server processes sharing one Redis and one SQLite file."""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trio

from tests.e2e.redis_proc import RedisProcess
from tests.e2e.server import ADMIN_PASSWORD, ServerProcess, authly_env
from tests.redis_server import REDIS_SERVER

pytestmark = [pytest.mark.e2e, pytest.mark.redis]

# The burst comes from 127.0.0.1; X-Forwarded-For (trusted from loopback here) gives
# each phase its own client address, so per-IP windows of one phase do not spill over.
TRUSTED = "127.0.0.1/32"


@pytest.fixture
def redis_proc(tmp_path: Path) -> Iterator[RedisProcess]:
    if REDIS_SERVER is None:
        pytest.skip("redis-server not installed")
    server = RedisProcess(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.kill()


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


def wait_backends(servers: list[ServerProcess], name: str, timeout: float) -> float:
    started = time.monotonic()
    while not all(backends(s) == {name} for s in servers):
        assert time.monotonic() - started < timeout, f"not all on {name} within {timeout}s"
        time.sleep(0.02)
    return time.monotonic() - started


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
    env = server.env
    import subprocess
    import sys

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "authly",
            "admin",
            "user",
            "create",
            "--username",
            username,
            "--password-stdin",
        ],
        input="victim-password-1\n",
        env=env,
        cwd=server.workdir,
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert result.returncode == 0, result.stderr


async def test_three_instances_burst_gets_exactly_the_limit(tmp_path, redis_proc):
    servers = start_fleet(tmp_path, fleet_env(tmp_path, redis_proc.url), 3)
    try:
        create_user(servers[0], "victim")
        statuses = await burst(servers, "victim", "192.0.2.10", 100)
        assert statuses == Counter({401: 5, 429: 95}), statuses

        # Redis down: every instance falls back to memory with limit // instances each.
        redis_proc.kill()
        wait_backends(servers, "memory", 2.0)
        statuses = await burst(servers, "victim2", "192.0.2.20", 100)
        assert statuses[401] <= 5, statuses
        assert statuses[401] + statuses[429] == 100, statuses
    finally:
        for server in servers:
            server.kill()


async def test_session_from_outage_readable_on_another_instance(tmp_path, redis_proc):
    env = fleet_env(tmp_path, redis_proc.url)
    a, b = start_fleet(tmp_path, env, 2)
    try:
        with httpx.Client(timeout=5) as client:
            redis_proc.kill()
            wait_backends([a], "memory", 2.0)
            tokens = client.post(
                a.url("/api/v1/auth/login"),
                json={"username": "admin", "password": ADMIN_PASSWORD},
            ).json()
            bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
            # b is also on memory: it does not know the session yet.
            wait_backends([b], "memory", 2.0)
            assert client.get(b.url("/api/v1/auth/session"), headers=bearer).status_code == 401
            redis_proc.start()  # same port, empty data
            wait_backends([a, b], "redis", 3.0)
            response = client.get(b.url("/api/v1/auth/session"), headers=bearer)
            assert response.status_code == 200, response.text
            assert response.json()["client_id"] == "authly"
    finally:
        a.kill()
        b.kill()


def _stream(servers_url: str, stop_at: float, results: list[tuple[int, float]]) -> None:
    """A steady stream of logins and /users/me calls (bounded by time)."""
    with httpx.Client(timeout=5) as client:
        token = client.post(
            servers_url + "/api/v1/auth/login",
            json={"username": "admin", "password": ADMIN_PASSWORD},
        ).json()["access_token"]
        i = 0
        while time.monotonic() < stop_at and i < 20_000:
            i += 1
            started = time.monotonic()
            if i % 2:
                response = client.post(
                    servers_url + "/api/v1/auth/login",
                    json={"username": "admin", "password": ADMIN_PASSWORD},
                )
            else:
                response = client.get(
                    servers_url + "/api/v1/users/me",
                    headers={"Authorization": f"Bearer {token}"},
                )
            results.append((response.status_code, time.monotonic() - started))
            time.sleep(0.005)


@pytest.mark.parametrize("outage", ["kill", "pause", "restart"])
async def test_requests_keep_answering_through_an_outage(tmp_path, redis_proc, outage):
    env = fleet_env(tmp_path, redis_proc.url, AUTHLY_LOGIN_RATE_LIMIT="100000")
    (server,) = start_fleet(tmp_path, env, 1)
    results: list[tuple[int, float]] = []
    op_timeout = 0.25
    try:
        async with trio.open_nursery() as nursery:
            stop_at = time.monotonic() + 6.0
            nursery.start_soon(trio.to_thread.run_sync, _stream, server.base_url, stop_at, results)
            await trio.sleep(1.0)
            if outage == "restart":  # back at once: maybe no probe ever sees it down
                redis_proc.kill()
                redis_proc.start()
                detected = 0.0
            else:
                redis_proc.pause() if outage == "pause" else redis_proc.kill()
                detected = await trio.to_thread.run_sync(wait_backends, [server], "memory", 1.0)
                await trio.sleep(1.0)
                redis_proc.resume() if outage == "pause" else redis_proc.start()
            recovered = await trio.to_thread.run_sync(wait_backends, [server], "redis", 3.0)
        statuses = Counter(code for code, _ in results)
        assert set(statuses) == {200}, statuses
        slowest = max(latency for _, latency in results)
        assert slowest < op_timeout + 0.1, f"slowest request {slowest:.3f}s"
        assert detected <= 1.0
        assert recovered <= 3.0
        if outage != "restart":
            metrics = httpx.get(server.url("/metrics"), timeout=2).text
            switched = re.search(
                r'authly_backend_switches_total\{feature="rate_limit",to="memory"\} (\S+)', metrics
            )
            assert switched is not None
            assert float(switched.group(1)) == 1.0, server.output()
    finally:
        server.kill()
