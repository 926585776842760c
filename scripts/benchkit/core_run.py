"""How scripts/bench_core.py runs a scenario: which table rows (groups) each scenario
has, the load processes (forked) that run a group's jobs, and one table row per group
from their results, with the server's and the rest of the machine's CPU meanwhile."""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing as mp
import queue as queue_module
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

from benchkit.common import percentile
from benchkit.core_load import SETUP_SECONDS, Job, ProcResult, child_main
from benchkit.core_server import machine_busy_seconds
from benchkit.httpclient import Target

# Scenarios whose clients only a self-started server has (registered before it starts).
OAUTH_SCENARIOS = ("client_credentials", "introspection", "code_flow", "userinfo", "oidc_flow")
SCENARIOS = (
    "health",
    "jwks",
    "discovery",
    "login",
    "refresh",
    "health_under_login",
    *OAUTH_SCENARIOS,
    "ceiling",
)
CEILING_DOCS = ("jwks", "discovery")  # what the bare app (core_server.Ceiling) serves
SLOW_WARMUP_SECONDS = 0.5  # a warm-up slower than this is worth a note
SATURATED_CORE = 0.90  # a load process above this share of one core is client-bound
BACKGROUND_LOGIN_CAP = 100_000  # count bound of the background logins (time stops them)


@dataclass(frozen=True)
class Group:
    """One table row: ``concurrency`` workers doing ``kind``, split over processes."""

    label: str
    kind: str
    concurrency: int
    requests: int
    procs: int
    start_delay: float = 0.0
    follower: bool = False
    leader: bool = False
    extra_seconds: float = 0.0  # added to --max-seconds (a follower outlasts its leader)
    ceiling: bool = False  # against the bare QuartTrio app (opts.ceiling_target), not Authly


class CpuMeter(Protocol):
    def cpu_seconds(self) -> float | None: ...


def store_cpu_seconds(server: CpuMeter | None) -> float | None:
    """CPU of the processes the server's store and Redis run in (a Fleet with PostgreSQL
    or Redis; None otherwise)."""
    meter = getattr(server, "store_cpu_seconds", None)
    return meter() if meter is not None else None


@dataclass
class Row:
    label: str
    concurrency: int
    requests: int
    errors: int
    ok: int
    elapsed: float
    p50: float | None
    p99: float | None
    client_cpu: float | None  # share of one core, summed over load processes
    client_peak: float | None  # the busiest load process, share of one core
    procs: int
    server_cpu: float | None
    other_cpu: float | None  # the rest of the machine during the scenario (noise)
    notes: list[str] = field(default_factory=list)
    # Server CPU per 2xx answer (s), when the scenario has one group: steadier than req/s
    # on a busy machine (it does not count the time the server waits for a core).
    server_cost: float | None = None
    # PostgreSQL and Redis of a self-started fleet, share of one core (None: neither).
    store_cpu: float | None = None

    @property
    def rps(self) -> float:
        return self.ok / self.elapsed if self.elapsed > 0 else 0.0


def plan(opts: argparse.Namespace) -> Iterator[tuple[str, list[Group]]]:
    """(title, groups) of every scenario run, in order. A ceiling row runs right after
    the Authly row it is the yardstick of (same document, same concurrency); with
    neither jwks nor discovery chosen, ``ceiling`` measures both documents alone."""
    ceiling = "ceiling" in opts.scenarios
    for kind in ("health", "jwks", "discovery", "login", "refresh"):
        if kind not in opts.scenarios:
            continue
        n = opts.login_requests if kind == "login" else opts.requests
        for c in opts.concurrency:
            yield f"{kind} c={c}", [Group(kind, kind, c, n, opts.procs)]
            if ceiling and kind in CEILING_DOCS:
                yield from ceiling_run(kind, c, opts)
    if ceiling and not any(k in opts.scenarios for k in CEILING_DOCS):
        for kind in CEILING_DOCS:
            for c in opts.concurrency:
                yield from ceiling_run(kind, c, opts)
    if "health_under_login" in opts.scenarios:
        bg = opts.bg_login_concurrency
        health = Group(
            "health, logins running",
            "health",
            1,
            opts.requests,
            1,
            start_delay=0.5,  # let the background logins get going first
            leader=True,
        )
        logins = Group(
            "login, in background",
            "login",
            bg,
            BACKGROUND_LOGIN_CAP,
            opts.procs,
            follower=True,
            extra_seconds=2.0,  # runs until the health measurement ends
        )
        yield f"health_under_login (c=1, {bg} logins in the background)", [health, logins]
    for kind in OAUTH_SCENARIOS:
        if kind in opts.scenarios:
            for c in opts.concurrency:
                yield f"{kind} c={c}", [Group(kind, kind, c, opts.requests, opts.procs)]


