#!/usr/bin/env python3
"""Chaos run: steady HTTP load on one Authly instance while its Redis is broken on purpose.

The script owns everything it touches: it starts a private ``redis-server`` on a free
loopback port (``--save "" --appendonly no``; never the shared 6379) and one Authly
instance (``python -m authly serve`` on a free port, SQLite in a temporary directory, all
three Redis features on). Then, for ``--duration`` seconds, it sends ``--rate`` requests/s
(open loop: a request is started on schedule whether or not earlier ones have finished,
up to ``--max-inflight``), a mix of

- ``POST /api/v1/auth/login`` with the right credentials (rate limiter + session store),
- ``GET /api/v1/users/me`` with a bearer token from the latest login (profile cache),

while it performs ``--outages`` Redis outages spread evenly over the run, cycling through

- ``kill``     SIGKILL, Redis stays away for ``--outage-seconds``, then a fresh start
  on the same port (empty: no data, no scripts),
- ``pause``    SIGSTOP for ``--outage-seconds``, then SIGCONT (connections stay open,
  nothing answers: the nastiest case for timeouts),
- ``restart``  SIGKILL and an immediate start (stale pooled connections, NOSCRIPT).

A separate client polls ``GET /health`` every 50 ms. Per outage it reports the detection
time (outage start -> /health shows every Redis feature on ``memory``) and the recovery
time (Redis answering again -> /health shows every feature back on ``redis``).

At the end it prints request counts by status, failed requests (any 5xx or transport
error, timeouts included), unexpected non-2xx answers (a 4xx on these requests is a bug
too), latency p50/p99/max overall and during outages, and the per-outage table. Exit
status: 0 when every request succeeded, 1 when any failed or got an unexpected answer,
2 when the set-up itself failed.

Everything is bounded: at most ``rate * duration`` requests, only to 127.0.0.1, each with
a ``--timeout``; the processes are stopped on the way out (also on Ctrl-C).

AUTHLY_* variables of the calling environment are NOT passed to the server; the script
sets the ones it needs. Argon2 is made cheap (time cost 1, 1 MiB) unless ``--real-hash``.

Examples:
    .venv/bin/python scripts/chaos.py
    .venv/bin/python scripts/chaos.py --duration 20 --outages 3
    .venv/bin/python scripts/chaos.py --duration 120 --rate 200 --outages 6 --seed 7
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import trio

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchlib.py, next to this file
from benchlib import AuthlyServer, RedisServerProcess, authly_env, percentile

KINDS = ("kill", "pause", "restart")
LOGIN_PATH = "/api/v1/auth/login"
ME_PATH = "/api/v1/users/me"
HEALTH_POLL_SECONDS = 0.05
HEALTH_TIMEOUT = 1.0


def now() -> float:
    """Wall-clock-independent timestamps shared by every measurement (not trio's clock,
    which carries a random offset)."""
    return time.monotonic()


# ------------------------------------------------------------------ processes


class AuthlyProcess(AuthlyServer):
    """``python -m authly serve`` with SQLite in the work dir and Redis features on."""

    def __init__(self, workdir: Path, redis_url: str, opts: argparse.Namespace) -> None:
        super().__init__(workdir / "authly.log")
        settings = {
            "AUTHLY_DATABASE_URL": f"sqlite:///{workdir}/authly.db",
            "AUTHLY_ISSUER": self.base_url,
            "AUTHLY_ADMIN_USERNAME": self.username,
            "AUTHLY_ADMIN_PASSWORD": self.password,
            "AUTHLY_REDIS_URL": redis_url,
            "AUTHLY_REDIS_RATE_LIMIT": "true",
            "AUTHLY_REDIS_CACHE": "true",
            "AUTHLY_REDIS_SESSION": "true",
            "AUTHLY_REDIS_HEALTH_INTERVAL_MS": str(opts.health_interval_ms),
            "AUTHLY_REDIS_OP_TIMEOUT_MS": str(opts.op_timeout_ms),
            "AUTHLY_LOGIN_RATE_LIMIT": "1000000",
            "AUTHLY_LOG_LEVEL": "INFO",
        }
        if not opts.real_hash:
            settings.update(
                AUTHLY_PASSWORD_HASH_TIME_COST="1", AUTHLY_PASSWORD_HASH_MEMORY_KIB="1024"
            )
        self.env = authly_env(**settings)

    def spawn(self) -> None:
        self.launch(self.serve_command(), self.env)


def on_redis(health: dict[str, Any]) -> str | None:
    """Ready when every Redis feature is on redis (for AuthlyServer.wait_healthy)."""
    if backend_state(health) == "redis":
        return None
    return f"backends {health['redis']['backends']}"


def backend_state(health: dict[str, Any]) -> str:
    """'redis' / 'memory' when every Redis-enabled feature is on that backend, else 'mixed'."""
    redis = health["redis"]
    enabled = [f for f, on in redis["features"].items() if on]
    names = {redis["backends"][f] for f in enabled}
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
    client: httpx.AsyncClient, kind: str, server: AuthlyProcess, run: Run, timeout: float
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
    server: AuthlyProcess,
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


async def do_outage(redis: RedisServerProcess, outage: Outage, down_for: float) -> None:
    if outage.kind == "kill":
        redis.kill()
        await trio.sleep(down_for)
        await redis.start()
    elif outage.kind == "pause":
        redis.pause()
        await trio.sleep(down_for)
        redis.resume()
    else:  # restart
        redis.kill()
        await redis.start()
    outage.back = now()


async def drive_chaos(
    redis: RedisServerProcess, run: Run, opts: argparse.Namespace, rng: random.Random
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


async def login_once(client: httpx.AsyncClient, server: AuthlyProcess, run: Run) -> None:
    response = await client.post(
        LOGIN_PATH, json={"username": server.username, "password": server.password}
    )
    if response.status_code != 200:
        raise RuntimeError(f"set-up login failed: HTTP {response.status_code} {response.text}")
    run.token = response.json()["access_token"]


async def main_async(
    opts: argparse.Namespace, redis: RedisServerProcess, server: AuthlyProcess
) -> Run:
    rng = random.Random(opts.seed)
    run = Run()
    await redis.start()
    server.spawn()
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


# ------------------------------------------------------------------ report


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.1f} ms"


def secs(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def is_failure(outcome: str) -> bool:
    return outcome.startswith("error") or outcome.startswith("5")


def latency_line(label: str, requests: list[Request]) -> str:
    lat = [r.latency for r in requests]
    return (
        f"  {label:<16} n={len(lat):<6} p50={ms(percentile(lat, 50)):>9}  "
        f"p99={ms(percentile(lat, 99)):>9}  max={ms(max(lat) if lat else None):>9}"
    )


def report(run: Run, opts: argparse.Namespace, server: AuthlyProcess, stop_note: str) -> int:
    reqs = run.requests
    statuses = Counter(r.outcome for r in reqs)
    failed = [r for r in reqs if is_failure(r.outcome)]
    unexpected = [r for r in reqs if not is_failure(r.outcome) and r.outcome != "200"]
    windows = [o.window() for o in run.outages]
    during = [r for r in reqs if any(a <= r.started <= b for a, b in windows)]
    outside = [r for r in reqs if not any(a <= r.started <= b for a, b in windows)]
    elapsed = max(run.load_ended - run.load_started, 1e-9)

    print()
    print(
        f"chaos: {opts.duration:g} s at {opts.rate:g} req/s (login share {opts.login_share:g}), "
        f"{len(run.outages)} outages, seed {opts.seed}, op timeout {opts.op_timeout_ms} ms, "
        f"health interval {opts.health_interval_ms} ms, argon2 "
        f"{'default' if opts.real_hash else 'cheap (t=1, 1 MiB)'}"
    )
    print(f"requests: {len(reqs)} sent in {elapsed:.1f} s ({len(reqs) / elapsed:.1f}/s)", end="")
    print(f", {run.skipped} not sent (would exceed --max-inflight {opts.max_inflight})")
    by_kind = Counter(r.kind for r in reqs)
    print(f"  by kind: {dict(sorted(by_kind.items()))}")
    print(f"  status counts: {dict(sorted(statuses.items()))}")
    print(f"  failed (5xx or transport error): {len(failed)}")
    if failed:
        for outcome, n in Counter(f"{r.kind} {r.outcome}" for r in failed).most_common(10):
            print(f"    {n:>6}  {outcome}")
    print(f"  unexpected non-2xx (4xx): {len(unexpected)}")
    if unexpected:
        for outcome, n in Counter(f"{r.kind} {r.outcome}" for r in unexpected).most_common(10):
            print(f"    {n:>6}  {outcome}")
    print("latency:")
    print(latency_line("overall", reqs))
    print(latency_line("during outages", during))
    print(latency_line("outside outages", outside))
    for kind in ("login", "me"):
        print(latency_line(f"{kind} (all)", [r for r in reqs if r.kind == kind]))
    print(
        f"health polls: {len(run.health)} answered, errors {dict(run.health_errors) or 0} "
        f"(every {HEALTH_POLL_SECONDS * 1000:.0f} ms)"
    )
    print("outages (detection: start -> /health all memory; recovery: Redis back -> all redis):")
    print(
        f"  {'#':>2} {'kind':<8} {'at':>7} {'Redis away':>10} {'detection':>10} "
        f"{'recovery':>9} {'on memory':>10} {'reqs':>5} {'p99':>9}"
    )
    for i, o in enumerate(run.outages, 1):
        away = None if o.back is None else o.back - o.started
        on_memory = None
        if o.detected_at is not None and o.recovered_at is not None:
            on_memory = o.recovered_at - o.detected_at
        a, b = o.window()
        in_window = [r.latency for r in reqs if a <= r.started <= b]
        note = ""
        if o.detected_at is None:
            note = "  (never seen on memory by /health)"
        elif o.recovered_at is None:
            note = "  (NOT back on redis)"
        print(
            f"  {i:>2} {o.kind:<8} {o.started - run.load_started:>6.1f}s {secs(away):>10} "
            f"{secs(o.detection()):>10} {secs(o.recovery()):>9} {secs(on_memory):>10} "
            f"{len(in_window):>5} {ms(percentile(in_window, 99)):>9}{note}"
        )
    problems = server.log_problems()
    switches = sum("Backend switch" in ln for ln in server.log_lines())
    print(f"server: {stop_note}; log has {switches} backend-switch lines, {len(problems)} errors")
    for line in problems[:10]:
        print(f"    {line[:200]}")
    not_recovered = any(o.detected_at is not None and o.recovered_at is None for o in run.outages)
    if failed or unexpected or not_recovered:
        print("RESULT: FAIL")
        return 1
    print("RESULT: OK (no failed requests)")
    return 0


# ------------------------------------------------------------------ main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--duration", type=float, default=60.0, help="seconds of load (default 60)")
    p.add_argument("--rate", type=float, default=100.0, help="requests per second (default 100)")
    p.add_argument("--outages", type=int, default=3, help="number of outages (default 3)")
    p.add_argument("--seed", type=int, default=1, help="seed for the request mix and timing")
    p.add_argument(
        "--outage-seconds",
        type=float,
        default=3.0,
        help="how long Redis stays killed/paused (default 3; at most 40%% of the spacing)",
    )
    p.add_argument(
        "--login-share", type=float, default=0.3, help="share of logins in the mix (0.3)"
    )
    p.add_argument("--timeout", type=float, default=5.0, help="per-request timeout, s (5)")
    p.add_argument("--max-inflight", type=int, default=128, help="cap on pending requests (128)")
    p.add_argument(
        "--health-interval-ms", type=int, default=500, help="AUTHLY_REDIS_HEALTH_INTERVAL_MS"
    )
    p.add_argument("--op-timeout-ms", type=int, default=250, help="AUTHLY_REDIS_OP_TIMEOUT_MS")
    p.add_argument("--settle", type=float, default=10.0, help="s to wait for a last recovery")
    p.add_argument("--real-hash", action="store_true", help="keep the default argon2 cost")
    p.add_argument("--keep", action="store_true", help="keep the work dir (logs, SQLite)")
    opts = p.parse_args(argv)
    if opts.duration <= 0 or opts.duration > 3600:
        p.error("--duration must be in (0, 3600]")
    if opts.rate <= 0 or opts.rate > 5000:
        p.error("--rate must be in (0, 5000]")
    if not 0 <= opts.outages <= 100:
        p.error("--outages must be in [0, 100]")
    if not 0 <= opts.login_share <= 1:
        p.error("--login-share must be in [0, 1]")
    if opts.max_inflight < 1:
        p.error("--max-inflight must be at least 1")
    return opts


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="authly-chaos-"))
    redis = RedisServerProcess(workdir, "chaos")
    server = AuthlyProcess(workdir, redis.url, opts)
    print(
        f"chaos: redis-server on 127.0.0.1:{redis.port}, authly on {server.base_url}, "
        f"work dir {workdir}",
        flush=True,
    )
    run: Run | None = None
    status = 2
    stop_note = "not started"
    try:
        run = trio.run(main_async, opts, redis, server)
    except KeyboardInterrupt:
        print("chaos: interrupted", file=sys.stderr)
    except (RuntimeError, trio.TooSlowError) as exc:
        print(f"chaos: set-up failed: {exc}", file=sys.stderr)
    except BaseExceptionGroup as group:
        if group.subgroup(KeyboardInterrupt) is not None:
            print("chaos: interrupted", file=sys.stderr)
        else:
            traceback.print_exc()
            print("chaos: the run itself failed (see the traceback above)", file=sys.stderr)
    finally:
        stop_note = server.stop()
        redis.stop()
    if run is not None:
        status = report(run, opts, server, stop_note)
    if opts.keep or status != 0:
        print(f"work dir kept: {workdir} (authly.log, redis.log, authly.db)")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
