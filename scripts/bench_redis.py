#!/usr/bin/env python3
"""Redis backend benchmark: rate-limit decisions/s and latency, what Redis adds to a
login over HTTP, and Redis memory per session.

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

TLS (``--tls`` or ``--compare-tls``): a second redis-server serving TLS only on its own
free loopback port, with a CA, a server certificate for 127.0.0.1 and a client
certificate made into the temporary directory (tests/support/certs.py; ECDSA P-256) and
``tls-auth-clients yes``; Authly and the bridge reach it by ``rediss://127.0.0.1:PORT/0?
ssl_ca_certs=...&ssl_certfile=...&ssl_keyfile=...``.
- ``--tls``          parts a, b and c against the TLS server only (no plain one);
- ``--compare-tls``  plain and TLS back to back in one run (noise hits both alike):
  part a measures each Redis cell (backend x concurrency) on plain then on TLS, the order
  flipping from cell to cell, and adds a table of TLS / plain (target >= 70 %); part b
  runs three servers (memory, Redis plain, Redis TLS) in rotating rounds; part c (memory
  per session, the same whatever the transport) runs on the plain server.
Redis Cluster (``--cluster`` or ``--compare-cluster``): a private cluster of 3 masters with
a replica each (tests/support/cluster.py: ``redis-server --cluster-enabled yes`` on free
loopback ports, joined by ``redis-cli --cluster create``), reached by the comma-separated
URL of its masters, ``redis://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3/0``, through the same
actor; the bridge baseline uses redis-py's RedisCluster there.
- ``--cluster``          parts a and b against the cluster only (part c, memory per
  session, is a single node's figure: skipped);
- ``--compare-cluster``  a single redis-server and the cluster back to back in one run:
  part a measures each Redis cell on single then on cluster, the order flipping from cell
  to cell, and adds a table of cluster / single (target >= 80 % at concurrency 256); part b
  runs three servers (memory, Redis single, Redis cluster) in rotating rounds; part c runs
  on the single server. The helpers live in scripts/benchkit/redis_cluster.py.
Without any of these four options: one plain redis-server.

The script starts its own redis-server on a free loopback port (``--save ""
--appendonly no``; never the shared 6379) and its own Authly processes (SQLite in a
temporary directory), and stops them on the way out. Errors (timeouts, BackendUnavailable,
non-401 answers in part b) are counted in the tables, never hidden.

Examples:
    .venv/bin/python scripts/bench_redis.py
    .venv/bin/python scripts/bench_redis.py --markdown
    .venv/bin/python scripts/bench_redis.py --parts a --concurrency 1,16,64 --requests 50000
    .venv/bin/python scripts/bench_redis.py --parts a,b --compare-tls --markdown
    .venv/bin/python scripts/bench_redis.py --parts a,b --compare-cluster --markdown

Each part lives in scripts/benchkit/: redis_decisions.py (a), redis_login.py (b),
redis_sessions.py (c), each with its own table.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import benchkit  # noqa: F401  (first: puts the checkout's root on sys.path, for tests.support)
import trio

# isort: split
from benchkit import redis_cluster, redis_decisions, redis_login, redis_sessions
from benchkit.common import choice_list, int_list, machine
from benchkit.redis_decisions import IMPLS, Cell
from benchkit.redis_login import HttpResult
from benchkit.redis_sessions import SessionResult
from tests.support.certs import make_pki
from tests.support.cluster import RedisClusterGroup
from tests.support.processes import REDIS_SERVER, RedisProcess, RedisTls

PartA = Callable[[argparse.Namespace, str, str], Awaitable[list[Cell]]]


def redis_version() -> str:
    out = subprocess.run(
        [REDIS_SERVER or "redis-server", "--version"], capture_output=True, text=True
    )
    words = [w[2:] for w in out.stdout.split() if w.startswith("v=")]
    return words[-1] if words else "?"


def tls_summary(tls: RedisTls, port: int) -> str:
    """The protocol and cipher a client (trusting the CA, presenting the client
    certificate) negotiates with the TLS redis-server on ``port``."""
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
            tls.client_context().wrap_socket(raw, server_hostname="127.0.0.1") as conn,
        ):
            cipher = conn.cipher()
            return f"{conn.version()} {cipher[0] if cipher else '?'}"
    except OSError as exc:
        return f"? ({exc})"


def render(
    opts: argparse.Namespace,
    argv: list[str],
    redis_version: str,
    cells: list[Cell],
    http: list[HttpResult],
    sessions: SessionResult | None,
    load_before: str,
    transport: str = "",
) -> str:
    """The header (machine, command) and each part's section."""
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
        if transport:
            out.append(f"- redis transport: {transport}")
    else:
        out.append(f"bench_redis  {date}")
        out.append(
            f"machine: {m['nproc']} cores, {m['cpu']}, Python {m['python']}, "
            f"redis-server {redis_version}, load {load_before} -> {m['load']}"
        )
        out.append(f"command: {command}")
        if transport:
            out.append(f"redis transport: {transport}")
    cluster = opts.cluster or opts.compare_cluster
    if cells:
        section = redis_cluster.decisions_section if cluster else redis_decisions.section
        out += ["", *section(opts, cells)]
    if http:
        login = redis_cluster.login_section if opts.compare_cluster else redis_login.section
        out += ["", *login(opts, http)]
    if sessions is not None:
        out += ["", *redis_sessions.section(opts, sessions)]
    return "\n".join(out)


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--parts", type=choice_list(("a", "b", "c")), default=["a", "b", "c"], help="e.g. a,c"
    )
    p.add_argument("--impls", type=choice_list(IMPLS), default=list(IMPLS), help="part a backends")
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
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--tls", action="store_true", help="a TLS redis-server instead of plain")
    mode.add_argument(
        "--compare-tls", action="store_true", help="plain and TLS back to back (parts a, b)"
    )
    mode.add_argument("--cluster", action="store_true", help="a Redis Cluster (parts a, b)")
    mode.add_argument(
        "--compare-cluster", action="store_true", help="single and cluster back to back (a, b)"
    )
    opts = p.parse_args(argv)
    if opts.cluster and "c" in opts.parts:
        print("bench_redis: part c (a single node's figure) skipped", file=sys.stderr)
        opts.parts = [x for x in opts.parts if x != "c"]
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