def ceiling_run(kind: str, c: int, opts: argparse.Namespace) -> Iterator[tuple[str, list[Group]]]:
    group = Group(f"ceiling: {kind}", kind, c, opts.requests, opts.procs, ceiling=True)
    yield f"ceiling: {kind} c={c}", [group]


def split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def jobs_of(gi: int, group: Group, opts: argparse.Namespace) -> list[tuple[int, Job]]:
    """(group index, job) for each load process of ``group``."""
    procs = max(1, min(group.procs, group.concurrency))
    workers = split(group.concurrency, procs)
    counts = [round(group.requests * w / group.concurrency) for w in workers]
    counts[-1] = group.requests - sum(counts[:-1])
    # Several servers: the group's connections go to them round robin, across processes
    # too (each job's list starts where the previous job's workers stopped).
    targets: tuple[Target, ...] = () if group.ceiling else tuple(getattr(opts, "targets", ()))
    firsts = [sum(workers[:i]) for i in range(len(workers))]
    return [
        (
            gi,
            Job(
                target=opts.ceiling_target if group.ceiling else opts.target,
                kind=group.kind,
                workers=w,
                requests=n,
                max_seconds=opts.max_seconds + group.extra_seconds,
                timeout=opts.timeout,
                client=opts.client,
                username=opts.username or "",
                password=opts.password or "",
                start_delay=group.start_delay,
                follower=group.follower,
                leader=group.leader,
                client_secret=opts.client_secret,
                targets=rotated(targets, first),
            ),
        )
        for w, n, first in zip(workers, counts, firsts, strict=True)
    ]


def rotated(targets: tuple[Target, ...], first: int) -> tuple[Target, ...]:
    """``targets`` starting at index ``first`` (modulo its length); () stays ()."""
    if len(targets) < 2:
        return ()
    k = first % len(targets)
    return targets[k:] + targets[:k]


def run_scenario(
    groups: list[Group], opts: argparse.Namespace, server: CpuMeter | None
) -> list[Row]:
    """Run ``groups`` at once; ``server``: the process whose CPU the rows show."""
    ctx = mp.get_context("fork")
    jobs = [job for gi, group in enumerate(groups) for job in jobs_of(gi, group, opts)]
    barrier = ctx.Barrier(len(jobs) + 1)
    stop_event = ctx.Event()
    results_q = ctx.Queue()
    procs = [
        ctx.Process(target=child_main, args=(i, job, barrier, stop_event, results_q), daemon=True)
        for i, (_, job) in enumerate(jobs)
    ]
    for p in procs:
        p.start()
    results: dict[int, ProcResult] = {}
    try:
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait(SETUP_SECONDS + 30)
        srv0 = server.cpu_seconds() if server else None
        store0 = store_cpu_seconds(server)
        busy0 = machine_busy_seconds()
        t0 = time.monotonic()
        limit = t0 + opts.max_seconds + 2 * opts.timeout + 35
        while len(results) < len(jobs) and time.monotonic() < limit:
            try:
                index, result = results_q.get(timeout=max(0.1, limit - time.monotonic()))
            except queue_module.Empty:
                break
            results[index] = result
        srv1 = server.cpu_seconds() if server else None
        store1 = store_cpu_seconds(server)
        busy1 = machine_busy_seconds()
        t1 = time.monotonic()
    finally:
        for p in procs:
            p.join(5)
            if p.is_alive():
                p.terminate()
                p.join(5)
    server_cpu = srv1 - srv0 if srv0 is not None and srv1 is not None else None
    store_cpu = store1 - store0 if store0 is not None and store1 is not None else None
    # Everything else the machine did meanwhile (other people's work = noise).
    other_cpu = None
    if server_cpu is not None and busy0 is not None and busy1 is not None and t1 > t0:
        clients = sum(r.cpu_seconds for r in results.values())
        other_cpu = max(0.0, (busy1 - busy0) - server_cpu - (store_cpu or 0.0) - clients)
        other_cpu /= t1 - t0
    server_share = server_cpu / (t1 - t0) if server_cpu is not None and t1 > t0 else None
    store_share = store_cpu / (t1 - t0) if store_cpu is not None and t1 > t0 else None
    rows = []
    for gi, group in enumerate(groups):
        mine = [i for i, (g, _) in enumerate(jobs) if g == gi]
        row = row_of(group, {i: results.get(i) for i in mine}, opts)
        row.server_cpu, row.other_cpu, row.store_cpu = server_share, other_cpu, store_share
        if server_cpu is not None and len(groups) == 1 and row.ok:
            row.server_cost = server_cpu / row.ok
        rows.append(row)
    return rows


