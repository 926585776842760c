"""Part a of scripts/bench_redis.py: rate-limit decisions per second and their latency,
in process, through the memory limiter, the Redis limiter over the actor, the same behind
the slot, and a per-call trio-asyncio bridge without the actor (the baseline)."""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import trio

from authly.backends.memory import MemoryRateLimiter
from authly.backends.redis import PREFIX, RedisRateLimiter
from authly.backends.slot import RateLimiterSlot
from authly.redis.actor import RedisActor, load_script
from authly.redis.url import parse_redis_url
from benchkit.common import fmt_ms, percentile, table

LIMIT = 10**9
WINDOW = 60
IMPLS = ("memory", "actor", "slot", "bridge")


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
    redis: str = ""  # the Redis transport ("plain", "tls"; "" for memory or unlabelled)

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


async def part_a(opts: argparse.Namespace, redis_url: str, label: str = "") -> list[Cell]:
    """The cells of ``opts.impls`` x ``opts.concurrency``; the Redis ones (actor, slot,
    bridge) labelled ``label`` (the transport, e.g. "tls") when given."""
    import redis.asyncio as redis_asyncio
    import trio_asyncio
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    tag = secrets.token_hex(3)
    cells: list[Cell] = []
    impls = [i for i in IMPLS if i in opts.impls]

    def progress(cell: Cell) -> None:
        if cell.impl != "memory":
            cell.redis = label
        errs = sum(cell.errors.values())
        print(
            f"  a: {cell.impl:<7} {cell.redis:<5} c={cell.concurrency:<4} {cell.rate:>9.0f}/s "
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
                **url.ssl_kwargs(),  # rediss://: the same CA and client certificate
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


def section(opts: argparse.Namespace, cells: list[Cell]) -> list[str]:
    """Part a's table with its heading and legend."""
    md = opts.markdown
    heading = (
        f"**a. rate-limit decisions in process** (check_rate_limit, limit 10^9, window "
        f"{WINDOW} s, {opts.keys} keys; each cell <= {opts.requests} decisions or "
        f"{opts.max_seconds:g} s; actor pool {opts.pool_size}, op timeout "
        f"{opts.op_timeout_ms} ms)"
        if md
        else f"a. rate-limit decisions in process ({opts.keys} keys, <= {opts.requests} "
        f"decisions or {opts.max_seconds:g} s per cell, actor pool {opts.pool_size}, "
        f"op timeout {opts.op_timeout_ms} ms)"
    )
    rows = []
    labelled = any(c.redis for c in cells)
    base = {(c.redis, c.concurrency): c.rate for c in cells if c.impl == "bridge"}
    for c in cells:
        vs = "-"
        if c.impl != "bridge" and base.get((c.redis, c.concurrency)):
            vs = f"{c.rate / base[(c.redis, c.concurrency)]:.1f}x"
        errs = ", ".join(f"{k} {n}" for k, n in c.errors.items()) or "0"
        rows.append(
            [
                c.impl,
                *([c.redis or "-"] if labelled else []),
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
    headers = ["backend", *(["redis"] if labelled else []), "concurrency", "decisions"]
    headers += ["decisions/s", "p50 ms", "p99 ms"]
    headers += ["CPU us/decision", "calls/pipeline", "vs bridge", "errors"]
    legend = (
        "memory = MemoryRateLimiter; actor = RedisRateLimiter over RedisActor; slot = the "
        "same behind RateLimiterSlot (fallback wrapper + memory shadow); bridge = "
        "redis.asyncio EVALSHA per call through trio_asyncio.aio_as_trio, no batching. "
        "CPU us/decision is this process's CPU time (not redis-server's) per decision: "
        "steadier than decisions/s on a busy machine."
    )
    if labelled:
        legend += (
            " redis = the transport to redis-server: plain TCP or TLS (rediss://, client "
            "certificate required), both on loopback."
        )
    out = [heading, "", *table(headers, rows, md), "", legend]
    if {"plain", "tls"} <= {c.redis for c in cells}:
        out += ["", *tls_section(opts, cells)]
    return out


def tls_section(opts: argparse.Namespace, cells: list[Cell]) -> list[str]:
    """TLS against plain for each Redis backend and concurrency: decisions/s ratio (the
    issue's target is >= 70 %), latency and this process's CPU per decision."""
    by = {(c.impl, c.redis, c.concurrency): c for c in cells}
    rows = []
    for impl in IMPLS:
        for conc in opts.concurrency:
            plain, tls = by.get((impl, "plain", conc)), by.get((impl, "tls", conc))
            if plain is None or tls is None or not plain.rate:
                continue
            ratio = tls.rate / plain.rate
            rows.append(
                [
                    impl,
                    str(conc),
                    f"{plain.rate:,.0f}",
                    f"{tls.rate:,.0f}",
                    f"{ratio:.0%}",
                    "met" if ratio >= 0.70 else "missed",
                    f"{fmt_ms(percentile(plain.latencies, 50))} / "
                    f"{fmt_ms(percentile(tls.latencies, 50))}",
                    f"{fmt_ms(percentile(plain.latencies, 99))} / "
                    f"{fmt_ms(percentile(tls.latencies, 99))}",
                    f"{plain.cpu_us or 0:.0f} / {tls.cpu_us or 0:.0f}",
                ]
            )
    headers = ["backend", "concurrency", "plain /s", "TLS /s", "TLS / plain", ">= 70 %"]
    headers += ["p50 ms plain / TLS", "p99 ms plain / TLS", "CPU us plain / TLS"]
    heading = (
        "**a'. TLS versus plain** (same cells, measured back to back)"
        if opts.markdown
        else "a'. TLS versus plain (same cells, back to back)"
    )
    return [heading, "", *table(headers, rows, opts.markdown)]