def part_a_for(label: str) -> PartA:
    """Part a's runner for a Redis labelled ``label`` (a cluster has its own bridge)."""
    return redis_cluster.part_a if label == "cluster" else redis_decisions.part_a


async def part_a_compare(opts: argparse.Namespace, urls: dict[str, str]) -> list[Cell]:
    """Part a on both Redis of ``urls`` (plain and TLS, or single and cluster): each Redis
    cell (backend x concurrency) on one then at once on the other, the order flipping
    from cell to cell; memory once."""
    cells: list[Cell] = []
    impls = [i for i in IMPLS if i in opts.impls]
    first, second = urls

    def narrowed(**changes: object) -> argparse.Namespace:
        return argparse.Namespace(**(vars(opts) | changes))

    if "memory" in impls:
        cells += await redis_decisions.part_a(narrowed(impls=["memory"]), urls[first])
    flip = False
    for c in opts.concurrency:
        for impl in impls:
            if impl == "memory":
                continue
            for label in (second, first) if flip else (first, second):
                sub = narrowed(impls=[impl], concurrency=[c])
                cells += await part_a_for(label)(sub, urls[label], label)
            flip = not flip
    order = {"": 0, first: 1, second: 2}
    cells.sort(key=lambda x: (IMPLS.index(x.impl), x.concurrency, order[x.redis]))
    return cells


async def main_async(
    opts: argparse.Namespace, urls: dict[str, str], workdir: Path
) -> tuple[list[Cell], list[HttpResult], SessionResult | None]:
    """Run the chosen parts against the Redis of ``urls``, by label: "plain" (the default),
    "tls", "cluster", or two of them ("plain" and "tls"; "single" and "cluster")."""
    cells: list[Cell] = []
    http: list[HttpResult] = []
    sessions = None
    compare = len(urls) == 2
    label, redis_url = next(iter(urls.items()))  # the single server when there are two
    if "a" in opts.parts:
        if compare:
            cells = await part_a_compare(opts, urls)
        else:
            cells = await part_a_for(label)(opts, redis_url, "" if label == "plain" else label)
    if "b" in opts.parts:
        if opts.compare_cluster:
            http = await redis_cluster.part_b_compare(opts, redis_url, urls["cluster"], workdir)
        elif compare:
            http = await redis_login.part_b(
                opts, redis_url, workdir, label="redis (plain)", tls_url=urls["tls"]
            )
        else:
            name = None if label == "plain" else f"redis ({label})"
            http = await redis_login.part_b(opts, redis_url, workdir, label=name)
    if "c" in opts.parts:
        sessions = await redis_sessions.part_c(opts, redis_url)
    return cells, http, sessions


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    opts = parse_args(argv)
    load_before = machine()["load"]
    workdir = Path(tempfile.mkdtemp(prefix="authly-bench-redis-"))
    servers: dict[str, RedisProcess] = {}
    cluster: RedisClusterGroup | None = None
    transport = ""
    try:
        try:
            version = redis_version()
            if not (opts.tls or opts.cluster):
                servers["plain"] = RedisProcess(workdir / "redis.log")
            if opts.tls or opts.compare_tls:
                pki = make_pki(workdir / "pki")
                tls = RedisTls(
                    pki.server_cert,
                    pki.server_key,
                    pki.ca_cert,
                    client_cert=pki.client_cert,
                    client_key=pki.client_key,
                )
                servers["tls"] = RedisProcess(workdir / "redis-tls.log", tls=tls)
            for server in servers.values():
                trio.run(server.start)
            if opts.cluster or opts.compare_cluster:
                cluster = redis_cluster.start_cluster(workdir)
                transport = (
                    f"{'one redis-server and ' if servers else ''}a Redis Cluster "
                    f"({redis_cluster.TOPOLOGY}), plain TCP, loopback"
                )
        except RuntimeError as exc:
            raise SystemExit(f"bench_redis: {exc}") from None
        if "tls" in servers:
            transport = (
                f"{'plain TCP and ' if 'plain' in servers else ''}TLS "
                f"({tls_summary(tls, servers['tls'].port)}, ECDSA P-256 certificates, "
                "client certificate required), loopback"
            )
        for name, server in servers.items():
            print(f"bench_redis: redis-server {version} ({name}) on {server.url}", file=sys.stderr)
        urls = {name: server.url for name, server in servers.items()}
        if cluster is not None:
            print(f"bench_redis: Redis Cluster on {cluster.url}", file=sys.stderr)
            urls = {"single": urls["plain"]} if servers else {}
            urls["cluster"] = cluster.url
        cells, http, sessions = trio.run(main_async, opts, urls, workdir)
    finally:
        for server in servers.values():
            server.close()
        if cluster is not None:
            cluster.close()
    print(render(opts, argv, version, cells, http, sessions, load_before, transport))
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
