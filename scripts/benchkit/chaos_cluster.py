"""``scripts/chaos.py --cluster``: outages of a Redis Cluster (3 masters + 3 replicas,
tests/support/cluster.py) under one Authly instance with every Redis feature on, while
the load and the /health poller of chaos_run.py run. Rounds, one after the other:

- ``master+replica`` (``--rounds``): SIGKILL a master's replica, then the master: its slots
  have no one left, the cluster cannot heal. Detection = the master's SIGKILL -> /health
  shows every feature on memory. After ``--outage-seconds`` both restart (same port, same
  nodes.conf); switch-back = the moment every node says ``cluster_state:ok`` again ->
  /health shows every feature on redis for good (the last switch back of the round).
- ``master`` (``--promotion-rounds``): SIGKILL a master alone; the cluster promotes its
  replica after the node timeout. Detection as above; switch-back = the replica promoted
  (it says role:master and every live node ``cluster_state:ok``) -> every feature on
  redis. Then the old master restarts and rejoins as a replica (not timed; any switch
  it causes is counted as a blip).

Each round's masters are taken in turn; a round ends once /health has shown redis for
``STABLE`` s (or after ``--settle`` s). Targets (issue 11): detection <= 0.5 s and
switch-back <= 2 s, as for a single node (issue 3).
"""

from __future__ import annotations

import argparse
import random
import statistics
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import trio
from tests.support.cluster import RedisClusterGroup
from tests.support.sentinel import RedisReplyError

from benchkit.chaos_report import is_failure, latency_line, secs
from benchkit.chaos_run import ChaosServer, Run, drive_load, login_once, now, on_redis, poll_health

POLL = 0.02  # s between two looks at the cluster's state
STABLE = 1.5  # s on redis that end a round
DETECT_TARGET, BACK_TARGET = 0.5, 2.0


@dataclass
class Round:
    kind: str  # "master+replica" | "master"
    master: int
    replica: int
    started: float = 0.0  # the master's SIGKILL
    back: float | None = None  # cluster_state:ok everywhere (after the restart/promotion)
    restarted: float | None = None  # master+replica: both restarts begin
    ended: float = 0.0  # the round's window closes (before the old master rejoins)
    detected_at: float | None = None
    recovered_at: float | None = None  # the round's last switch to all-redis
    switches_back: int = 0  # switches to all-redis in the round (more than 1: flapping)
    blips: int = 0  # /health samples not on redis after the window (the rejoin)

    def detection(self) -> float | None:
        return None if self.detected_at is None else self.detected_at - self.started

    def recovery(self) -> float | None:
        if self.recovered_at is None or self.back is None:
            return None
        return self.recovered_at - self.back


async def cluster_ok_everywhere(group: RedisClusterGroup) -> bool:
    """Every node of the group runs and says cluster_state:ok."""
    if len(group.live_ports()) != len(group.nodes):
        return False
    try:
        for port in group.live_ports():
            if not await group.cluster_ok(port):
                return False
    except (OSError, ConnectionError, RedisReplyError, trio.TooSlowError):
        return False
    return True


async def promoted(group: RedisClusterGroup, replica: int) -> bool:
    """``replica`` says role:master and every live node says cluster_state:ok."""
    try:
        if "role:master" not in await group.node_command(replica, "INFO", "replication"):
            return False
        for port in group.live_ports():
            if not await group.cluster_ok(port):
                return False
    except (OSError, ConnectionError, RedisReplyError, trio.TooSlowError):
        return False
    return True


async def first_time(check: Callable[[], Awaitable[bool]]) -> float:
    """When ``check`` first passed, looking every POLL s."""
    while True:
        if await check():
            return now()
        await trio.sleep(POLL)


async def stable_on_redis(run: Run, since: float, limit: float) -> None:
    """Return once /health has shown redis for STABLE s, counted from ``since`` at the
    earliest (or after ``limit`` s)."""
    with trio.move_on_after(limit):
        while True:
            await run.new_sample.wait()
            last = run.health[-1][0]
            start = last
            for t, state in reversed(run.health):
                if state != "redis":
                    break
                start = t
            if run.health[-1][1] == "redis" and last - max(start, since) >= STABLE:
                return


