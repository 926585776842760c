#!/usr/bin/env python3
"""Dynamic client registration (RFC 7591) gated by an initial access token: registrations/s
and p50/p99 latency on one server worker, next to cheap reference requests on the same
server in the same run (issue 12).

The server is ``python -m authly serve --workers 1`` started here on a free loopback port
(scripts/benchkit/core_fleet.py, as bench_core.py: SQLite in a temporary directory, or
``--database postgresql`` for a private PostgreSQL of its own), with
AUTHLY_REGISTRATION=token and AUTHLY_REGISTRATION_RATE_LIMIT=10000000 per
AUTHLY_REGISTRATION_RATE_WINDOW (default 3600 s) — the default limit, 10 per hour per IP,
would refuse all but the first ten — plus bench_core's raised login and token limits
and AUTHLY_LOG_LEVEL=WARNING (so the per-registration INFO log line is not written).

One initial access token gates every registration (``--tokens N``: N of them, connection
i using token i mod N): the script logs in with the real admin CLI (``authly admin
login``, its session file in the temporary directory) and runs ``authly admin
initial-token create --max-uses M`` with M = every registration the run may make; at the
end ``authly admin initial-token list`` must show as many uses as registrations were
answered 201.

Cells (``--cells``; each at every ``--concurrency``, ``--rounds`` times, in this order):

- ``metadata``  GET /.well-known/oauth-authorization-server (RFC 8414; a reference)
- ``client_credentials``  POST /api/v1/oauth/token, bench-svc with HTTP Basic (a
  reference: one RS256-signed access token, as bench_dpop.py)
- ``register_public``  POST /api/v1/oauth/register, a public client (``none``) with one
  https redirect URI; 201 with a client_id and a registration access token and no secret
- ``register_confidential``  the same for a ``client_secret_basic`` client: 201 with a
  client_secret too

(the bodies are printed with the report). Each cell stops after ``--requests`` requests
or ``--max-seconds``; only the expected answers count, anything else is an error. The
load is this process (trio, benchkit/httpclient.py's raw keep-alive client), every
connection opened before the clock starts; a warm-up of ``--warmup`` requests per cell
kind is not reported. Per cell the report gives the server's CPU per answer (its process
tree, /proc; split into its main thread, which runs the event loop, and its other
threads: the SQLite store thread or PostgreSQL's pool threads), the store calls per
answer and their mean duration, queueing for the store's thread or pool included (from
the server's /metrics, ``authly_store_query_duration_seconds``), and, timed in this
process, what a registration computes besides HTTP and its transaction (ids, secrets,
SHA-256 hashes).

``--server-cpus 0`` starts the server under ``taskset -c 0`` (its event loop and its store
thread then share one core).

    .venv/bin/python scripts/bench_registration.py [--concurrency 1,32] [--requests 2000]
        [--max-seconds 15] [--rounds 2] [--tokens 1] [--database sqlite|postgresql]
        [--server-cpus LIST] [--markdown]
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import sys
import tempfile
from pathlib import Path

import benchkit  # noqa: F401  (first: puts the checkout's root on sys.path, for tests.support)

# isort: split
import trio
from benchkit.common import choice_list, fmt_ms, int_list, machine, percentile, table
from benchkit.core_fleet import Fleet
from benchkit.core_requests import SERVICE_CLIENT_ID, basic_auth
from benchkit.registration import (
    BODIES,
    KINDS,
    REGISTER_PATH,
    AdminCli,
    Meter,
    Result,
    request_of,
    run_cell,
    secrets_cost,
)

REGISTRATION_SETTINGS = {
    "AUTHLY_REGISTRATION": "token",
    "AUTHLY_REGISTRATION_RATE_LIMIT": "10000000",  # the most it accepts (default 10)
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--concurrency", type=int_list(256), default=[1, 32], help="default 1,32")
    p.add_argument("--requests", type=int, default=2000, help="per cell (default 2000)")
    p.add_argument("--max-seconds", type=float, default=15.0, help="per cell (default 15)")
    p.add_argument("--timeout", type=float, default=10.0, help="per request (default 10 s)")
    p.add_argument("--rounds", type=int, default=2, help="of all cells (default 2)")
    p.add_argument("--warmup", type=int, default=50, help="requests per kind, not reported")
    p.add_argument(
        "--cells",
        type=choice_list(KINDS),
        default=list(KINDS),
        help=f"comma-separated subset of {','.join(KINDS)} (default all)",
    )
    p.add_argument(
        "--tokens",
        type=int,
        default=1,
        help="initial access tokens; connection i uses token i mod N (default 1: all share one)",
    )
    p.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    p.add_argument(
        "--server-cpus",
        help="pin the server (every thread) to these CPUs: `taskset -c LIST` (e.g. 0)",
    )
    p.add_argument("--markdown", action="store_true", help="Markdown tables")
    opts = p.parse_args(argv)
    if min(opts.requests, opts.rounds, opts.tokens) < 1 or opts.warmup < 0:
        p.error("--requests, --rounds and --tokens must be at least 1, --warmup at least 0")
    if opts.max_seconds <= 0 or opts.timeout <= 0:
        p.error("--max-seconds and --timeout must be positive")
    return opts


async def bench(
    opts: argparse.Namespace, fleet: Fleet, tokens: list[str]
) -> tuple[list[Result], list[Result]]:
    target = fleet.target
    basic = basic_auth(SERVICE_CLIENT_ID, fleet.client_secret)
    assert fleet.primary.proc is not None
    meter = Meter(fleet.primary.proc.pid, fleet.cpu_seconds, fleet.store_cpu_seconds, target)
    warm: list[Result] = []
    if opts.warmup:
        for kind in opts.cells:
            result = Result(0, kind, max(opts.concurrency))
            request = [request_of(kind, token, basic) for token in tokens]
            warm.append(
                await run_cell(target, request, result, opts.warmup, 30.0, opts.timeout, meter)
            )
    results: list[Result] = []
    for rnd in range(1, opts.rounds + 1):
        for concurrency in opts.concurrency:
            for kind in opts.cells:
                result = Result(rnd, kind, concurrency)
                await run_cell(
                    target,
                    [request_of(kind, token, basic) for token in tokens],
                    result,
                    opts.requests,
                    opts.max_seconds,
                    opts.timeout,
                    meter,
                )
                results.append(result)
                errors = sum(result.errors.values())
                print(
                    f"bench: round {rnd} {kind} c={concurrency}: {result.ok} ok, {errors} errors,"
                    f" {result.rate:.0f}/s, p99 {fmt_ms(percentile(result.latencies, 99))} ms",
                    file=sys.stderr,
                    flush=True,
                )
    return warm, results


def pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def num(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def us(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1e6:.0f}"


def rows_of(results: list[Result], postgres: bool) -> tuple[list[str], list[list[str]]]:
    headers = ["round", "cell", "c", "ok", "errors", "req/s", "p50 ms", "p99 ms"]
    headers += ["server CPU", "server µs/req", "loop µs/req", "threads µs/req"]
    headers += ["store calls/req", "store ms/call"]
    headers += ["store CPU"] if postgres else []
    headers += ["client CPU", "other CPU"]
    rows = []
    for r in results:
        calls = r.store_calls
        mean_call = None
        if calls and r.store_seconds is not None and calls >= r.ok / 2:  # not a stray call
            mean_call = r.store_seconds / calls
        row = [
            str(r.round),
            r.kind,
            str(r.concurrency),
            str(r.ok),
            str(sum(r.errors.values())),
            f"{r.rate:.0f}",
            fmt_ms(percentile(r.latencies, 50)),
            fmt_ms(percentile(r.latencies, 99)),
            pct(r.share(r.server_cpu)),
            us(r.per_ok(r.server_cpu)),
            us(r.per_ok(r.main_thread_cpu)),
            us(r.per_ok(r.other_threads_cpu)),
            num(r.per_ok(calls), ".2f"),
            num(None if mean_call is None else mean_call * 1000, ".2f"),
        ]
        row += [pct(r.share(r.store_cpu))] if postgres else []
        row += [pct(r.share(r.client_cpu)), pct(r.share(r.other_cpu))]
        rows.append(row)
    return headers, rows


def summary(opts: argparse.Namespace, results: list[Result]) -> list[str]:
    """Median req/s, p50 and p99 over the rounds per cell, and registrations as a share of
    the references at the same concurrency."""
    lines = []
    for concurrency in opts.concurrency:
        med: dict[str, float] = {}
        for kind in opts.cells:
            mine = [r for r in results if r.kind == kind and r.concurrency == concurrency]
            med[kind] = statistics.median(r.rate for r in mine)
            p50 = statistics.median(percentile(r.latencies, 50) or 0.0 for r in mine)
            p99 = statistics.median(percentile(r.latencies, 99) or 0.0 for r in mine)
            lines.append(
                f"- c={concurrency} {kind}: {med[kind]:.0f}/s, p50 {fmt_ms(p50)} ms,"
                f" p99 {fmt_ms(p99)} ms (medians over {len(mine)} round(s))"
            )
        for kind in ("register_public", "register_confidential"):
            refs = [r for r in ("metadata", "client_credentials") if med.get(r)]
            if kind in med and refs:
                ratios = [f"{med[kind] / med[ref]:.2f}x {ref}" for ref in refs]
                lines.append(f"- c={concurrency} {kind} = " + ", ".join(ratios))
    return lines


def server_command(fleet: Fleet) -> str:
    """The server's command line as the report shows it (``python`` for the venv's)."""
    argv = fleet.primary.argv
    return " ".join("python" if a == sys.executable else a for a in argv)


def report(
    opts: argparse.Namespace,
    fleet: Fleet,
    results: list[Result],
    warm: list[Result],
    uses: int | None,
    commands: list[str],
    started: str,
    load_start: str,
) -> tuple[list[str], bool]:
    m = machine()
    registered = sum(r.ok for r in results + warm if r.kind.startswith("register"))
    uses_ok = uses == registered
    lines = [
        f"#### Dynamic client registration, gated by an initial access token ({started})",
        "",
        f"Machine: {m['nproc']} cores, {m['cpu']}, {m['os']}, Python {m['python']};"
        f" load {load_start} at the start, {m['load']} at the end.",
        f"Server: `{server_command(fleet)}` (authly {fleet.version}), one worker,"
        f" store {fleet.label()}; "
        + ", ".join(f"{k}={v}" for k, v in REGISTRATION_SETTINGS.items())
        + " (window AUTHLY_REGISTRATION_RATE_WINDOW default 3600 s), AUTHLY_LOGIN_RATE_LIMIT"
        "=1000000, AUTHLY_TOKEN_RATE_LIMIT=10000000, AUTHLY_LOG_LEVEL=WARNING.",
        f"Initial access tokens: {opts.tokens} (connection i uses token i mod {opts.tokens}); "
        + "; ".join(f"`{c}`" for c in commands)
        + ".",
        f"Load: this process, raw keep-alive HTTP/1.1 on trio; per cell {opts.requests}"
        f" requests or {opts.max_seconds:g} s; {opts.rounds} round(s) of every cell;"
        f" warm-up {opts.warmup} requests per kind (c={max(opts.concurrency)}), not shown.",
        "",
    ]
    headers, rows = rows_of(results, fleet.postgres is not None)
    lines += table(headers, rows, opts.markdown)
    lines += [
        "",
        "req/s counts expected answers only (201 with client_id + registration_access_token,"
        " and a client_secret exactly for the confidential body; 200 with issuer / with"
        " access_token); p50/p99 over those; CPU = share of one core over the cell (server: its"
        " process tree, threads included, so above 100 % is possible; loop: its main thread,"
        " which runs the event loop; threads: its other threads, i.e. the store's; other:"
        " the rest of the machine, i.e. other people's load); store ms/call includes"
        " queueing for the store's thread (SQLite) or pool (PostgreSQL) and the hand-back to"
        " the event loop (shown when the cell makes store calls).",
        "",
        *summary(opts, results),
        f"- initial access token(s): {uses} uses recorded for {registered} registrations answered"
        f" 201 (warm-up included): {'match' if uses_ok else 'MISMATCH'}",
    ]
    cut = [r for r in results if r.stopped_by_time]
    for r in cut:
        lines.append(
            f"- round {r.round} {r.kind} c={r.concurrency}: stopped by --max-seconds"
            f" ({opts.max_seconds:g} s) after {r.ok + sum(r.errors.values())} requests"
        )
    errors: dict[str, int] = {}
    for r in results + warm:
        for kind, n in r.errors.items():
            key = f"{r.kind}: {kind}"
            errors[key] = errors.get(key, 0) + n
    if errors:
        lines.append("- errors: " + ", ".join(f"{k} x{n}" for k, n in sorted(errors.items())))
    lines.append(
        f"- in process, a registration's ids, secrets and SHA-256 hashes take"
        f" {secrets_cost() * 1e6:.1f} µs (benchkit/registration.py secrets_cost)"
    )
    lines += ["", f"Bodies (POST {REGISTER_PATH}, `Authorization: Bearer init_...`):", ""]
    for kind, body in BODIES.items():
        lines.append(f"- {kind}: `{json.dumps(body)}`")
    return lines, not errors and uses_ok


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    started = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    load_start = machine()["load"]
    kinds = sum(k.startswith("register") for k in opts.cells)
    planned = max(1, kinds * (opts.rounds * len(opts.concurrency) * opts.requests + opts.warmup))
    fleet = Fleet(1, "127.0.0.1", "serve", True, database=opts.database)
    fleet.primary.env.update(REGISTRATION_SETTINGS)
    if opts.server_cpus:  # taskset execs the server: same pid, every thread pinned
        fleet.primary.argv = ["taskset", "-c", opts.server_cpus, *fleet.primary.argv]
    cli_dir = tempfile.TemporaryDirectory(prefix="authly-bench-cli-")
    lines: list[str] = []
    ok = False
    try:
        print(f"bench: starting {' '.join(fleet.primary.argv)}", file=sys.stderr)
        fleet.run()
        cli = AdminCli(fleet.primary.base_url, Path(cli_dir.name))
        cli.login(fleet.username, fleet.password)
        created = [cli.create_token(planned) for _ in range(opts.tokens)]
        commands = list(dict.fromkeys(cli.commands))
        if opts.tokens > 1:
            commands[-1] += f" (x{opts.tokens})"
        ids = [c["id"] for c in created]
        print(f"bench: initial access tokens {ids}, max_uses {planned} each", file=sys.stderr)
        warm, results = trio.run(bench, opts, fleet, [c["token"] for c in created])
        uses = cli.uses(ids)
        commands.append("authly admin initial-token list --json")
        lines, ok = report(opts, fleet, results, warm, uses, commands, started, load_start)
    finally:
        note = fleet.finish()
        problems = fleet.log_problems()
        fleet.cleanup()
        cli_dir.cleanup()
    print("\n".join(lines))
    print(f"\nserver: {note}; {len(problems)} error line(s) in its log", file=sys.stderr)
    for line in problems[:5]:
        print(f"    {line[:200]}", file=sys.stderr)
    return 0 if ok and not problems else 1


if __name__ == "__main__":
    raise SystemExit(main())
