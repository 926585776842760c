#!/usr/bin/env python3
"""Chaos run: steady HTTP load on one Authly instance while its Redis is broken on purpose;
measures failed requests (there must be none), latency during and outside the outages,
and how fast each outage is detected and recovered from.

The script owns everything it touches: it starts a private ``redis-server`` on a free
loopback port (``--save "" --appendonly no``; never the shared 6379) and one Authly
instance (``python -m authly serve`` on a free port, SQLite in a temporary directory, all
three Redis features on). Then, for ``--duration`` seconds, it sends ``--rate`` requests/s
(open loop: a request is started on schedule whether or not earlier ones have finished,
up to ``--max-inflight``), a mix of

- ``POST /api/v1/auth/login`` with the right credentials (rate limiter + session store),
- ``GET /api/v1/users/me`` with a bearer token from the latest login (profile cache),

while it performs ``--outages`` Redis outages spread evenly over the run, cycling through

- ``kill``     SIGKILL, Redis stays away for ``--outage-seconds``, then a fresh start
  on the same port (empty: no data, no scripts),
- ``pause``    SIGSTOP for ``--outage-seconds``, then SIGCONT (connections stay open,
  nothing answers: the nastiest case for timeouts),
- ``restart``  SIGKILL and an immediate start (stale pooled connections, NOSCRIPT).

A separate client polls ``GET /health`` every 50 ms. Per outage it reports the detection
time (outage start -> /health shows every Redis feature on ``memory``) and the recovery
time (Redis answering again -> /health shows every feature back on ``redis``).

At the end it prints request counts by status, failed requests (any 5xx or transport
error, timeouts included), unexpected non-2xx answers (a 4xx on these requests is a bug
too), latency p50/p99/max overall and during outages, and the per-outage table. Exit
status: 0 when every request succeeded, 1 when any failed or got an unexpected answer,
2 when the set-up itself failed.

Everything is bounded: at most ``rate * duration`` requests, only to 127.0.0.1, each with
a ``--timeout``; the processes are stopped on the way out (also on Ctrl-C).

AUTHLY_* variables of the calling environment are NOT passed to the server; the script
sets the ones it needs. Argon2 is made cheap (time cost 1, 1 MiB) unless ``--real-hash``.

Redis Cluster (``--cluster``): the same load and /health poller against an Authly on a
private cluster of 3 masters + 3 replicas (tests/support/cluster.py), in rounds instead of
``--duration``/``--outages``: ``--rounds`` times a master AND its replica are killed (the
cluster cannot heal; restarted after ``--outage-seconds``: detection = SIGKILL -> all
memory, switch-back = ``cluster_state:ok`` on every node -> all redis), then
``--promotion-rounds`` times a master alone (switch-back from its replica's promotion).
Median and max per kind against the targets (<= 0.5 s down, <= 2 s back); the code is in
scripts/benchkit/chaos_cluster.py.

Examples:
    .venv/bin/python scripts/chaos.py
    .venv/bin/python scripts/chaos.py --duration 20 --outages 3
    .venv/bin/python scripts/chaos.py --duration 120 --rate 200 --outages 6 --seed 7
    .venv/bin/python scripts/chaos.py --cluster --rounds 5 --promotion-rounds 3

The code lives in scripts/benchkit/: chaos_run.py (server, load, outages, /health
poller) and chaos_report.py (the output).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import traceback
from pathlib import Path

import benchkit  # noqa: F401  (first: puts the checkout's root on sys.path, for tests.support)
import trio

# isort: split
from benchkit.chaos_cluster import run_cluster
from benchkit.chaos_report import report
from benchkit.chaos_run import ChaosServer, Run, main_async
from tests.support.processes import RedisProcess


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--duration", type=float, default=60.0, help="seconds of load (default 60)")
    p.add_argument("--rate", type=float, default=100.0, help="requests per second (default 100)")
    p.add_argument("--outages", type=int, default=3, help="number of outages (default 3)")
    p.add_argument("--seed", type=int, default=1, help="seed for the request mix and timing")
    p.add_argument(
        "--outage-seconds",
        type=float,
        default=3.0,
        help="how long Redis stays killed/paused (default 3; at most 40%% of the spacing)",
    )
    p.add_argument(
        "--login-share", type=float, default=0.3, help="share of logins in the mix (0.3)"
    )
    p.add_argument("--timeout", type=float, default=5.0, help="per-request timeout, s (5)")
    p.add_argument("--max-inflight", type=int, default=128, help="cap on pending requests (128)")
    p.add_argument(
        "--health-interval-ms", type=int, default=500, help="AUTHLY_REDIS_HEALTH_INTERVAL_MS"
    )
    p.add_argument("--op-timeout-ms", type=int, default=250, help="AUTHLY_REDIS_OP_TIMEOUT_MS")
    p.add_argument("--settle", type=float, default=10.0, help="s to wait for a last recovery")
    p.add_argument("--real-hash", action="store_true", help="keep the default argon2 cost")
    p.add_argument("--keep", action="store_true", help="keep the work dir (logs, SQLite)")
    p.add_argument("--cluster", action="store_true", help="a Redis Cluster, in rounds")
    p.add_argument("--rounds", type=int, default=3, help="--cluster: master+replica kills (3)")
    p.add_argument(
        "--promotion-rounds", type=int, default=2, help="--cluster: master-only kills (2)"
    )
    p.add_argument("--gap", type=float, default=2.0, help="--cluster: s of calm between rounds")
    opts = p.parse_args(argv)
    if not (0 <= opts.rounds <= 50 and 0 <= opts.promotion_rounds <= 50):
        p.error("--rounds and --promotion-rounds must be in [0, 50]")
    if not 0 <= opts.gap <= 60:
        p.error("--gap must be in [0, 60]")
    if opts.duration <= 0 or opts.duration > 3600:
        p.error("--duration must be in (0, 3600]")
    if opts.rate <= 0 or opts.rate > 5000:
        p.error("--rate must be in (0, 5000]")
    if not 0 <= opts.outages <= 100:
        p.error("--outages must be in [0, 100]")
    if not 0 <= opts.login_share <= 1:
        p.error("--login-share must be in [0, 1]")
    if opts.max_inflight < 1:
        p.error("--max-inflight must be at least 1")
    return opts


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="authly-chaos-"))
    if opts.cluster:
        status = run_cluster(opts, workdir)
        if opts.keep or status != 0:
            print(f"work dir kept: {workdir} (authly.stdout, authly.stderr, cluster/)")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
        return status
    try:
        redis = RedisProcess(workdir / "redis.log")
    except RuntimeError as exc:  # no redis-server
        print(f"chaos: {exc}", file=sys.stderr)
        shutil.rmtree(workdir, ignore_errors=True)
        return 2
    server = ChaosServer(workdir, redis.url, opts)
    print(
        f"chaos: redis-server on 127.0.0.1:{redis.port}, authly on {server.base_url}, "
        f"work dir {workdir}",
        flush=True,
    )
    run: Run | None = None
    status = 2
    stop_note = "not started"
    try:
        run = trio.run(main_async, opts, redis, server)
    except KeyboardInterrupt:
        print("chaos: interrupted", file=sys.stderr)
    except (RuntimeError, trio.TooSlowError) as exc:
        print(f"chaos: set-up failed: {exc}", file=sys.stderr)
    except BaseExceptionGroup as group:
        if group.subgroup(KeyboardInterrupt) is not None:
            print("chaos: interrupted", file=sys.stderr)
        else:
            traceback.print_exc()
            print("chaos: the run itself failed (see the traceback above)", file=sys.stderr)
    finally:
        stop_note = server.shutdown()
        redis.close()
    if run is not None:
        status = report(run, opts, server, stop_note)
    if opts.keep or status != 0:
        print(f"work dir kept: {workdir} (authly.stdout, authly.stderr, redis.log, authly.db)")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
