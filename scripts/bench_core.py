#!/usr/bin/env python3
"""Core HTTP benchmark for Authly: requests/s, p50/p99 latency and CPU (client, server,
the rest of the machine) of its endpoints under concurrent load.

Scenarios (each at every --concurrency level unless noted):

- ``health``   GET /health (a store probe, reused for 0.25 s)
- ``jwks``     GET /.well-known/jwks.json
- ``discovery``  GET /.well-known/openid-configuration (OpenID Provider metadata)
- ``login``    POST /api/v1/auth/login (argon2id verify + RS256 signing + SQLite insert)
- ``refresh``  POST /api/v1/oauth/token grant_type=refresh_token; every worker logs in
  once during set-up and then follows its own rotation chain (each refresh token is
  single use, the response carries the next one)
- ``health_under_login``  GET /health at concurrency 1 while --bg-login-concurrency
  logins run without pause in another process: shows whether argon2 runs off the event
  loop (compare its p99 with ``health`` at concurrency 1)
- ``client_credentials``  POST /api/v1/oauth/token grant_type=client_credentials, the
  confidential client ``bench-svc`` authenticating with HTTP Basic (RFC 6749 §2.3.1)
- ``introspection``  POST /api/v1/oauth/introspect token=<access token> with Basic auth
  of ``bench-svc``; every worker gets its access token once during set-up, and an
  answer without ``"active": true`` counts as an error
- ``code_flow``  complete authorization-code + PKCE (S256) flows of the first-party
  public client ``bench-spa`` with a logged-in browser session: GET
  /api/v1/oauth/authorize with the session cookie (a 302 to the redirect URI carrying
  ``code`` and the same ``state`` is the expected answer), then POST /api/v1/oauth/token
  grant_type=authorization_code with the code_verifier. Every worker logs in once during
  set-up through the HTML login form (hidden fields, CSRF token included). One request
  of the table = one complete flow (two HTTP requests); p50/p99 are per flow
- ``userinfo``  GET /oidc/userinfo with a bearer access token of scope ``openid profile
  email``; every worker gets its token once during set-up (password grant of the
  first-party public client ``bench-rp``); an answer without ``sub`` is an error
- ``oidc_flow``  code_flow for ``bench-rp`` with ``scope=openid profile email`` and a
  fresh nonce: a flow counts only when the token response has an ``id_token`` whose
  (unverified) payload carries that nonce. One request = one complete flow
- ``ceiling``  the yardstick of the static documents (DESIGN.md §1): a bare QuartTrio
  app (scripts/benchkit/ceiling_app.py) started as its own process with
  ``python -m hypercorn -k trio -w 1`` (the worker `authly serve` runs, same keep-alive
  and timeouts), answering the bytes Authly answered for JWKS and discovery (body,
  Content-Type, Cache-Control; copied from the server just before). Its rows
  (``ceiling: jwks``, ``ceiling: discovery``) run right after Authly's row of the same
  document and concurrency, and the notes give Authly's req/s as a share of the
  ceiling's (target: >= 90 %). Chosen alone, it measures both documents

By default the script starts its own server (``python -m authly serve`` on a free port,
SQLite in a temporary directory, AUTHLY_LOGIN_RATE_LIMIT=1000000 so the login bench is
not rate limited, AUTHLY_TOKEN_RATE_LIMIT=10000000 so the token endpoint's per-client
and per-IP budget is not either) and stops it with SIGTERM at the end. For the OAuth
scenarios it registers ``bench-svc`` (client_secret_basic, client_credentials, random
secret), ``bench-spa`` (public, first party, redirect URI http://127.0.0.1:9/cb, never
contacted) and ``bench-rp`` (as bench-spa, plus the password grant and the scopes openid
profile email) in the SQLite file before the server starts. ``--url`` targets a running
server instead (login and refresh then need --username/--password; the OAuth scenarios
are skipped, their clients only exist in a self-started server's database).

``--database postgresql`` gives a self-started server a PostgreSQL of its own instead of
SQLite (tests/support/postgres.py: initdb into a temporary directory, pg_ctl on a free
port, never the machine's shared server on 5432; one new database, stopped and deleted at
the end, errors included). ``--instances N`` starts N servers on that one store (the
SQLite file or the PostgreSQL database) behind one password-protected redis-server of
their own (AUTHLY_REDIS_URL, AUTHLY_REDIS_RATE_LIMIT/CACHE/SESSION=true) with one shared
AUTHLY_ISSUER; each load-generator connection goes to the next server's port, round robin,
and a row's req/s is the whole fleet's. The report names the store (the password masked);
with PostgreSQL or Redis the table gets a ``store CPU`` column (their processes).

Load comes from separate OS processes (multiprocessing; ``--procs`` per scenario, 1 by
default) running trio. The default client (``--client raw``) is a minimal HTTP/1.1
keep-alive client on raw trio sockets, which costs a few tens of microseconds per
request; ``--client httpx`` uses httpx.AsyncClient, which costs several times more. Every
load process reports the CPU it used; the table shows it next to the server's, and a
note flags any load process that kept one core busy (the figures are then client-bound).
``server µs/req`` is the server's CPU time per 2xx answer: on a machine where other load
takes cores it moves much less than req/s, so the ceiling notes give that ratio too.

Every scenario stops after --requests (--login-requests for logins) OR --max-seconds,
whichever comes first; each request has its own --timeout. Before the clock starts,
every worker opens its connection with one warm-up GET (jwks: the JWKS itself, so the
table shows a warm cache; a slow warm-up is noted under the table). Any non-2xx answer,
timeout, connection error or malformed token response counts as an error: it is in the
table's ``errors`` column and broken down under the table. ``req/s`` counts 2xx answers
only; p50/p99 are over 2xx answers. The exit status is 1 if anything failed.

Examples:
    .venv/bin/python scripts/bench_core.py
    .venv/bin/python scripts/bench_core.py --markdown --workers 2 --procs 2
    .venv/bin/python scripts/bench_core.py --scenarios health,jwks --concurrency 1,8,32
    .venv/bin/python scripts/bench_core.py --scenarios jwks,discovery,ceiling,userinfo,oidc_flow
    .venv/bin/python scripts/bench_core.py --scenarios refresh,client_credentials,introspection \\
        --database postgresql --instances 3
    .venv/bin/python scripts/bench_core.py --url http://127.0.0.1:8000 \\
        --username admin --password "$AUTHLY_ADMIN_PASSWORD"

The code lives in scripts/benchkit/: core_requests.py and core_code_flow.py (each
scenario's requests), core_load.py (the load processes), core_run.py (scenarios ->
table rows), core_server.py (the server, the ceiling app's process, CPU accounting),
core_fleet.py (the store, Redis and the instances a run starts),
ceiling_app.py (the bare app), core_report.py (the output). ID-token signing per
algorithm, without HTTP: scripts/bench_id_tokens.py.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from datetime import UTC, datetime
from urllib.parse import urlsplit

import benchkit  # noqa: F401  (first: puts the checkout's root on sys.path, for tests.support)

# isort: split
from benchkit.common import choice_list, int_list, machine
from benchkit.core_fleet import Fleet
from benchkit.core_report import ms, render
from benchkit.core_run import OAUTH_SCENARIOS, SCENARIOS, Row, plan, run_scenario
from benchkit.core_server import Ceiling
from benchkit.httpclient import Target
from tests.support.processes import http_get


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--url", help="bench this running server instead of starting one")
    p.add_argument("--username", help="login for --url (default admin)")
    p.add_argument(
        "--password",
        default=os.environ.get("AUTHLY_BENCH_PASSWORD"),
        help="password for --url (default $AUTHLY_BENCH_PASSWORD); without it, login "
        "scenarios are skipped. The server needs a high AUTHLY_LOGIN_RATE_LIMIT (the "
        "default 5 lets at most 5 logins be in flight per IP: the rest get 429)",
    )
    p.add_argument("--workers", type=int, default=1, help="server worker processes (default 1)")
    p.add_argument("--host", default="127.0.0.1", help="address a self-started server binds")
    p.add_argument(
        "--launcher",
        choices=("serve", "hypercorn"),
        default="serve",
        help="how to start the server: `python -m authly serve` (default) or "
        "`python -m hypercorn -k trio -w N 'authly.app:create_app()'`",
    )
    p.add_argument(
        "--database",
        choices=("sqlite", "postgresql"),
        default="sqlite",
        help="store of a self-started server: SQLite in a temp dir (default), or a "
        "PostgreSQL server of its own (initdb in a temp dir, a free port; stopped and "
        "deleted at the end)",
    )
    p.add_argument(
        "--instances",
        type=int,
        default=1,
        help="self-started servers (default 1); more than one: all on the one store, "
        "behind one password-protected redis-server of their own, one issuer, the load "
        "spread over them round robin",
    )
    p.add_argument("--concurrency", type=int_list(), default=[1, 32], help="levels (default 1,32)")
    p.add_argument(
        "--scenarios",
        type=choice_list(SCENARIOS),
        default=list(SCENARIOS),
        help=f"comma-separated subset of {','.join(SCENARIOS)}",
    )
    p.add_argument("--requests", type=int, default=2000, help="per scenario (default 2000)")
    p.add_argument(
        "--login-requests", type=int, default=200, help="per login scenario (default 200)"
    )
    p.add_argument("--max-seconds", type=float, default=15.0, help="per scenario (default 15)")
    p.add_argument("--timeout", type=float, default=10.0, help="per request (default 10 s)")
    p.add_argument(
        "--bg-login-concurrency",
        type=int,
        default=8,
        help="background logins in health_under_login (default 8)",
    )
    p.add_argument(
        "--procs",
        type=int,
        default=1,
        help="load-generator processes per scenario, concurrency split between them (default 1)",
    )
    p.add_argument("--client", choices=("raw", "httpx"), default="raw")
    p.add_argument("--markdown", action="store_true", help="print a Markdown table")
    opts = p.parse_args(argv)
    counts = ("requests", "login_requests", "workers", "procs", "bg_login_concurrency", "instances")
    for name in counts:
        if getattr(opts, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    if opts.max_seconds <= 0 or opts.timeout <= 0:
        p.error("--max-seconds and --timeout must be positive")
    if opts.url and (opts.database != "sqlite" or opts.instances != 1):
        p.error("--database and --instances are for a self-started server, not --url")
    if opts.url:
        parts = urlsplit(opts.url)
        if parts.scheme != "http" or not parts.hostname:
            p.error("--url must be http://host:port (https is not supported)")
        opts.target = Target(parts.hostname, parts.port or 80)
        opts.username = opts.username or "admin"
    return opts


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    machine_info = machine()
    started = datetime.now(UTC)
    extra: list[str] = []
    server: Fleet | None = None
    if opts.url:
        status, body = http_get(opts.target.host, opts.target.port, "/health")
        if status != 200:
            print(f"bench: {opts.url}/health answered {status or body.decode()}", file=sys.stderr)
            return 2
        if not opts.password:
            skipped = [s for s in opts.scenarios if s in ("login", "refresh", "health_under_login")]
            if skipped:
                extra.append(f"skipped {', '.join(skipped)}: no --password for {opts.url}")
                opts.scenarios = [s for s in opts.scenarios if s not in skipped]
        skipped = [s for s in opts.scenarios if s in OAUTH_SCENARIOS]
        if skipped:
            extra.append(
                f"skipped {', '.join(skipped)}: their clients are registered only in the "
                "database of a server this script starts"
            )
            opts.scenarios = [s for s in opts.scenarios if s not in skipped]
        opts.client_secret = ""
    else:
        with_clients = any(s in OAUTH_SCENARIOS for s in opts.scenarios)
        server = Fleet(
            opts.workers,
            opts.host,
            opts.launcher,
            with_clients,
            database=opts.database,
            instances=opts.instances,
        )
        opts.target = server.target
        opts.targets = server.targets
        opts.username, opts.password = server.username, server.password
        opts.client_secret = server.client_secret
    ceiling = Ceiling(opts.host) if "ceiling" in opts.scenarios else None
    opts.ceiling_target = ceiling.target if ceiling else None
    rows: list[Row] = []
    interrupted = False
    try:
        if server:
            for line in server.commands():
                print(f"bench: starting {line}", file=sys.stderr)
            server.run()
            print(f"bench: store {server.label()}", file=sys.stderr)
        if ceiling:
            print(f"bench: starting the ceiling: {shlex.join(ceiling.argv)}", file=sys.stderr)
            ceiling.run(opts.target)
        for title, groups in plan(opts):
            print(f"bench: {title} ...", file=sys.stderr, flush=True)
            new = run_scenario(groups, opts, ceiling if groups[0].ceiling else server)
            for r in new:
                print(
                    f"bench:   {r.label.strip()}: {r.requests} requests, {r.errors} errors, "
                    f"{r.rps:.0f} req/s, p99 {ms(r.p99)} ms",
                    file=sys.stderr,
                    flush=True,
                )
            rows += new
            gone = server.exited() if server else None
            if gone:
                extra.append(f"{gone} during {title}")
                break
    except KeyboardInterrupt:
        interrupted = True
        extra.append("interrupted (Ctrl-C): the table is partial")
    finally:
        for name, started_here in (("server", server), ("ceiling app", ceiling)):
            if started_here:
                extra.append(f"{name} {started_here.finish()}")
                problems = started_here.log_problems()
                if problems:
                    first = problems[0]
                    extra.append(f"{name} logged {len(problems)} error line(s), first: {first}")
                started_here.cleanup()
    print(render(rows, opts, server, machine_info, started, extra, ceiling))
    if interrupted:
        return 130
    failed = any(r.errors for r in rows) or any("NOT" in e or "exited" in e for e in extra)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
