"""The report of scripts/bench_core.py: one table row per scenario and concurrency, the
set-up it ran under, and notes (errors by kind, client-bound rows, slow warm-ups)."""

from __future__ import annotations

import argparse
import shlex
import sys
from datetime import datetime

from benchkit.common import table
from benchkit.core_fleet import Fleet
from benchkit.core_run import CEILING_DOCS, Row
from benchkit.core_server import TOKEN_RATE_LIMIT, Ceiling

CEILING_TARGET = 0.90  # DESIGN.md: static documents keep >= 90 % of the bare app's req/s


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.2f}"


def pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


HEADERS = (
    "scenario",
    "concurrency",
    "requests",
    "errors",
    "req/s",
    "p50 ms",
    "p99 ms",
    "client CPU",
    "server CPU",
    "server µs/req",
    "other CPU",
)


STORE_CPU = "store CPU"  # a column only when PostgreSQL or Redis ran (after server CPU)


def _cells(row: Row, with_store: bool = False) -> list[str]:
    cells = [
        row.label,
        str(row.concurrency),
        str(row.requests),
        str(row.errors),
        f"{row.rps:.0f}",
        ms(row.p50),
        ms(row.p99),
        pct(row.client_cpu),
        pct(row.server_cpu),
        "-" if row.server_cost is None else f"{row.server_cost * 1e6:.0f}",
        pct(row.other_cpu),
    ]
    if with_store:
        cells.insert(HEADERS.index("server CPU") + 1, pct(row.store_cpu))
    return cells


def _summary_notes(rows: list[Row]) -> list[str]:
    notes = []
    base = next((r for r in rows if r.label == "health" and r.concurrency == 1), None)
    busy = next((r for r in rows if r.label == "health, logins running"), None)
    if base and busy and base.p99 and busy.p99:
        notes.append(
            f"/health p99 at concurrency 1: {ms(base.p99)} ms alone, {ms(busy.p99)} ms while "
            f"logins run ({busy.p99 / base.p99:.1f}x); p50 {ms(base.p50)} -> {ms(busy.p50)} ms"
        )
    bare = {(r.label, r.concurrency): r for r in rows if r.label.startswith("ceiling: ")}
    for row in rows:
        ceiling = bare.get((f"ceiling: {row.label}", row.concurrency))
        if row.label not in CEILING_DOCS or ceiling is None or not ceiling.rps:
            continue
        share = row.rps / ceiling.rps
        verdict = "met" if share >= CEILING_TARGET else "NOT met"
        note = (
            f"{row.label} c={row.concurrency}: {row.rps:.0f} req/s = {share:.0%} of the "
            f"ceiling's {ceiling.rps:.0f} (target >= {CEILING_TARGET:.0%}: {verdict})"
        )
        if row.server_cost and ceiling.server_cost:
            note += (
                f"; by server CPU per request {ceiling.server_cost / row.server_cost:.0%} "
                f"({row.server_cost * 1e6:.0f} vs {ceiling.server_cost * 1e6:.0f} µs)"
            )
        notes.append(note)
    return notes