async def one_round(
    group: RedisClusterGroup, run: Run, rnd: Round, opts: argparse.Namespace
) -> None:
    if rnd.kind == "master+replica":
        await group.kill_node(rnd.replica)
        rnd.started = now()
        await group.kill_node(rnd.master)
        await trio.sleep(opts.outage_seconds)
        rnd.restarted = now()

        async def watch() -> None:
            rnd.back = await first_time(lambda: cluster_ok_everywhere(group))

        async with trio.open_nursery() as nursery:  # both restart at once
            nursery.start_soon(watch)
            nursery.start_soon(group.restart_node, rnd.master)
            nursery.start_soon(group.restart_node, rnd.replica)
        await stable_on_redis(run, rnd.back or now(), opts.settle)
        rnd.ended = now()
    else:
        rnd.started = now()
        await group.kill_node(rnd.master)
        with trio.move_on_after(opts.settle + 10):
            rnd.back = await first_time(lambda: promoted(group, rnd.replica))
        await stable_on_redis(run, rnd.back or now(), opts.settle)
        rnd.ended = now()
        await group.restart_node(rnd.master)  # rejoins as a replica of the promoted one
        await stable_on_redis(run, now(), opts.settle)


async def drive_rounds(
    group: RedisClusterGroup, run: Run, rounds: list[Round], opts: argparse.Namespace
) -> None:
    kinds = ["master+replica"] * opts.rounds + ["master"] * opts.promotion_rounds
    for i, kind in enumerate(kinds):
        await trio.sleep(opts.gap)
        masters = await group.master_ports()
        master = masters[i % len(masters)]
        rnd = Round(kind, master, await group.replica_of(master))
        rounds.append(rnd)
        print(f"chaos: round {i + 1}: kill {kind} (127.0.0.1:{master})", flush=True)
        await one_round(group, run, rnd, opts)


def analyse(run: Run, rounds: list[Round]) -> None:
    for i, rnd in enumerate(rounds):
        samples = [(t, s) for t, s in run.health if rnd.started <= t < rnd.ended]
        rnd.detected_at = next((t for t, s in samples if s == "memory"), None)
        previous = "redis"
        for t, state in samples:
            if state == "redis" and previous != "redis":
                rnd.switches_back += 1
                rnd.recovered_at = t
            previous = state
        following = rounds[i + 1].started if i + 1 < len(rounds) else float("inf")
        rnd.blips = sum(1 for t, s in run.health if rnd.ended <= t < following and s != "redis")


async def main_cluster(
    opts: argparse.Namespace, group: RedisClusterGroup, server: ChaosServer
) -> tuple[Run, list[Round]]:
    run = Run()
    rounds: list[Round] = []
    server.start()
    limits = httpx.Limits(max_connections=opts.max_inflight, max_keepalive_connections=64)
    endless = argparse.Namespace(**(vars(opts) | {"duration": 24 * 3600.0}))
    async with (
        httpx.AsyncClient(base_url=server.base_url, limits=limits) as client,
        httpx.AsyncClient(base_url=server.base_url) as health_client,
    ):
        await server.await_healthy(on_redis)
        await login_once(client, server, run)
        stop_polling = trio.Event()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(poll_health, health_client, run, stop_polling)
            async with trio.open_nursery() as load:
                load.start_soon(drive_load, client, server, run, endless, random.Random(opts.seed))
                await drive_rounds(group, run, rounds, opts)
                await trio.sleep(opts.gap)
                load.cancel_scope.cancel()
            run.load_ended = now()
            stop_polling.set()
    analyse(run, rounds)
    return run, rounds


def run_cluster(opts: argparse.Namespace, workdir: Path) -> int:
    """Start the cluster and Authly, run the rounds, report; the exit status."""
    path = workdir / "cluster"
    path.mkdir()
    try:
        group = RedisClusterGroup(path)
    except RuntimeError as exc:  # no redis-server or redis-cli
        print(f"chaos: {exc}", flush=True)
        return 2
    server: ChaosServer | None = None
    result: tuple[Run, list[Round]] | None = None
    stop_note = "not started"
    try:
        trio.run(group.start)
        server = ChaosServer(workdir, group.url, opts)
        print(f"chaos: cluster {group.url}, authly on {server.base_url}, work dir {workdir}")
        result = trio.run(main_cluster, opts, group, server)
    except KeyboardInterrupt:
        print("chaos: interrupted", flush=True)
    except (RuntimeError, trio.TooSlowError) as exc:
        print(f"chaos: failed: {exc}", flush=True)
    finally:
        if server is not None:
            stop_note = server.shutdown()
        group.close()
    if result is None or server is None:
        return 2
    return report(*result, opts, server, stop_note)


