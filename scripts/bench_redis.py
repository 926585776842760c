#!/usr/bin/env python3
"""Redis backend benchmark: rate-limit decisions/s and latency, HTTP cost, session size.

Parts (``--parts a,b,c``; all by default):

a. In process, under ``trio.run``: ``check_rate_limit(key, max_requests=10**9,
   window_seconds=60)`` from N concurrent tasks (``--concurrency``, default 1,32,256) over
   ``--keys`` keys, through
   - ``memory``   authly.backends.memory.MemoryRateLimiter,
   - ``actor``    authly.backends.redis.RedisRateLimiter over an authly.redis.actor.RedisActor
     (auto-pipelining; the production path),
   - ``slot``     the same Redis limiter behind authly.backends.slot.RateLimiterSlot (what
     request handlers call: adds the fallback wrapper and the memory shadow of each hit),
   - ``bridge``   baseline without the actor: a plain redis.asyncio client called once per
     decision through ``trio_asyncio.aio_as_trio`` (no batching), same Lua script by
     EVALSHA, connection pool large enough never to be the limit (DESIGN §1 explains why
     the actor exists: ≈ 4k/s for this versus ≥ 20k/s batched).
   Each cell stops after ``--requests`` decisions OR ``--max-seconds``, whichever first;
   every cell uses its own keys, so no cell starts with windows another one filled.
b. Over HTTP: two Authly instances (``python -m authly serve``), one with
   AUTHLY_REDIS_RATE_LIMIT=true and one on memory, both with AUTHLY_LOGIN_RATE_LIMIT at its
   maximum (1000000, so nothing is limited) and cheap argon2 (t=1, 1 MiB): failed logins
   (wrong password) at ``--http-concurrency`` (32) with httpx; the two servers are measured
   in alternating rounds (``--http-rounds``) so background noise hits both alike.
c. Redis memory per stored session: ``--sessions`` (1000) sessions with a realistic payload
   stored through authly.backends.redis.RedisSessionStore; MEMORY USAGE of a sample of keys
   (average), and the growth of ``used_memory`` divided by the number of sessions.

The script starts its own redis-server on a free loopback port (``--save ""
--appendonly no``; never the shared 6379) and its own Authly processes (SQLite in a
temporary directory), and stops them on the way out. Errors (timeouts, BackendUnavailable,
non-401 answers in part b) are counted in the tables, never hidden.

Examples:
    .venv/bin/python scripts/bench_redis.py
    .venv/bin/python scripts/bench_redis.py --markdown
    .venv/bin/python scripts/bench_redis.py --parts a --concurrency 1,16,64 --requests 50000
"""

from __future__ import annotations

import argparse
import os
import secrets
import shlex
import shutil
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import trio

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchlib.py, next to this file
from benchlib import (
    SRC,
    AuthlyServer,
    RedisServerProcess,
    ServerError,
    authly_env,
    int_list,
    machine,
    percentile,
)

try:
    import authly  # noqa: F401
except ImportError:  # not installed (no `pip install -e .`): use the checkout's src/
    sys.path.insert(0, str(SRC))

from authly.backends.memory import MemoryRateLimiter
from authly.backends.redis import PREFIX, RedisRateLimiter, RedisSessionStore
from authly.backends.slot import RateLimiterSlot
from authly.redis.actor import RedisActor, load_script
from authly.redis.url import parse_redis_url

LIMIT = 10**9
WINDOW = 60
LOGIN_PATH = "/api/v1/auth/login"
SESSION_TTL = 3600.0
IMPLS = ("memory", "actor", "slot", "bridge")


