"""One load-generator process of scripts/bench_core.py (forked; trio inside): the
scenario table, the workers, and what a process reports back.

Every worker opens its connection with one warm-up GET and runs its scenario's set-up;
then all processes of a scenario wait at a barrier and the clock starts. Each request is
bounded by the job's timeout; the job stops after its request count or its seconds."""

from __future__ import annotations

import contextlib
import math
import resource
import signal
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import trio

from benchkit import core_requests as req
from benchkit.core_code_flow import BROWSER_LOGIN_STEPS, browser_login, code_flow, oidc_flow
from benchkit.httpclient import Client, HttpxClient, RawClient, Target

SETUP_SECONDS = 60.0  # bound on per-scenario set-up (connections, the refresh logins)

Request = Callable[[Client, "Job", str | None], Awaitable[str | None]]


@dataclass(frozen=True)
class Scenario:
    """What a worker of one scenario does: ``request`` is measured; ``prepare`` (set-up,
    not measured, bounded by ``prepare_steps`` request timeouts) gives the token every
    request gets; a ``chained`` request returns the next token, and a failed one
    re-runs ``prepare`` (not counted as a request)."""

    request: Request
    prepare: Request | None = None
    prepare_steps: int = 1
    warmup_path: str = req.HEALTH_PATH
    chained: bool = False


SCENARIOS: dict[str, Scenario] = {
    "health": Scenario(req.health),
    "jwks": Scenario(req.jwks, warmup_path=req.JWKS_PATH),  # the table shows a warm cache
    "login": Scenario(req.login),
    "refresh": Scenario(req.refresh, prepare=req.login, chained=True),
    "client_credentials": Scenario(req.client_credentials),
    "introspection": Scenario(req.introspection, prepare=req.client_credentials),
    "code_flow": Scenario(code_flow, prepare=browser_login, prepare_steps=BROWSER_LOGIN_STEPS),
    "discovery": Scenario(req.discovery, warmup_path=req.DISCOVERY_PATH),  # a warm cache
    "userinfo": Scenario(req.userinfo, prepare=req.password_token),
    "oidc_flow": Scenario(oidc_flow, prepare=browser_login, prepare_steps=BROWSER_LOGIN_STEPS),
}


@dataclass(frozen=True)
class Job:
    """What one load-generator process does; picklable."""

    target: Target
    kind: str  # a key of SCENARIOS
    workers: int
    requests: int
    max_seconds: float
    timeout: float
    client: str  # raw | httpx
    username: str
    password: str
    start_delay: float = 0.0
    follower: bool = False  # stop as soon as the scenario's stop event is set
    leader: bool = False  # set the scenario's stop event when done
    client_secret: str = ""  # bench-svc's (client_credentials, introspection)
    # Several servers (bench_core --instances): worker i connects to targets[i % len];
    # empty: every worker connects to ``target``.
    targets: tuple[Target, ...] = ()


@dataclass
class ProcResult:
    latencies: list[float] = field(default_factory=list)  # seconds, 2xx answers only
    requests: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    setup_errors: Counter[str] = field(default_factory=Counter)
    relogins: int = 0
    t_start: float = 0.0  # time.monotonic(), comparable across processes on Linux
    t_end: float = 0.0
    cpu_seconds: float = 0.0
    cut_by_time: bool = False
    warmup_max: float = 0.0  # seconds, slowest warm-up request
    crashed: str | None = None


@dataclass
class _State:
    issued: int = 0
    deadline: float = math.inf  # trio.current_time(), not time.monotonic()


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _worker(
    job: Job,
    client: Client,
    token: list[str | None],
    state: _State,
    result: ProcResult,
    stop_event: Any,
) -> None:
    scenario = SCENARIOS[job.kind]
    while state.issued < job.requests and trio.current_time() < state.deadline:
        if job.follower and stop_event.is_set():
            return
        state.issued += 1
        started = time.perf_counter()
        try:
            with trio.fail_after(job.timeout):
                answer = await scenario.request(client, job, token[0])
            if scenario.chained:
                token[0] = answer
        except Exception as exc:
            result.requests += 1
            result.errors[req.error_kind(exc)] += 1
            client.drop()
            if scenario.chained and scenario.prepare is not None:
                # The chain is broken: start a new one (not counted as a request).
                try:
                    with trio.fail_after(job.timeout * scenario.prepare_steps):
                        token[0] = await scenario.prepare(client, job, None)
                    result.relogins += 1
                except Exception as exc2:
                    result.setup_errors[f"re-login: {req.error_kind(exc2)}"] += 1
                    return
            continue
        result.latencies.append(time.perf_counter() - started)
        result.requests += 1