def render(
    rows: list[Row],
    opts: argparse.Namespace,
    server: Fleet | None,
    machine: dict[str, str],
    started: datetime,
    extra: list[str],
    ceiling: Ceiling | None = None,
) -> str:
    with_store = any(r.store_cpu is not None for r in rows)
    headers = list(HEADERS)
    if with_store:
        headers.insert(headers.index("server CPU") + 1, STORE_CPU)
    lines = table(headers, [_cells(r, with_store) for r in rows], opts.markdown)
    client = (
        "raw trio-socket HTTP/1.1 client" if opts.client == "raw" else "httpx.AsyncClient on trio"
    )
    setup = [
        f"load generator: {client}, up to {opts.procs} process(es) per scenario; "
        f"limits: {opts.requests} requests ({opts.login_requests} for login) or "
        f"{opts.max_seconds:g} s per scenario, {opts.timeout:g} s per request",
    ]
    if server:
        inherited = ", ".join(server.inherited) or "none"
        how = (
            f"python -m authly serve --workers {server.workers}"
            if server.launcher == "serve"
            else f"python -m hypercorn -k trio -w {server.workers} 'authly.app:create_app()'"
        )
        count = f" x {server.instances} instances" if server.instances > 1 else ""
        setup.append(
            f"server: self-started `{how}`{count} "
            f"(authly {server.version}), AUTHLY_LOGIN_RATE_LIMIT=1000000, "
            f"AUTHLY_TOKEN_RATE_LIMIT={TOKEN_RATE_LIMIT}, "
            f"AUTHLY_LOG_LEVEL=WARNING; AUTHLY_* inherited from the environment: {inherited}"
        )
        setup.append(f"store: {server.describe_store()}")
        fleet = server.describe_fleet()
        if fleet:
            setup.append(f"deployment: {fleet}")
    else:
        setup.append(f"server: {opts.url} (not started by this script; server CPU not measured)")
    setup.append(
        "req/s counts 2xx answers; p50/p99 over 2xx answers; errors = non-2xx, timeouts, "
        "connection errors, unusable bodies (set-up included); CPU = share of one core "
        "(client: all load processes; server: its whole process tree; other: the rest "
        f"of the machine, out of {machine['nproc']} cores: other people's load = noise"
        + ("; store: the PostgreSQL server's and redis-server's processes" if with_store else "")
        + "); "
        "server µs/req = server CPU time per 2xx answer (steadier than req/s when "
        "other load takes cores)"
    )
    if any(r.label == "code_flow" for r in rows):
        setup.append(
            "code_flow: one request = one complete flow (GET authorize with the session "
            "cookie -> 302 with a code, then POST token with the code_verifier); req/s = "
            "flows/s, p50/p99 per flow; any other answer to either step is an error"
        )
    labels = {r.label for r in rows}
    if "userinfo" in labels:
        setup.append(
            "userinfo: GET /oidc/userinfo with a bearer access token of scope openid profile "
            "email (one per worker, password grant of bench-rp during set-up)"
        )
    if "oidc_flow" in labels:
        setup.append(
            "oidc_flow: code_flow for bench-rp with scope=openid profile email and a nonce; "
            "a flow counts when the token response has an id_token (RS256) with that nonce"
        )
    if ceiling:
        sizes = ", ".join(f"{path} {n} B" for path, n in ceiling.sizes.items())
        setup.append(
            f"ceiling: a bare QuartTrio app (scripts/benchkit/ceiling_app.py) as its own "
            f"process, `python -m hypercorn -k trio -w 1 ... benchkit.ceiling_app:app`, "
            f"answering the bytes the server answered ({sizes}); each ceiling row runs "
            f"right after Authly's row of the same document and concurrency"
        )
    notes = []
    for r in rows:
        notes += [f"{r.label.strip()} c={r.concurrency}: {n}" for n in r.notes]
    notes += _summary_notes(rows) + extra

    out: list[str] = []
    if opts.markdown:
        out.append(
            f"**Machine:** {machine['nproc']} CPUs ({machine['cpu']}), {machine['os']}, "
            f"Python {machine['python']} · **Date:** {started:%Y-%m-%d %H:%M} UTC · "
            + (f"**Store:** {server.label()} · " if server else "")
            + f"**Command:** `{shlex.join(sys.orig_argv)}`"
        )
        out.append("")
        out += [f"- {s}" for s in setup]
        out.append(f"- load average at start: {machine['load']}")
        out.append("")
        out += lines
        if notes:
            out.append("")
            out += [f"- {n}" for n in notes]
    else:
        out += lines
        out.append("")
        out.append(
            f"machine: {machine['nproc']} CPUs ({machine['cpu']}), {machine['os']}, "
            f"Python {machine['python']}, load average at start {machine['load']}"
        )
        out.append(f"date: {started:%Y-%m-%d %H:%M:%S} UTC")
        out.append(f"command: {shlex.join(sys.orig_argv)}")
        out += setup
        if notes:
            out.append("notes:")
            out += [f"  - {n}" for n in notes]
    return "\n".join(out)
