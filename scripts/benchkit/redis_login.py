"""Part b of scripts/bench_redis.py: failed logins over HTTP against two Authly servers,
one with its rate limiter on Redis and one on memory, in alternating rounds (background
noise hits both alike): what Redis adds to a login's latency."""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import trio
from tests.support.processes import ServerError

from benchkit.common import CHEAP_HASH, ScriptServer, fmt_ms, percentile, table

LOGIN_PATH = "/api/v1/auth/login"


class LoginServer(ScriptServer):
    """``python -m authly serve`` with cheap argon2 (t=1, 1 MiB) and the largest
    AUTHLY_LOGIN_RATE_LIMIT (nothing is limited); rate limits on Redis when a URL is given."""

    def __init__(
        self, name: str, workdir: Path, redis_url: str | None, label: str | None = None
    ) -> None:
        settings = {"AUTHLY_LOGIN_RATE_LIMIT": "1000000", "AUTHLY_LOG_LEVEL": "WARNING"}
        if redis_url is not None:
            settings.update(AUTHLY_REDIS_URL=redis_url, AUTHLY_REDIS_RATE_LIMIT="true")
        self.label = label or name  # the row's name ("redis (tls)"); name is the backend
        slug = "-".join(self.label.replace("(", "").replace(")", "").split())
        super().__init__(workdir, f"authly-{slug}", settings=CHEAP_HASH | settings)
        self.backend = name
        self.start()

    async def wait_ready(self) -> None:
        """Wait until /health shows the rate limiter on its backend."""

        def on_backend(health: dict[str, Any]) -> str | None:
            found = health["redis"]["backends"]["rate_limit"]
            return None if found == self.backend else f"rate_limit backend {found}"

        try:
            await self.await_healthy(on_backend)
        except ServerError as exc:
            raise SystemExit(f"bench_redis: {self.name}: {exc}") from None


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
    server: LoginServer, client: httpx.AsyncClient, requests: int, opts: argparse.Namespace
) -> HttpResult:
    result = HttpResult(server.label)
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


async def part_b(
    opts: argparse.Namespace,
    redis_url: str,
    workdir: Path,
    *,
    label: str | None = None,
    tls_url: str | None = None,
) -> list[HttpResult]:
    """Memory against Redis at ``redis_url`` (its row named ``label``, "redis" by
    default), and against the TLS Redis at ``tls_url`` too when given ("redis (tls)"):
    the servers take turns, in a rotating order, round after round."""
    servers = [
        LoginServer("memory", workdir, None),
        LoginServer("redis", workdir, redis_url, label),
    ]
    if tls_url is not None:
        servers.append(LoginServer("redis", workdir, tls_url, "redis (tls)"))
    return await take_turns(opts, servers)


async def take_turns(opts: argparse.Namespace, servers: list[LoginServer]) -> list[HttpResult]:
    """Failed logins against each of ``servers`` in turn, round after round (each first,
    middle and last in turn), after a warm-up; shuts them down at the end."""
    try:
        limits = httpx.Limits(
            max_connections=opts.http_concurrency * 2,
            max_keepalive_connections=opts.http_concurrency * 2,
        )
        async with httpx.AsyncClient(limits=limits) as client:
            for server in servers:
                await server.wait_ready()
            for server in servers:  # warm-up: connections, argon2 thread, JIT-free caches
                await http_round(server, client, opts.http_concurrency * 4, opts)
            totals = {s.label: HttpResult(s.label) for s in servers}
            per_round = max(1, opts.http_requests // opts.http_rounds)
            for r in range(opts.http_rounds):
                if len(servers) == 2:
                    order = servers if r % 2 == 0 else servers[::-1]
                else:  # each server first, middle and last in turn
                    shift = r % len(servers)
                    order = servers[shift:] + servers[:shift]
                    order = order if r // len(servers) % 2 == 0 else order[::-1]
                for server in order:
                    res = await http_round(server, client, per_round, opts)
                    total = totals[server.label]
                    total.latencies += res.latencies
                    total.statuses += res.statuses
                    total.elapsed += res.elapsed
                    print(
                        f"  b: round {r + 1} {server.label:<11} {len(res.latencies)} failed "
                        f"logins, p99 {fmt_ms(percentile(res.latencies, 99))} ms",
                        file=sys.stderr,
                        flush=True,
                    )
    finally:
        for server in servers:
            server.shutdown()
    for total in totals.values():
        total.latencies.sort()
    return [totals[s.label] for s in servers]


def section(opts: argparse.Namespace, http: list[HttpResult]) -> list[str]:
    """Part b's table with its heading and the Redis - memory difference."""
    md = opts.markdown
    heading = (
        f"**b. failed login over HTTP** (POST {LOGIN_PATH}, wrong password, concurrency "
        f"{opts.http_concurrency}, httpx, {opts.http_rounds} alternating rounds, cheap "
        "argon2 t=1 1 MiB, AUTHLY_LOGIN_RATE_LIMIT=1000000)"
        if md
        else f"b. failed login over HTTP (concurrency {opts.http_concurrency}, "
        f"{opts.http_rounds} alternating rounds, cheap argon2)"
    )
    rows = []
    for r in http:
        odd = ", ".join(f"{s} {n}" for s, n in r.statuses.items() if s != "401") or "0"
        rows.append(
            [
                r.name,
                str(len(r.latencies)),
                f"{len(r.latencies) / r.elapsed:,.0f}" if r.elapsed else "-",
                fmt_ms(percentile(r.latencies, 50)),
                fmt_ms(percentile(r.latencies, 99)),
                odd,
            ]
        )
    headers = ["rate-limit backend", "requests", "req/s", "p50 ms", "p99 ms", "errors"]
    out = [heading, "", *table(headers, rows, md)]
    mem, *reds = http
    for red in reds:
        diff = _difference(red, mem)
        if diff:
            name = "Redis" if red.name == "redis" else red.name.capitalize()
            out += ["", f"{name} minus memory: {diff}"]
    if len(reds) == 2:
        plain, tls = reds
        diff = _difference(tls, plain)
        if diff and plain.elapsed and tls.elapsed and plain.latencies:
            ratio = (len(tls.latencies) / tls.elapsed) / (len(plain.latencies) / plain.elapsed)
            out += [
                "",
                f"TLS minus plain: {diff}; TLS / plain throughput {ratio:.0%} "
                f"({'met' if ratio >= 0.70 else 'missed'} against >= 70 %)",
            ]
    return out


def _difference(a: HttpResult, b: HttpResult) -> str | None:
    """ "p50 +x ms, p99 +y ms" for ``a`` minus ``b`` (None without latencies)."""
    p50a, p50b = percentile(a.latencies, 50), percentile(b.latencies, 50)
    p99a, p99b = percentile(a.latencies, 99), percentile(b.latencies, 99)
    if p50a is None or p50b is None or p99a is None or p99b is None:
        return None
    return f"p50 {(p50a - p50b) * 1000:+.2f} ms, p99 {(p99a - p99b) * 1000:+.2f} ms"