async def _prepare(job: Job, client: Client, token: list[str | None], result: ProcResult) -> None:
    """Open the connection with one warm-up GET and run the scenario's set-up (refresh:
    start a token chain; introspection: get the access token to introspect; code_flow:
    log the browser session in). Not measured, but the slowest warm-up is reported when
    it is slow (a cold cache shows up there)."""
    scenario = SCENARIOS[job.kind]
    try:
        started = time.perf_counter()
        with trio.fail_after(job.timeout):
            await req.get(client, scenario.warmup_path)
        result.warmup_max = max(result.warmup_max, time.perf_counter() - started)
        if scenario.prepare is not None:
            with trio.fail_after(job.timeout * scenario.prepare_steps):
                token[0] = await scenario.prepare(client, job, None)
    except Exception as exc:
        result.setup_errors[f"set-up: {req.error_kind(exc)}"] += 1
        client.drop()


async def run_job(job: Job, barrier: Any, stop_event: Any) -> ProcResult:
    result = ProcResult()
    async with contextlib.AsyncExitStack() as stack:
        clients: list[Client]
        targets = job.targets or (job.target,)
        if job.client == "httpx":
            import httpx

            shared = [
                await stack.enter_async_context(
                    httpx.AsyncClient(
                        base_url=target.base_url,
                        timeout=job.timeout,
                        limits=httpx.Limits(
                            max_connections=job.workers, max_keepalive_connections=job.workers
                        ),
                    )
                )
                for target in targets
            ]
            clients = [HttpxClient(shared[i % len(shared)]) for i in range(job.workers)]
        else:
            clients = [RawClient(targets[i % len(targets)]) for i in range(job.workers)]
            for c in clients:
                stack.push_async_callback(c.aclose)
        tokens: list[list[str | None]] = [[None] for _ in clients]

        with trio.move_on_after(SETUP_SECONDS):
            async with trio.open_nursery() as nursery:
                for client, token in zip(clients, tokens, strict=True):
                    nursery.start_soon(_prepare, job, client, token, result)
        if SCENARIOS[job.kind].prepare is not None:
            # Workers whose chain, token or session could not start do not run.
            live = [(c, t) for c, t in zip(clients, tokens, strict=True) if t[0] is not None]
        else:
            live = list(zip(clients, tokens, strict=True))

        await trio.to_thread.run_sync(barrier.wait, SETUP_SECONDS + 30)
        if not live:
            return result  # every set-up failed (counted); t_end == 0 marks "did not run"
        if job.start_delay:
            await trio.sleep(job.start_delay)

        state = _State()
        cpu0 = _cpu_seconds()
        result.t_start = time.monotonic()
        state.deadline = trio.current_time() + job.max_seconds  # trio's clock
        # Hard stop: each request is bounded by --timeout, so this only fires if a
        # re-login hangs; anything cut here is counted as an error, never dropped.
        with trio.move_on_at(state.deadline + 2 * job.timeout + 1) as hard_stop:
            async with trio.open_nursery() as nursery:
                for client, token in live:
                    nursery.start_soon(_worker, job, client, token, state, result, stop_event)
        if hard_stop.cancelled_caught:
            in_flight = state.issued - result.requests
            result.errors["cancelled in flight at the hard deadline"] += in_flight
            result.requests += in_flight
        result.t_end = time.monotonic()
        result.cpu_seconds = _cpu_seconds() - cpu0
        result.cut_by_time = state.issued < job.requests and not (
            job.follower and stop_event.is_set()
        )
        if job.leader:
            stop_event.set()
    return result


def child_main(index: int, job: Job, barrier: Any, stop_event: Any, results: Any) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
    try:
        result = trio.run(run_job, job, barrier, stop_event)
    except BaseException as exc:
        result = ProcResult(crashed=f"{type(exc).__name__}: {exc}"[:200])
        with contextlib.suppress(Exception):
            barrier.abort()
        if job.leader:
            stop_event.set()
    results.put((index, result))
