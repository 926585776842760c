#!/usr/bin/env python3
"""ID-token signing benchmark for Authly, in process (no HTTP, no store): ID tokens per
second and microseconds per token for each signing algorithm a client may choose
(RS256 with RSA 2048, ES256 with P-256, EdDSA with Ed25519).

Each token is what a code exchange with ``scope=openid`` signs: ``IdTokens.issue``
(src/authly/oidc/id_tokens.py) with the current key of the algorithm from a fixed
``SigningKeys`` set (src/authly/tokens/keys.py; keys made by ``generate_key``, as the
store does at start-up), claims iss, sub, aud, exp, iat, auth_time, nonce, at_hash (of a
realistic access-token string), sid and amr. One thread, one process: the figure is one
core's signing rate, the upper bound of what one worker can spend on ID tokens.

Each algorithm runs after --warmup unmeasured tokens, for --count tokens or --max-seconds,
whichever comes first; the rounds (--rounds) alternate the algorithms so that other
load on the machine hits all of them alike, and the table shows the median round.
Columns: tokens/s (wall clock), µs/token (wall), CPU µs/token (this process's CPU time:
steadier than wall time on a busy machine), p50/p99 of single tokens, token size.

Examples:
    .venv/bin/python scripts/bench_id_tokens.py
    .venv/bin/python scripts/bench_id_tokens.py --markdown --count 5000 --rounds 5
"""

from __future__ import annotations

import argparse
import secrets
import shlex
import statistics
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import benchkit  # noqa: F401  (first: puts the checkout's src/ on sys.path when needed)

# isort: split
from benchkit.common import choice_list, fmt_ms, machine, percentile, table

from authly.oidc.id_tokens import ID_TOKEN_ALGS, IdTokens, SignIn
from authly.store.keys import SigningKeyRow
from authly.tokens.keys import SigningKeys, generate_key

ISSUER = "http://127.0.0.1:8000"
CLIENT_ID = "bench-rp"


@dataclass
class Round:
    alg: str
    tokens: int
    wall: float  # seconds
    cpu: float  # seconds of this process's CPU time
    latencies: list[float]
    size: int  # bytes of one token

    @property
    def rate(self) -> float:
        return self.tokens / self.wall if self.wall else 0.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    algs = choice_list(ID_TOKEN_ALGS)
    p.add_argument("--algs", type=algs, default=list(ID_TOKEN_ALGS), help="e.g. ES256,EdDSA")
    p.add_argument("--count", type=int, default=3000, help="tokens per round (default 3000)")
    p.add_argument("--max-seconds", type=float, default=3.0, help="per round (default 3)")
    p.add_argument("--rounds", type=int, default=3, help="rounds per algorithm (default 3)")
    p.add_argument("--warmup", type=int, default=50, help="unmeasured tokens first (default 50)")
    p.add_argument("--markdown", action="store_true", help="print a Markdown table")
    opts = p.parse_args(argv)
    if opts.count < 1 or opts.rounds < 1 or opts.warmup < 0 or opts.max_seconds <= 0:
        p.error("--count and --rounds must be >= 1, --warmup >= 0, --max-seconds > 0")
    return opts


def id_tokens(algs: list[str]) -> IdTokens:
    """IdTokens over one fresh current key per algorithm (no store)."""
    now = time.time()
    rows = [SigningKeyRow(*generate_key(alg), created_at=now) for alg in algs]
    return IdTokens(SigningKeys(rows), issuer=ISSUER, ttl=3600)


def run_round(issuer: IdTokens, alg: str, opts: argparse.Namespace) -> Round:
    sign_in = SignIn(str(uuid.uuid4()), time.time() - 30, secrets.token_urlsafe(24))
    access_token = secrets.token_urlsafe(600)  # about the length of an RS256 access token

    def one() -> str:
        return issuer.issue(
            client_id=CLIENT_ID,
            alg=alg,
            sign_in=sign_in,
            access_token=access_token,
            nonce=secrets.token_urlsafe(16),
        )

    for _ in range(opts.warmup):
        one()
    latencies: list[float] = []
    token = ""
    cpu0 = time.process_time()
    start = time.perf_counter()
    deadline = start + opts.max_seconds
    now = start
    while len(latencies) < opts.count and now < deadline:
        token = one()
        after = time.perf_counter()
        latencies.append(after - now)
        now = after
    return Round(
        alg, len(latencies), now - start, time.process_time() - cpu0, latencies, len(token)
    )


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    info = machine()
    started = datetime.now(UTC)
    issuer = id_tokens(opts.algs)
    rounds: dict[str, list[Round]] = {alg: [] for alg in opts.algs}
    for r in range(opts.rounds):
        for alg in opts.algs if r % 2 == 0 else opts.algs[::-1]:
            result = run_round(issuer, alg, opts)
            rounds[alg].append(result)
            print(
                f"bench: round {r + 1} {alg}: {result.tokens} tokens, {result.rate:,.0f}/s",
                file=sys.stderr,
                flush=True,
            )
    headers = (
        "algorithm",
        "tokens",
        "ID tokens/s",
        "µs/token",
        "CPU µs/token",
        "p50 ms",
        "p99 ms",
        "rounds tokens/s",
        "bytes",
    )
    rows = []
    for alg, results in rounds.items():
        median = sorted(results, key=lambda x: x.rate)[len(results) // 2]
        rows.append(
            [
                alg,
                str(median.tokens),
                f"{median.rate:,.0f}",
                f"{median.wall / median.tokens * 1e6:.0f}",
                f"{median.cpu / median.tokens * 1e6:.0f}",
                fmt_ms(percentile(median.latencies, 50)),
                fmt_ms(percentile(median.latencies, 99)),
                " / ".join(f"{x.rate:,.0f}" for x in results),
                str(median.size),
            ]
        )
    out = table(headers, rows, opts.markdown)
    cpu_share = statistics.fmean(x.cpu / x.wall for rs in rounds.values() for x in rs if x.wall)
    out += [
        "",
        f"machine: {info['nproc']} CPUs ({info['cpu']}), {info['os']}, Python "
        f"{info['python']}, load average at start {info['load']}",
        f"date: {started:%Y-%m-%d %H:%M:%S} UTC; command: {shlex.join(sys.orig_argv)}",
        f"IdTokens.issue in one thread; median of {opts.rounds} round(s) per algorithm, each "
        f"<= {opts.count} tokens or {opts.max_seconds:g} s after {opts.warmup} unmeasured; "
        f"this process had {cpu_share:.0%} of a core on average (less: other load took it)",
    ]
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
