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

The script starts its own redis-server on a free loopback port (``--save ""
--appendonly no``; never the shared 6379) and its own Authly processes (SQLite in a
temporary directory), and stops them on the way out. Errors (timeouts, BackendUnavailable,
non-401 answers in part b) are counted in the tables, never hidden.

Examples:
    .venv/bin/python scripts/bench_redis.py
    .venv/bin/python scripts/bench_redis.py --markdown
    .venv/bin/python scripts/bench_redis.py --parts a --concurrency 1,16,64 --requests 50000

Each part lives in scripts/benchkit/: redis_decisions.py (a), redis_login.py (b),
redis_sessions.py (c), each with its own table.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import benchkit  # noqa: F401  (first: puts the checkout's root on sys.path, for tests.support)
import trio

# isort: split
from benchkit import redis_decisions, redis_login, redis_sessions
from benchkit.common import choice_list, int_list, machine
from benchkit.redis_decisions import IMPLS, Cell
from benchkit.redis_login import HttpResult
from benchkit.redis_sessions import SessionResult
from tests.support.processes import REDIS_SERVER, RedisProcess


def redis_version() -> str:
    out = subprocess.run(
        [REDIS_SERVER or "redis-server", "--version"], capture_output=True, text=True
    )
    words = [w[2:] for w in out.stdout.split() if w.startswith("v=")]
    return words[-1] if words else "?"


def render(
    opts: argparse.Namespace,
    argv: list[str],
    redis_version: str,
    cells: list[Cell],
    http: list[HttpResult],
    sessions: SessionResult | None,
    load_before: str,
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
    else:
        out.append(f"bench_redis  {date}")
        out.append(
            f"machine: {m['nproc']} cores, {m['cpu']}, Python {m['python']}, "
            f"redis-server {redis_version}, load {load_before} -> {m['load']}"
        )
        out.append(f"command: {command}")
    if cells:
        out += ["", *redis_decisions.section(opts, cells)]
    if http:
        out += ["", *redis_login.section(opts, http)]
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
    """Run the chosen parts against the Redis at ``redis_url``."""
    cells: list[Cell] = []
    http: list[HttpResult] = []
    sessions = None
    if "a" in opts.parts:
        cells = await redis_decisions.part_a(opts, redis_url)
    if "b" in opts.parts:
        http = await redis_login.part_b(opts, redis_url, workdir)
    if "c" in opts.parts:
        sessions = await redis_sessions.part_c(opts, redis_url)
    return cells, http, sessions


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    opts = parse_args(argv)
    load_before = machine()["load"]
    workdir = Path(tempfile.mkdtemp(prefix="authly-bench-redis-"))
    try:
        redis = RedisProcess(workdir / "redis.log")
        version = redis_version()
        trio.run(redis.start)
    except RuntimeError as exc:
        raise SystemExit(f"bench_redis: {exc}") from None
    try:
        print(f"bench_redis: redis-server {version} on {redis.url}", file=sys.stderr)
        cells, http, sessions = trio.run(main_async, opts, redis.url, workdir)
    finally:
        redis.close()
    print(render(opts, argv, version, cells, http, sessions, load_before))
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
