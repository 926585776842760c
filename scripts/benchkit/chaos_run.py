"""The run of scripts/chaos.py: the Authly server under test, the open-loop request load,
the /health poller, the Redis outages, and when each outage was detected and recovered."""

from __future__ import annotations

import argparse
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import trio
from tests.support.processes import RedisProcess

from benchkit.common import CHEAP_HASH, ScriptServer

KINDS = ("kill", "pause", "restart")
LOGIN_PATH = "/api/v1/auth/login"
ME_PATH = "/api/v1/users/me"
HEALTH_POLL_SECONDS = 0.05
HEALTH_TIMEOUT = 1.0


def now() -> float:
    """Wall-clock-independent timestamps shared by every measurement (not trio's clock,
    which carries a random offset)."""
    return time.monotonic()


class ChaosServer(ScriptServer):
    """``python -m authly serve`` with SQLite in the work dir and all Redis features on."""

    def __init__(self, workdir: Path, redis_url: str, opts: argparse.Namespace) -> None:
        settings = {
            "AUTHLY_REDIS_URL": redis_url,
            "AUTHLY_REDIS_RATE_LIMIT": "true",
            "AUTHLY_REDIS_CACHE": "true",
            "AUTHLY_REDIS_SESSION": "true",
            "AUTHLY_REDIS_HEALTH_INTERVAL_MS": str(opts.health_interval_ms),
            "AUTHLY_REDIS_OP_TIMEOUT_MS": str(opts.op_timeout_ms),
            "AUTHLY_LOGIN_RATE_LIMIT": "1000000",
            "AUTHLY_LOG_LEVEL": "INFO",
        }
        super().__init__(workdir, settings=settings if opts.real_hash else CHEAP_HASH | settings)


def on_redis(health: dict[str, Any]) -> str | None:
    """Ready when every Redis feature is on redis (for ServerProcess.wait_healthy)."""
    if backend_state(health) == "redis":
        return None
    return f"backends {health['redis']['backends']}"


def backend_state(health: dict[str, Any]) -> str:
    """'redis' when every Redis-enabled feature is on redis, 'memory' when every one is on
    its fallback (memory; the store, "database", for sessions), else 'mixed'."""
    redis = health["redis"]
    enabled = [f for f, on in redis["features"].items() if on]
    names = {"redis" if redis["backends"][f] == "redis" else "memory" for f in enabled}
    return names.pop() if len(names) == 1 else "mixed"


# ------------------------------------------------------------------ records


@dataclass
class Request:
    kind: str  # login | me
    started: float
    latency: float
    outcome: str  # "200", "503", or "error: <type>"


@dataclass
class Outage:
    kind: str
    started: float
    back: float | None = None  # Redis answering (or resumed) again
    detected_at: float | None = None
    recovered_at: float | None = None

    def detection(self) -> float | None:
        return None if self.detected_at is None else self.detected_at - self.started

    def recovery(self) -> float | None:
        if self.recovered_at is None or self.back is None:
            return None
        return self.recovered_at - self.back

    def window(self) -> tuple[float, float]:
        """The time requests count as 'during the outage'."""
        end = self.recovered_at or self.back or self.started
        return self.started, max(end, self.back or end)


@dataclass
class Run:
    requests: list[Request] = field(default_factory=list)
    health: list[tuple[float, str]] = field(default_factory=list)  # (time, state)
    health_errors: Counter[str] = field(default_factory=Counter)
    outages: list[Outage] = field(default_factory=list)
    skipped: int = 0  # not started because --max-inflight requests were pending
    token: str = ""
    new_sample: trio.Event = field(default_factory=trio.Event)  # set at each health sample
    load_started: float = 0.0
    load_ended: float = 0.0


# ------------------------------------------------------------------ load


def outcome_of(exc: BaseException) -> str:
    return f"error: {type(exc).__name__}"


async def one_request(
    client: httpx.AsyncClient, kind: str, server: ChaosServer, run: Run, timeout: float
) -> None:
    started = now()
    try:
        with trio.fail_after(timeout + 1):  # httpx's own timeout should fire first
            if kind == "login":
                response = await client.post(
                    LOGIN_PATH,
                    json={"username": server.username, "password": server.password},
                    timeout=timeout,
                )
                if response.status_code == 200:
                    token = response.json().get("access_token")
                    if isinstance(token, str) and token:
                        run.token = token
            else:
                response = await client.get(
                    ME_PATH, headers={"Authorization": f"Bearer {run.token}"}, timeout=timeout
                )
        result = str(response.status_code)
    except (httpx.HTTPError, trio.TooSlowError, OSError, ValueError) as exc:
        result = outcome_of(exc)
    run.requests.append(Request(kind, started, now() - started, result))