def fmt_ms(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    value = seconds * 1000
    return f"{value:.3f}" if value < 1 else f"{value:.2f}" if value < 100 else f"{value:.0f}"


# ------------------------------------------------------------------ processes


class AuthlyProcess(AuthlyServer):
    """``python -m authly serve`` on a free port, SQLite in its own directory."""

    def __init__(self, name: str, workdir: Path, redis_url: str | None) -> None:
        super().__init__(workdir / f"authly-{name}.log")
        self.name = name
        settings = {
            "AUTHLY_DATABASE_URL": f"sqlite:///{workdir}/{name}.db",
            "AUTHLY_ISSUER": self.base_url,
            "AUTHLY_ADMIN_USERNAME": self.username,
            "AUTHLY_ADMIN_PASSWORD": self.password,
            "AUTHLY_LOGIN_RATE_LIMIT": "1000000",  # the largest value Settings accepts
            "AUTHLY_PASSWORD_HASH_TIME_COST": "1",
            "AUTHLY_PASSWORD_HASH_MEMORY_KIB": "1024",
            "AUTHLY_LOG_LEVEL": "WARNING",
        }
        if redis_url is not None:
            settings.update(AUTHLY_REDIS_URL=redis_url, AUTHLY_REDIS_RATE_LIMIT="true")
        self.launch(self.serve_command(), authly_env(**settings))

    async def wait_ready(self, backend: str) -> None:
        """Wait until /health shows the rate limiter on ``backend``."""

        def on_backend(health: dict[str, Any]) -> str | None:
            found = health["redis"]["backends"]["rate_limit"]
            return None if found == backend else f"rate_limit backend {found}"

        try:
            await self.await_healthy(on_backend)
        except ServerError as exc:
            raise SystemExit(f"bench_redis: {self.name}: {exc}") from None


# ------------------------------------------------------------------ part a


@dataclass
class Cell:
    impl: str
    concurrency: int
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    elapsed: float = 0.0
    cpu: float = 0.0  # this process's CPU seconds (excludes redis-server)
    per_pipeline: float | None = None  # actor calls per pipeline (actor, slot)
    cut_by_time: bool = False

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0

    @property
    def cpu_us(self) -> float | None:
        return self.cpu / len(self.latencies) * 1e6 if self.latencies else None


Check = Callable[[str], Awaitable[Any]]


async def run_cell(
    impl: str, concurrency: int, check: Check, opts: argparse.Namespace, tag: str
) -> Cell:
    cell = Cell(impl, concurrency)
    keys = [f"bench:{tag}:{impl}:{concurrency}:{i}" for i in range(opts.keys)]
    issued = 0
    deadline = trio.current_time() + opts.max_seconds

    async def worker(offset: int) -> None:
        nonlocal issued
        i = offset
        while issued < opts.requests:
            if trio.current_time() >= deadline:
                cell.cut_by_time = True
                return
            issued += 1
            key = keys[i % len(keys)]
            i += concurrency
            started = time.perf_counter()
            try:
                await check(key)
            except Exception as exc:
                cell.errors[type(exc).__name__] += 1
                continue
            cell.latencies.append(time.perf_counter() - started)

    started, cpu_started = time.perf_counter(), time.process_time()
    async with trio.open_nursery() as nursery:
        for w in range(concurrency):
            nursery.start_soon(worker, w)
    cell.elapsed = time.perf_counter() - started
    cell.cpu = time.process_time() - cpu_started
    cell.latencies.sort()
    return cell


def limiter_check(limiter: Any) -> Check:
    async def check(key: str) -> Any:
        return await limiter.check_rate_limit(key, max_requests=LIMIT, window_seconds=WINDOW)

    return check


async def part_a(opts: argparse.Namespace, redis_url: str) -> list[Cell]:
    import redis.asyncio as redis_asyncio
    import trio_asyncio
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    tag = secrets.token_hex(3)
    cells: list[Cell] = []
    impls = [i for i in IMPLS if i in opts.impls]

    def progress(cell: Cell) -> None:
        errs = sum(cell.errors.values())
        print(
            f"  a: {cell.impl:<7} c={cell.concurrency:<4} {cell.rate:>9.0f}/s "
            f"cpu {cell.cpu_us or 0:.0f} us "
            f"p50 {fmt_ms(percentile(cell.latencies, 50))} ms "
            f"p99 {fmt_ms(percentile(cell.latencies, 99))} ms errors {errs}",
            file=sys.stderr,
            flush=True,
        )
        cells.append(cell)

    if "memory" in impls:
        for c in opts.concurrency:
            check = limiter_check(MemoryRateLimiter())
            progress(await run_cell("memory", c, check, opts, tag))

    if "actor" in impls or "slot" in impls:
        actor = RedisActor(
            parse_redis_url(redis_url),
            pool_size=opts.pool_size,
            op_timeout=opts.op_timeout_ms / 1000,
        )
        async with trio.open_nursery() as nursery:
            scope = await nursery.start(actor.run)
            redis_limiter = RedisRateLimiter(actor)
            await limiter_check(redis_limiter)("bench:warmup")  # SCRIPT LOAD once

            async def measured(impl: str, c: int, check: Check) -> Cell:
                before = actor.statistics()
                cell = await run_cell(impl, c, check, opts, tag)
                after = actor.statistics()
                if after.batches > before.batches:
                    cell.per_pipeline = (after.calls - before.calls) / (
                        after.batches - before.batches
                    )
                return cell

            for c in opts.concurrency:
                if "actor" in impls:
                    progress(await measured("actor", c, limiter_check(redis_limiter)))
                if "slot" in impls:
                    slot = RateLimiterSlot(MemoryRateLimiter())
                    slot.swap(redis_limiter)
                    cell = await measured("slot", c, limiter_check(slot))
                    fallbacks = slot.statistics().fallbacks
                    if fallbacks:
                        cell.errors["answered by memory (fallback)"] += fallbacks
                    progress(cell)
            scope.cancel()

    if "bridge" in impls:
        script = load_script("sliding_window")
        url = parse_redis_url(redis_url)
        suffix = f"{os.getpid()}.bridge"
        counter = iter(range(10**12))
        async with trio_asyncio.open_loop():
            client = redis_asyncio.Redis(
                host=url.host,
                port=url.port,
                decode_responses=True,
                retry=Retry(NoBackoff(), 1),
                socket_timeout=5,
                socket_connect_timeout=5,
                max_connections=max(opts.concurrency) + 16,
            )
            try:
                await trio_asyncio.aio_as_trio(client.script_load)(script.source)

                async def bridge_check(key: str) -> Any:
                    return await trio_asyncio.aio_as_trio(client.evalsha)(
                        script.sha,
                        1,
                        PREFIX + "rl:" + key,
                        WINDOW * 1_000_000,
                        LIMIT,
                        f"{suffix}.{next(counter)}",
                    )

                for c in opts.concurrency:
                    progress(await run_cell("bridge", c, bridge_check, opts, tag))
            finally:
                await trio_asyncio.aio_as_trio(client.aclose)()
    return cells


# ------------------------------------------------------------------ part b


@dataclass
class HttpResult:
    name: str
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    elapsed: float = 0.0

    @property
    def errors(self) -> int:
        return sum(n for s, n in self.statuses.items() if s != "401")


async def http_round(
    server: AuthlyProcess, client: httpx.AsyncClient, requests: int, opts: argparse.Namespace
) -> HttpResult:
    result = HttpResult(server.name)
    issued = 0
    deadline = trio.current_time() + opts.max_seconds
    body = {"username": "admin", "password": "definitely-not-the-password"}

    async def worker() -> None:
        nonlocal issued
        while issued < requests and trio.current_time() < deadline:
            issued += 1
            started = time.perf_counter()
            try:
                response = await client.post(
                    f"{server.base_url}{LOGIN_PATH}", json=body, timeout=opts.http_timeout
                )
                status = str(response.status_code)
            except httpx.HTTPError as exc:
                status = type(exc).__name__
            result.statuses[status] += 1
            if status == "401":
                result.latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for _ in range(opts.http_concurrency):
            nursery.start_soon(worker)
    result.elapsed = time.perf_counter() - started
    return result


async def part_b(opts: argparse.Namespace, redis_url: str, workdir: Path) -> list[HttpResult]:
    servers = [
        AuthlyProcess("memory", workdir, None),
        AuthlyProcess("redis", workdir, redis_url),
    ]
    try:
        limits = httpx.Limits(
            max_connections=opts.http_concurrency * 2,
            max_keepalive_connections=opts.http_concurrency * 2,
        )
        async with httpx.AsyncClient(limits=limits) as client:
            await servers[0].wait_ready("memory")
            await servers[1].wait_ready("redis")
            for server in servers:  # warm-up: connections, argon2 thread, JIT-free caches
                await http_round(server, client, opts.http_concurrency * 4, opts)
            totals = {s.name: HttpResult(s.name) for s in servers}
            per_round = max(1, opts.http_requests // opts.http_rounds)
            for r in range(opts.http_rounds):
                order = servers if r % 2 == 0 else servers[::-1]
                for server in order:
                    res = await http_round(server, client, per_round, opts)
                    total = totals[server.name]
                    total.latencies += res.latencies
                    total.statuses += res.statuses
                    total.elapsed += res.elapsed
                    print(
                        f"  b: round {r + 1} {server.name:<6} {len(res.latencies)} failed "
                        f"logins, p99 {fmt_ms(percentile(res.latencies, 99))} ms",
                        file=sys.stderr,
                        flush=True,
                    )
    finally:
        for server in servers:
            server.stop()
    for total in totals.values():
        total.latencies.sort()
    return [totals["memory"], totals["redis"]]


# ------------------------------------------------------------------ part c


def session_payload() -> dict[str, str]:
    return {
        "user_id": str(uuid.uuid4()),
        "csrf_token": secrets.token_urlsafe(32),
        "created_at": str(int(time.time())),
        "client_id": "web-dashboard",
        "redirect_uri": "https://app.example.com/oauth/callback",
        "scope": "openid profile email offline_access",
        "state": secrets.token_urlsafe(24),
        "code_challenge": secrets.token_urlsafe(32),  # 43 chars, like a S256 challenge
    }


@dataclass
class SessionResult:
    sessions: int
    sampled: int
    memory_usage_avg: float
    used_memory_per_session: float
    payload_bytes: int
    fields: int
    encoding: str


async def part_c(opts: argparse.Namespace, redis_url: str) -> SessionResult:
    actor = RedisActor(parse_redis_url(redis_url), pool_size=opts.pool_size, op_timeout=5.0)
    async with trio.open_nursery() as nursery:
        scope = await nursery.start(actor.run)
        store = RedisSessionStore(actor)
        await store.set("warmup", {"a": "b"}, 60)  # SCRIPT LOAD outside the measurement
        await actor.execute("DEL", PREFIX + "sess:warmup")

        async def used_memory() -> int:
            info = await actor.execute("INFO", "memory", timeout=5.0)
            return int(info["used_memory"]) if isinstance(info, dict) else 0

        before = await used_memory()
        ids = [f"bench-{uuid.uuid4()}" for _ in range(opts.sessions)]
        payload_bytes = 0
        fields = 0
        for session_id in ids:
            data = session_payload()
            payload_bytes += sum(len(k) + len(v) for k, v in data.items())
            fields = len(data)
            await store.set(session_id, data, SESSION_TTL)
        after = await used_memory()
        sample = ids[:: max(1, len(ids) // opts.session_sample)]
        usages = [
            int(await actor.execute("MEMORY", "USAGE", PREFIX + "sess:" + sid, "SAMPLES", "0"))
            for sid in sample
        ]
        encoding = str(await actor.execute("OBJECT", "ENCODING", PREFIX + "sess:" + ids[0]))
        for start in range(0, len(ids), 500):
            await actor.execute(
                "DEL", *[PREFIX + "sess:" + sid for sid in ids[start : start + 500]]
            )
        scope.cancel()
    return SessionResult(
        sessions=len(ids),
        sampled=len(usages),
        memory_usage_avg=sum(usages) / len(usages),
        used_memory_per_session=(after - before) / len(ids),
        payload_bytes=round(payload_bytes / len(ids)),
        fields=fields,
        encoding=encoding,
    )


# ------------------------------------------------------------------ report


def table(headers: list[str], rows: list[list[str]], markdown: bool) -> str:
    if markdown:
        lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    out = ["  ".join(h.rjust(w) for h, w in zip(headers, widths, strict=True))]
    out.append("  ".join("-" * w for w in widths))
    out += ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(out)


def render(
    opts: argparse.Namespace,
    argv: list[str],
    redis_version: str,
    cells: list[Cell],
    http: list[HttpResult],
    sessions: SessionResult | None,
    load_before: str,
) -> str:
    md = opts.markdown
    out: list[str] = []
    m = machine()
    command = shlex.join(["python", "scripts/bench_redis.py", *argv])
    date = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    if md:
        out.append(f"### Redis backends benchmark ({date})")
        out.append("")
        out.append(
            f"- machine: {m['nproc']} cores ({m['cpu']}), {m['os']}, Python {m['python']}, "
            f"redis-server {redis_version}, load average {load_before} before / "
            f"{m['load']} after"
        )
        out.append(f"- command: `{command}`")
    else:
        out.append(f"bench_redis  {date}")
        out.append(
            f"machine: {m['nproc']} cores, {m['cpu']}, Python {m['python']}, "
            f"redis-server {redis_version}, load {load_before} -> {m['load']}"
        )
        out.append(f"command: {command}")
    if cells:
        out.append("")
        out.append(
            f"**a. rate-limit decisions in process** (check_rate_limit, limit 10^9, window "
            f"{WINDOW} s, {opts.keys} keys; each cell <= {opts.requests} decisions or "
            f"{opts.max_seconds:g} s; actor pool {opts.pool_size}, op timeout "
            f"{opts.op_timeout_ms} ms)"
            if md
            else f"a. rate-limit decisions in process ({opts.keys} keys, <= {opts.requests} "
            f"decisions or {opts.max_seconds:g} s per cell, actor pool {opts.pool_size}, "
            f"op timeout {opts.op_timeout_ms} ms)"
        )
        out.append("")
        rows = []
        base = {c.concurrency: c.rate for c in cells if c.impl == "bridge"}
        for c in cells:
            vs = "-"
            if c.impl != "bridge" and base.get(c.concurrency):
                vs = f"{c.rate / base[c.concurrency]:.1f}x"
            errs = ", ".join(f"{k} {n}" for k, n in c.errors.items()) or "0"
            rows.append(
                [
                    c.impl,
                    str(c.concurrency),
                    str(len(c.latencies)),
                    f"{c.rate:,.0f}",
                    fmt_ms(percentile(c.latencies, 50)),
                    fmt_ms(percentile(c.latencies, 99)),
                    "-" if c.cpu_us is None else f"{c.cpu_us:.0f}",
                    "-" if c.per_pipeline is None else f"{c.per_pipeline:.1f}",
                    vs,
                    errs + (" (time cap)" if c.cut_by_time else ""),
                ]
            )
        headers = ["backend", "concurrency", "decisions", "decisions/s", "p50 ms", "p99 ms"]
        headers += ["CPU us/decision", "calls/pipeline", "vs bridge", "errors"]
        out.append(table(headers, rows, md))
        out.append("")
        out.append(
            "memory = MemoryRateLimiter; actor = RedisRateLimiter over RedisActor; slot = the "
            "same behind RateLimiterSlot (fallback wrapper + memory shadow); bridge = "
            "redis.asyncio EVALSHA per call through trio_asyncio.aio_as_trio, no batching. "
            "CPU us/decision is this process's CPU time (not redis-server's) per decision: "
            "steadier than decisions/s on a busy machine."
        )
    if http:
        out.append("")
        out.append(
            f"**b. failed login over HTTP** (POST {LOGIN_PATH}, wrong password, concurrency "
            f"{opts.http_concurrency}, httpx, {opts.http_rounds} alternating rounds, cheap "
            "argon2 t=1 1 MiB, AUTHLY_LOGIN_RATE_LIMIT=1000000)"
            if md
            else f"b. failed login over HTTP (concurrency {opts.http_concurrency}, "
            f"{opts.http_rounds} alternating rounds, cheap argon2)"
        )
        out.append("")
        rows = []
        for r in http:
            odd = ", ".join(f"{s} {n}" for s, n in r.statuses.items() if s != "401") or "0"
            rows.append(
                [
                    "redis" if r.name == "redis" else "memory",
                    str(len(r.latencies)),
                    f"{len(r.latencies) / r.elapsed:,.0f}" if r.elapsed else "-",
                    fmt_ms(percentile(r.latencies, 50)),
                    fmt_ms(percentile(r.latencies, 99)),
                    odd,
                ]
            )
        headers = ["rate-limit backend", "requests", "req/s", "p50 ms", "p99 ms", "errors"]
        out.append(table(headers, rows, md))
        mem, red = http
        p50m, p50r = percentile(mem.latencies, 50), percentile(red.latencies, 50)
        p99m, p99r = percentile(mem.latencies, 99), percentile(red.latencies, 99)
        if p50m is not None and p50r is not None and p99m is not None and p99r is not None:
            out.append("")
            out.append(
                f"Redis minus memory: p50 {(p50r - p50m) * 1000:+.2f} ms, "
                f"p99 {(p99r - p99m) * 1000:+.2f} ms"
            )
    if sessions is not None:
        s = sessions
        out.append("")
        out.append(
            "**c. Redis memory per stored session**" if md else "c. Redis memory per session"
        )
        out.append("")
        rows = [
            [
                str(s.sessions),
                f"{s.fields} (+1 marker)",
                str(s.payload_bytes),
                s.encoding,
                f"{s.memory_usage_avg:.0f} (avg of {s.sampled})",
                f"{s.used_memory_per_session:.0f}",
            ]
        ]
        headers = ["sessions", "fields", "payload bytes", "encoding", "MEMORY USAGE bytes"]
        out.append(table([*headers, "used_memory growth / session"], rows, md))
        out.append("")
        out.append(
            "Payload: user_id (uuid4), csrf_token, created_at, client_id, redirect_uri, scope, "
            "state, code_challenge; stored by RedisSessionStore.set (one hash + PEXPIRE)."
        )
    return "\n".join(out)


# ------------------------------------------------------------------ main


def _choices(allowed: tuple[str, ...]) -> Callable[[str], list[str]]:
    def parse(text: str) -> list[str]:
        values = [p.strip() for p in text.split(",") if p.strip()]
        bad = [v for v in values if v not in allowed]
        if bad or not values:
            raise argparse.ArgumentTypeError(f"choose from {','.join(allowed)}")
        return values

    return parse


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--parts", type=_choices(("a", "b", "c")), default=["a", "b", "c"], help="e.g. a,c"
    )
    p.add_argument("--impls", type=_choices(IMPLS), default=list(IMPLS), help="part a backends")
    p.add_argument(
        "--concurrency", type=int_list(4096), default=[1, 32, 256], help="part a (1,32,256)"
    )
    p.add_argument("--requests", type=int, default=20_000, help="decisions per cell (a)")
    p.add_argument("--max-seconds", type=float, default=10.0, help="time cap per cell/round")
    p.add_argument("--keys", type=int, default=1000, help="distinct rate-limit keys (a)")
    p.add_argument("--pool-size", type=int, default=10, help="actor connections (a, c)")
    p.add_argument("--op-timeout-ms", type=int, default=250, help="actor call deadline (a)")
    p.add_argument("--http-requests", type=int, default=4000, help="failed logins per server")
    p.add_argument("--http-concurrency", type=int, default=32)
    p.add_argument("--http-rounds", type=int, default=4, help="alternating rounds (b)")
    p.add_argument("--http-timeout", type=float, default=10.0)
    p.add_argument("--sessions", type=int, default=1000)
    p.add_argument("--session-sample", type=int, default=100, help="keys given MEMORY USAGE")
    p.add_argument("--markdown", action="store_true", help="Markdown tables with a header")
    opts = p.parse_args(argv)
    checks = [
        (1 <= opts.requests <= 10_000_000, "--requests must be in 1..10000000"),
        (0 < opts.max_seconds <= 600, "--max-seconds must be in (0, 600]"),
        (1 <= opts.keys <= 1_000_000, "--keys must be in 1..1000000"),
        (1 <= opts.pool_size <= 100, "--pool-size must be in 1..100"),
        (10 <= opts.op_timeout_ms <= 60_000, "--op-timeout-ms must be in 10..60000"),
        (1 <= opts.http_requests <= 1_000_000, "--http-requests must be in 1..1000000"),
        (1 <= opts.http_concurrency <= 1024, "--http-concurrency must be in 1..1024"),
        (1 <= opts.http_rounds <= 100, "--http-rounds must be in 1..100"),
        (1 <= opts.sessions <= 1_000_000, "--sessions must be in 1..1000000"),
        (opts.session_sample >= 1, "--session-sample must be at least 1"),
    ]
    for ok, message in checks:
        if not ok:
            p.error(message)
    return opts


async def main_async(
    opts: argparse.Namespace, redis_url: str, workdir: Path
) -> tuple[list[Cell], list[HttpResult], SessionResult | None]:
    cells: list[Cell] = []
    http: list[HttpResult] = []
    sessions = None
    if "a" in opts.parts:
        cells = await part_a(opts, redis_url)
    if "b" in opts.parts:
        http = await part_b(opts, redis_url, workdir)
    if "c" in opts.parts:
        sessions = await part_c(opts, redis_url)
    return cells, http, sessions


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    opts = parse_args(argv)
    load_before = machine()["load"]
    workdir = Path(tempfile.mkdtemp(prefix="authly-bench-redis-"))
    redis = RedisServerProcess(workdir, "bench_redis")
    version = redis.version()
    try:
        try:
            trio.run(redis.start)
        except RuntimeError as exc:
            raise SystemExit(f"bench_redis: {exc}") from None
        print(f"bench_redis: redis-server {version} on {redis.url}", file=sys.stderr)
        cells, http, sessions = trio.run(main_async, opts, redis.url, workdir)
    finally:
        redis.stop()
    print(render(opts, argv, version, cells, http, sessions, load_before))
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
