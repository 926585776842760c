"""The Redis Cluster runs of scripts/bench_redis.py (``--cluster``, ``--compare-cluster``):
a private cluster of 3 masters + 3 replicas (tests/support/cluster.py), part a against it
(the bridge baseline over redis-py's RedisCluster), part b with a single Redis and the
cluster side by side, and the cluster / single tables (issue 11's target: the cluster
>= 80 % of single-node decisions/s at concurrency 256)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import trio
from tests.support.cluster import RedisClusterGroup

from authly.backends.redis import PREFIX
from authly.redis.actor import load_script
from authly.redis.url import parse_redis_url
from benchkit import redis_decisions
from benchkit.common import fmt_ms, percentile, table
from benchkit.redis_decisions import IMPLS, LIMIT, WINDOW, Cell, run_cell
from benchkit.redis_login import HttpResult, LoginServer, _difference, take_turns

TARGET = 0.80  # cluster / single decisions/s
TARGET_CONCURRENCY = 256
TOPOLOGY = "3 masters + 3 replicas, cluster-node-timeout 1000 ms"
LEGEND = (
    " redis = which Redis: single (one redis-server) or cluster (Redis Cluster, "
    f"{TOPOLOGY}, reached by the comma-separated URL of its masters), plain TCP on loopback, "
    "all on the same 2 cores as this process. The cluster's bridge row uses redis-py's "
    "RedisCluster (one EVALSHA per call, routed to the key's master)."
)


def start_cluster(workdir: Path) -> RedisClusterGroup:
    """Start the cluster (free loopback ports, never 6379) and wait until it settled."""
    path = workdir / "cluster"
    path.mkdir()
    group = RedisClusterGroup(path)  # RuntimeError without redis-server or redis-cli
    trio.run(group.start)
    return group


def narrowed(opts: argparse.Namespace, **changes: object) -> argparse.Namespace:
    return argparse.Namespace(**(vars(opts) | changes))


async def part_a(opts: argparse.Namespace, redis_url: str, label: str = "cluster") -> list[Cell]:
    """redis_decisions.part_a against the cluster, but its bridge over RedisCluster."""
    cells: list[Cell] = []
    others = [i for i in opts.impls if i != "bridge"]
    if others:
        cells += await redis_decisions.part_a(narrowed(opts, impls=others), redis_url, label)
    if "bridge" in opts.impls:
        cells += await cluster_bridge(opts, redis_url, label)
    return cells


async def cluster_bridge(opts: argparse.Namespace, redis_url: str, label: str) -> list[Cell]:
    """The bridge baseline on a cluster: RedisCluster.evalsha once per decision through
    trio_asyncio.aio_as_trio, no batching; pools large enough never to be the limit."""
    import trio_asyncio
    from redis.asyncio.cluster import ClusterNode, RedisCluster

    script = load_script("sliding_window")
    url = parse_redis_url(redis_url)
    suffix = f"{os.getpid()}.bridge"
    counter = iter(range(10**12))
    tag = os.urandom(3).hex()
    cells: list[Cell] = []
    async with trio_asyncio.open_loop():
        client = RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in url.hosts],
            decode_responses=True,
            socket_timeout=5,
            socket_connect_timeout=5,
            max_connections=max(opts.concurrency) + 16,
        )
        try:
            await trio_asyncio.aio_as_trio(client.initialize)()
            await trio_asyncio.aio_as_trio(client.script_load)(script.source)  # every master

            async def check(key: str) -> Any:
                return await trio_asyncio.aio_as_trio(client.evalsha)(
                    script.sha,
                    1,
                    PREFIX + "rl:" + key,
                    WINDOW * 1_000_000,
                    LIMIT,
                    f"{suffix}.{next(counter)}",
                )

            for c in opts.concurrency:
                cell = await run_cell("bridge", c, check, opts, tag)
                cell.redis = label
                print(
                    f"  a: bridge  {label:<7} c={c:<4} {cell.rate:>9.0f}/s cpu "
                    f"{cell.cpu_us or 0:.0f} us p99 {fmt_ms(percentile(cell.latencies, 99))} "
                    f"ms errors {sum(cell.errors.values())}",
                    file=sys.stderr,
                    flush=True,
                )
                cells.append(cell)
        finally:
            await trio_asyncio.aio_as_trio(client.aclose)()
    return cells


def decisions_section(opts: argparse.Namespace, cells: list[Cell]) -> list[str]:
    """Part a's table (its legend saying what single and cluster are) and, with both,
    the cluster / single table."""
    out = []
    for line in redis_decisions.section(opts, cells):
        head, found, _ = line.partition(" redis = the transport")
        out.append(head + LEGEND if found else line)
    if {"single", "cluster"} <= {c.redis for c in cells}:
        out += ["", *ratio_section(opts, cells)]
    return out


def ratio_section(opts: argparse.Namespace, cells: list[Cell]) -> list[str]:
    """Cluster against single node for each Redis backend and concurrency: decisions/s
    ratio (judged at concurrency 256), latency and this process's CPU per decision."""
    by = {(c.impl, c.redis, c.concurrency): c for c in cells}
    rows = []
    for impl in IMPLS:
        for conc in opts.concurrency:
            one, many = by.get((impl, "single", conc)), by.get((impl, "cluster", conc))
            if one is None or many is None or not one.rate:
                continue
            ratio = many.rate / one.rate
            verdict = "-"
            if conc == TARGET_CONCURRENCY:
                verdict = "met" if ratio >= TARGET else "missed"
            rows.append(
                [
                    impl,
                    str(conc),
                    f"{one.rate:,.0f}",
                    f"{many.rate:,.0f}",
                    f"{ratio:.0%}",
                    verdict,
                    f"{fmt_ms(percentile(one.latencies, 50))} / "
                    f"{fmt_ms(percentile(many.latencies, 50))}",
                    f"{fmt_ms(percentile(one.latencies, 99))} / "
                    f"{fmt_ms(percentile(many.latencies, 99))}",
                    f"{one.cpu_us or 0:.0f} / {many.cpu_us or 0:.0f}",
                ]
            )
    headers = ["backend", "concurrency", "single /s", "cluster /s", "cluster / single"]
    headers += [f">= {TARGET:.0%} at c={TARGET_CONCURRENCY}", "p50 ms single / cluster"]
    headers += ["p99 ms single / cluster", "CPU us single / cluster"]
    heading = (
        "**a'. Redis Cluster versus a single node** (same cells, measured back to back)"
        if opts.markdown
        else "a'. Redis Cluster versus a single node (same cells, back to back)"
    )
    return [heading, "", *table(headers, rows, opts.markdown)]