async def drive_load(
    client: httpx.AsyncClient,
    server: ChaosServer,
    run: Run,
    opts: argparse.Namespace,
    rng: random.Random,
) -> None:
    total = int(opts.rate * opts.duration)
    interval = 1.0 / opts.rate
    inflight = 0

    async def tracked(kind: str) -> None:
        nonlocal inflight
        inflight += 1
        try:
            await one_request(client, kind, server, run, opts.timeout)
        finally:
            inflight -= 1

    run.load_started = now()
    t0 = trio.current_time()
    end = t0 + opts.duration
    async with trio.open_nursery() as nursery:
        for i in range(total):
            at = t0 + i * interval
            if at >= end:
                break
            await trio.sleep_until(at)
            if inflight >= opts.max_inflight:
                run.skipped += 1
                continue
            kind = "login" if rng.random() < opts.login_share else "me"
            nursery.start_soon(tracked, kind)
    run.load_ended = now()


async def poll_health(client: httpx.AsyncClient, run: Run, stop: trio.Event) -> None:
    while not stop.is_set():
        tick = trio.current_time()
        try:
            response = await client.get("/health", timeout=HEALTH_TIMEOUT)
            if response.status_code == 200:
                run.health.append((now(), backend_state(response.json())))
                run.new_sample.set()
                run.new_sample = trio.Event()
            else:
                run.health_errors[f"HTTP {response.status_code}"] += 1
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            run.health_errors[outcome_of(exc)] += 1
        await trio.sleep_until(tick + HEALTH_POLL_SECONDS)


async def do_outage(redis: RedisProcess, outage: Outage, down_for: float) -> None:
    if outage.kind == "kill":
        await redis.kill()
        await trio.sleep(down_for)
        await redis.start()
    elif outage.kind == "pause":
        redis.pause()
        await trio.sleep(down_for)
        redis.resume()
    else:  # restart
        await redis.restart()
    outage.back = now()


async def drive_chaos(
    redis: RedisProcess, run: Run, opts: argparse.Namespace, rng: random.Random
) -> None:
    """Outage i starts at (i + 1) / (N + 1) of the run, +-10% of the spacing (seeded)."""
    n = opts.outages
    if n == 0:
        return
    spacing = opts.duration / (n + 1)
    down_for = min(opts.outage_seconds, spacing * 0.4)
    t0 = trio.current_time()
    for i in range(n):
        jitter = rng.uniform(-0.1, 0.1) * spacing
        await trio.sleep_until(t0 + (i + 1) * spacing + jitter)
        outage = Outage(KINDS[i % len(KINDS)], now())
        run.outages.append(outage)
        await do_outage(redis, outage, down_for)


def analyse_outages(run: Run) -> None:
    """Detection: the first 'memory' sample after the outage started (and before the next
    one). Recovery: the first 'redis' sample after both Redis came back and the switch to
    memory was seen."""
    for i, outage in enumerate(run.outages):
        limit = run.outages[i + 1].started if i + 1 < len(run.outages) else float("inf")
        outage.detected_at = next(
            (t for t, s in run.health if outage.started <= t < limit and s == "memory"), None
        )
        if outage.back is None or outage.detected_at is None:
            continue  # never seen on memory: too short to notice, or /health missed it
        since = max(outage.back, outage.detected_at)
        outage.recovered_at = next(
            (t for t, s in run.health if since <= t < limit and s == "redis"), None
        )


def recovered(run: Run) -> bool:
    """True once /health shows redis after the last outage's Redis came back and after
    any switch to memory it caused."""
    if not run.outages:
        return True
    last = run.outages[-1]
    if last.back is None:
        return False
    since = max([last.back] + [t for t, s in run.health if t >= last.started and s == "memory"])
    return any(t > since and s == "redis" for t, s in run.health)


async def settle(run: Run, seconds: float) -> None:
    """After the load stops, keep polling until the last outage has recovered."""
    with trio.move_on_after(seconds):
        while not recovered(run):
            await run.new_sample.wait()


async def login_once(client: httpx.AsyncClient, server: ChaosServer, run: Run) -> None:
    response = await client.post(
        LOGIN_PATH, json={"username": server.username, "password": server.password}
    )
    if response.status_code != 200:
        raise RuntimeError(f"set-up login failed: HTTP {response.status_code} {response.text}")
    run.token = response.json()["access_token"]


async def main_async(opts: argparse.Namespace, redis: RedisProcess, server: ChaosServer) -> Run:
    rng = random.Random(opts.seed)
    run = Run()
    await redis.start()
    server.start()
    limits = httpx.Limits(max_connections=opts.max_inflight, max_keepalive_connections=64)
    async with (
        httpx.AsyncClient(base_url=server.base_url, limits=limits) as client,
        httpx.AsyncClient(base_url=server.base_url) as health_client,
    ):
        await server.await_healthy(on_redis)
        await login_once(client, server, run)
        stop_polling = trio.Event()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(poll_health, health_client, run, stop_polling)
            async with trio.open_nursery() as work:
                work.start_soon(drive_load, client, server, run, opts, rng)
                work.start_soon(drive_chaos, redis, run, opts, random.Random(opts.seed + 1))
            await settle(run, opts.settle)
            stop_polling.set()
    analyse_outages(run)
    return run