def summary(values: list[float | None], target: float) -> str:
    got = [v for v in values if v is not None]
    if not got:
        return "-"
    verdict = "met" if len(got) == len(values) and max(got) <= target else "MISSED"
    return (
        f"median {statistics.median(got):.2f} s, max {max(got):.2f} s "
        f"(n={len(got)}/{len(values)}; target <= {target:g} s: {verdict})"
    )


def report(
    run: Run, rounds: list[Round], opts: argparse.Namespace, server: ChaosServer, stop: str
) -> int:
    reqs = run.requests
    failed = [r for r in reqs if is_failure(r.outcome)]
    unexpected = [r for r in reqs if not is_failure(r.outcome) and r.outcome != "200"]
    windows = [(r.started, r.recovered_at or r.ended) for r in rounds]
    during = [r for r in reqs if any(a <= r.started <= b for a, b in windows)]
    elapsed = max(run.load_ended - run.load_started, 1e-9)
    print()
    print(
        f"chaos --cluster: 3 masters + 3 replicas (cluster-node-timeout 1000 ms), "
        f"{opts.rounds} master+replica and {opts.promotion_rounds} master rounds, "
        f"{opts.rate:g} req/s (login share {opts.login_share:g}), op timeout "
        f"{opts.op_timeout_ms} ms, health interval {opts.health_interval_ms} ms"
    )
    print(f"requests: {len(reqs)} sent in {elapsed:.1f} s ({len(reqs) / elapsed:.1f}/s)")
    print(f"  status counts: {dict(sorted(Counter(r.outcome for r in reqs).items()))}")
    print(f"  failed (5xx or transport error): {len(failed)}")
    print(f"  unexpected non-2xx (4xx): {len(unexpected)}")
    for req in (failed + unexpected)[:10]:
        where = next(
            (f"round {i}" for i, (a, b) in enumerate(windows, 1) if a <= req.started <= b), None
        )
        print(
            f"    {req.kind} {req.outcome} at {req.started - run.load_started:.2f} s "
            f"after {req.latency * 1000:.0f} ms ({where or 'outside the outages'})"
        )
    print("latency:")
    print(latency_line("overall", reqs))
    print(latency_line("during outages", during))
    print(f"health polls: {len(run.health)} answered, errors {dict(run.health_errors) or 0}")
    print("rounds (detection: SIGKILL -> all memory; switch-back: cluster ok -> all redis):")
    print(
        f"  {'#':>2} {'kind':<15} {'master':>6} {'at':>7} {'detection':>10} {'cluster ok':>10} "
        f"{'switch-back':>11} {'from restart':>12} {'switches':>8} {'blips':>5}"
    )
    for i, r in enumerate(rounds, 1):
        ok_after = None if r.back is None else r.back - r.started
        from_restart = None
        if r.restarted is not None and r.recovered_at is not None:
            from_restart = r.recovered_at - r.restarted
        print(
            f"  {i:>2} {r.kind:<15} {r.master:>6} {r.started - run.load_started:>6.1f}s "
            f"{secs(r.detection()):>10} "
            f"{secs(ok_after):>10} {secs(r.recovery()):>11} {secs(from_restart):>12} "
            f"{r.switches_back:>8} {r.blips:>5}"
        )
    print("  (cluster ok: s after the SIGKILL; switch-back < 0: Authly was back on redis before")
    print("   every node said cluster_state:ok; from restart: the restarts began -> all redis;")
    print("   switches > 1: it flapped; blips: samples off redis after the round, e.g. while")
    print("   the old master rejoined)")
    for kind in ("master+replica", "master"):
        mine = [r for r in rounds if r.kind == kind]
        if mine:
            print(f"{kind}: detection {summary([r.detection() for r in mine], DETECT_TARGET)}")
            back = summary([r.recovery() for r in mine], BACK_TARGET)
            print(f"{' ' * len(kind)}  switch-back {back}")
    problems = server.log_problems()
    switches = sum("Backend switch" in ln for ln in server.log_lines())
    print(f"server: {stop}; log has {switches} backend-switch lines, {len(problems)} errors")
    for line in problems[:10]:
        print(f"    {line[:200]}")
    lost = any(r.detected_at is None or r.recovered_at is None for r in rounds)
    if failed or unexpected or lost:
        print("RESULT: FAIL" + (" (a round not seen on memory or not back)" if lost else ""))
        return 1
    print("RESULT: OK (no failed requests)")
    return 0