async def part_b_compare(
    opts: argparse.Namespace, single_url: str, cluster_url: str, workdir: Path
) -> list[HttpResult]:
    """Part b with three servers (memory, Redis single, Redis cluster) taking turns in a
    rotating order, round after round (as redis_login.part_b does with TLS)."""
    servers = [
        LoginServer("memory", workdir, None),
        LoginServer("redis", workdir, single_url, "redis (single)"),
        LoginServer("redis", workdir, cluster_url, "redis (cluster)"),
    ]
    return await take_turns(opts, servers)


def login_section(opts: argparse.Namespace, http: list[HttpResult]) -> list[str]:
    """Part b's table for memory, Redis single and Redis cluster, with the differences."""
    md = opts.markdown
    heading = (
        f"**b. failed login over HTTP** (POST /api/v1/auth/login, wrong password, "
        f"concurrency {opts.http_concurrency}, httpx, {opts.http_rounds} rotating rounds, "
        "cheap argon2 t=1 1 MiB, AUTHLY_LOGIN_RATE_LIMIT=1000000)"
        if md
        else f"b. failed login over HTTP (concurrency {opts.http_concurrency}, "
        f"{opts.http_rounds} rotating rounds, cheap argon2)"
    )
    rows = []
    for r in http:
        odd = ", ".join(f"{s} {n}" for s, n in r.statuses.items() if s != "401") or "0"
        rate = f"{len(r.latencies) / r.elapsed:,.0f}" if r.elapsed else "-"
        p50, p99 = percentile(r.latencies, 50), percentile(r.latencies, 99)
        rows.append([r.name, str(len(r.latencies)), rate, fmt_ms(p50), fmt_ms(p99), odd])
    headers = ["rate-limit backend", "requests", "req/s", "p50 ms", "p99 ms", "errors"]
    out = [heading, "", *table(headers, rows, md)]
    mem, single, cluster = http
    for red in (single, cluster):
        diff = _difference(red, mem)
        if diff:
            out += ["", f"{red.name.capitalize()} minus memory: {diff}"]
    diff = _difference(cluster, single)
    if diff and single.elapsed and cluster.elapsed and single.latencies:
        ratio = (len(cluster.latencies) / cluster.elapsed) / (
            len(single.latencies) / single.elapsed
        )
        out += ["", f"Cluster minus single: {diff}; cluster / single throughput {ratio:.0%}"]
    return out
