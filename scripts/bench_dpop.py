#!/usr/bin/env python3
"""What DPoP (RFC 9449) costs at the token endpoint: client_credentials requests/s of
the confidential client ``bench-svc`` (HTTP Basic) with a DPoP proof versus plain
bearer, on one server worker, in the same run.

The server is ``python -m authly serve --workers 1`` started here (SQLite in a temporary
directory, token rate limit off; scripts/benchkit/core_server.py), with
AUTHLY_DPOP_NONCE=true under ``--nonce``. Rounds alternate (plain, DPoP, plain, ...),
each ``--seconds`` long at ``--concurrency`` keep-alive connections (the raw trio client
of benchkit/httpclient.py, in this process). A DPoP round's proofs (ES256, joserfc, one
key per connection, as a client would) are signed before its clock starts, so the
load generator's signing is not measured; with ``--nonce`` they carry the nonce the
server handed out just before. Every answer must be 200 with the expected
``token_type`` (``DPoP`` with a proof), else it counts as an error.

The report gives, per mode, the median req/s over its rounds and the server's CPU time
per request (its process tree, from /proc), and DPoP as a share of plain. Target (the
issue): DPoP costs less than 30 % of plain-bearer throughput, i.e. DPoP >= 70 % of plain.

    .venv/bin/python scripts/bench_dpop.py [--rounds 6] [--seconds 8] [--concurrency 16]
                                           [--nonce] [--markdown]
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import sys
import time
from dataclasses import dataclass, field
from urllib.parse import urlencode

import benchkit  # noqa: F401  (first: puts the checkout's root on sys.path, for tests.support)
import trio
from benchkit.common import machine, table
from benchkit.core_requests import FORM_TYPE, SERVICE_CLIENT_ID, TOKEN_PATH, basic_auth
from benchkit.core_server import Server, proc_tree_cpu
from benchkit.httpclient import RawClient, Target
from tests.support.dpop import DPoPKey

TARGET_SHARE = 0.70
BODY = urlencode({"grant_type": "client_credentials"}).encode()


@dataclass
class Round:
    mode: str  # plain | dpop
    ok: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    server_cpu: float = 0.0

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    @property
    def cpu_us(self) -> float:
        return self.server_cpu / self.ok * 1e6 if self.ok else 0.0


async def nonce_of(target: Target, auth: tuple[str, str]) -> str | None:
    """The server's current DPoP nonce (a proof without one is answered with it)."""
    client = RawClient(target)
    try:
        proof = DPoPKey().proof("POST", target.base_url + TOKEN_PATH)
        await client.request("POST", TOKEN_PATH, BODY, FORM_TYPE, (auth, ("DPoP", proof)))
        return dict(client.last_headers).get("dpop-nonce")
    finally:
        await client.aclose()


def sign_proofs(url: str, count: int, keys: list[DPoPKey], nonce: str | None) -> list[list[str]]:
    """``count`` proofs per connection, each connection with its own key."""
    return [[key.proof("POST", url, nonce=nonce) for _ in range(count)] for key in keys]


async def run_round(
    target: Target,
    mode: str,
    seconds: float,
    connections: int,
    proofs: list[list[str]] | None,
    auth: tuple[str, str],
    server: Server,
) -> Round:
    result = Round(mode)
    expected = b'"token_type":"DPoP"' if proofs is not None else b'"token_type":"Bearer"'
    clients = [RawClient(target) for _ in range(connections)]
    for client in clients:  # open every connection before the clock starts
        await client.request("GET", "/health/live")
    cpu0 = proc_tree_cpu(server.proc.pid) if server.proc else 0.0
    started = time.perf_counter()
    deadline = trio.current_time() + seconds

    async def worker(index: int) -> None:
        client = clients[index]
        mine = proofs[index] if proofs is not None else None
        while trio.current_time() < deadline:
            headers: tuple[tuple[str, str], ...] = (auth,)
            if mine is not None:
                if not mine:
                    result.errors["ran out of pre-signed proofs"] = (
                        result.errors.get("ran out of pre-signed proofs", 0) + 1
                    )
                    return
                headers = (auth, ("DPoP", mine.pop()))
            try:
                status, body = await client.request("POST", TOKEN_PATH, BODY, FORM_TYPE, headers)
            except Exception as exc:
                kind = f"{type(exc).__name__}"
                result.errors[kind] = result.errors.get(kind, 0) + 1
                client.drop()
                continue
            if status == 200 and expected in body:
                result.ok += 1
            else:
                kind = f"HTTP {status}: {json.loads(body).get('error', '?') if body else ''}"
                result.errors[kind] = result.errors.get(kind, 0) + 1

    async with trio.open_nursery() as nursery:
        for index in range(len(clients)):
            nursery.start_soon(worker, index)
    result.seconds = time.perf_counter() - started
    result.server_cpu = (proc_tree_cpu(server.proc.pid) if server.proc else 0.0) - cpu0
    for client in clients:
        await client.aclose()
    return result