def row_of(group: Group, results: dict[int, ProcResult | None], opts: argparse.Namespace) -> Row:
    """The table row of one group from its load processes' results (None: no result)."""
    notes = []
    for i, r in results.items():
        if r is None:
            notes.append(f"load process {i} returned no result (killed or hung)")
        elif r.crashed:
            notes.append(f"load process {i} crashed: {r.crashed}")
    got = [r for r in results.values() if r is not None]
    errors: Counter[str] = Counter()
    setup: Counter[str] = Counter()
    latencies: list[float] = []
    for r in got:
        errors.update(r.errors)
        setup.update(r.setup_errors)
        latencies.extend(r.latencies)
    ran = [r for r in got if r.t_end > 0]
    elapsed = max(r.t_end for r in ran) - min(r.t_start for r in ran) if ran else 0.0
    cpu = sum(r.cpu_seconds for r in ran)
    # CPU shares over very short windows are meaningless (rusage ticks).
    peak = max(
        (r.cpu_seconds / (r.t_end - r.t_start) for r in ran if r.t_end - r.t_start >= 0.2),
        default=None,
    )
    if got and not ran:
        notes.append("no worker could start: every set-up failed")
    warmup = max((r.warmup_max for r in got), default=0.0)
    if warmup >= SLOW_WARMUP_SECONDS:
        notes.append(f"slowest warm-up request (not measured) took {warmup * 1000:.0f} ms")
    if any(r.cut_by_time for r in ran):
        notes.append(
            f"stopped by --max-seconds ({opts.max_seconds:g} s) before {group.requests} requests"
        )
    relogins = sum(r.relogins for r in got)
    if relogins:
        notes.append(f"{relogins} re-login(s) after a broken refresh chain (not counted)")
    for kind, n in sorted(errors.items(), key=lambda kv: -kv[1]):
        notes.append(f"error x{n}: {kind}")
    for kind, n in sorted(setup.items(), key=lambda kv: -kv[1]):
        notes.append(f"set-up error x{n} (also in errors): {kind}")
    if peak is not None and peak >= SATURATED_CORE:
        notes.append(
            f"a load process used {peak:.0%} of a core: this figure is bound by the client"
        )
    return Row(
        label=group.label,
        concurrency=group.concurrency,
        requests=sum(r.requests for r in got),
        errors=sum(errors.values()) + sum(setup.values()),
        ok=len(latencies),
        elapsed=elapsed,
        p50=percentile(latencies, 50),
        p99=percentile(latencies, 99),
        client_cpu=cpu / elapsed if elapsed >= 0.2 else None,
        client_peak=peak,
        procs=len(results),
        server_cpu=None,
        other_cpu=None,
        notes=notes,
    )