async def bench(args: argparse.Namespace, server: Server) -> list[Round]:
    target = server.target
    auth = basic_auth(SERVICE_CLIENT_ID, server.client_secret)
    url = target.base_url + TOKEN_PATH
    keys = [DPoPKey("ES256") for _ in range(args.concurrency)]
    rounds: list[Round] = []
    # Warm-up: both modes once, not reported (key caches, the first signatures).
    warm = sign_proofs(url, 50, keys, await nonce_of(target, auth) if args.nonce else None)
    await run_round(target, "plain", 1.0, args.concurrency, None, auth, server)
    await run_round(target, "dpop", 1.0, args.concurrency, warm, auth, server)
    per_connection = int(args.max_rate * args.seconds / args.concurrency) + 1
    for index in range(args.rounds):
        mode = "plain" if index % 2 == 0 else "dpop"
        proofs = None
        if mode == "dpop":
            nonce = await nonce_of(target, auth) if args.nonce else None
            proofs = sign_proofs(url, per_connection, keys, nonce)
        result = await run_round(target, mode, args.seconds, args.concurrency, proofs, auth, server)
        rounds.append(result)
        errors = sum(result.errors.values())
        print(
            f"round {index + 1}/{args.rounds} {mode:5}: {result.rate:7.0f} req/s,"
            f" server {result.cpu_us:6.0f} us/req, errors {errors}",
            file=sys.stderr,
        )
    return rounds


def report(args: argparse.Namespace, server: Server, rounds: list[Round]) -> tuple[list[str], bool]:
    by_mode = {m: [r for r in rounds if r.mode == m] for m in ("plain", "dpop")}
    rate = {m: statistics.median(r.rate for r in rs) for m, rs in by_mode.items()}
    cpu = {m: statistics.median(r.cpu_us for r in rs) for m, rs in by_mode.items()}
    share = rate["dpop"] / rate["plain"] if rate["plain"] else 0.0
    cpu_share = cpu["plain"] / cpu["dpop"] if cpu["dpop"] else 0.0
    errors: dict[str, int] = {}
    for r in rounds:
        for kind, n in r.errors.items():
            errors[f"{r.mode}: {kind}"] = errors.get(f"{r.mode}: {kind}", 0) + n
    met = share >= TARGET_SHARE and not errors
    m = machine()
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"#### DPoP versus bearer at the token endpoint ({now})",
        "",
        f"Machine: {m['nproc']} cores, {m['cpu']}, {m['os']}, Python {m['python']},"
        f" load {m['load']} at the end. Authly {server.version}, one worker"
        f" (`authly serve --workers 1`), SQLite;"
        f" AUTHLY_DPOP_NONCE={'true' if args.nonce else 'false'}.",
        f"{args.rounds} alternating rounds of {args.seconds:g} s at {args.concurrency}"
        " connections; client_credentials with HTTP Basic; DPoP proofs ES256, pre-signed.",
        "",
    ]
    rows = []
    for index, r in enumerate(rounds, 1):
        rows.append(
            [str(index), r.mode, f"{r.rate:.0f}", f"{r.cpu_us:.0f}", str(sum(r.errors.values()))]
        )
    lines += table(["round", "mode", "req/s", "server µs/req", "errors"], rows, args.markdown)
    lines += [
        "",
        f"Median: plain {rate['plain']:.0f} req/s ({cpu['plain']:.0f} µs/req),"
        f" DPoP {rate['dpop']:.0f} req/s ({cpu['dpop']:.0f} µs/req).",
        f"DPoP throughput = {share:.0%} of plain (by server CPU per request: {cpu_share:.0%});"
        f" target >= {TARGET_SHARE:.0%}: {'met' if share >= TARGET_SHARE else 'NOT met'}.",
    ]
    if errors:
        lines.append("Errors: " + ", ".join(f"{k} x{n}" for k, n in sorted(errors.items())))
    return lines, met


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6, help="alternating rounds (default 6)")
    parser.add_argument("--seconds", type=float, default=8.0, help="per round (default 8)")
    parser.add_argument("--concurrency", type=int, default=16, help="connections (default 16)")
    parser.add_argument(
        "--max-rate", type=float, default=3000.0, help="proofs pre-signed per second of a round"
    )
    parser.add_argument("--nonce", action="store_true", help="AUTHLY_DPOP_NONCE=true")
    parser.add_argument("--markdown", action="store_true", help="Markdown table")
    args = parser.parse_args()
    settings = {"AUTHLY_DPOP_NONCE": "true"} if args.nonce else {}
    server = Server(1, "127.0.0.1", "serve", with_clients=True, settings=settings)
    try:
        server.run()
        rounds = trio.run(bench, args, server)
        lines, met = report(args, server, rounds)
    finally:
        note = server.finish()
        server.cleanup()
    print("\n".join(lines))
    if note:
        print(f"\nserver: {note}", file=sys.stderr)
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
