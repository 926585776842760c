"""The cells of scripts/bench_registration.py: what each one sends, how its load runs,
what the server's /metrics and /proc say about it, and the initial access token the
registrations are gated by (made and read back with the real admin CLI).

A cell is one kind of request at one concurrency: ``register_public`` and
``register_confidential`` (POST /api/v1/oauth/register with the initial access token as
Bearer and the JSON bodies of ``BODIES``), and the references on the same server:
``metadata`` (GET /.well-known/oauth-authorization-server, RFC 8414) and
``client_credentials`` (POST /api/v1/oauth/token for bench-svc with HTTP Basic, as
bench_dpop.py). A cell ends after ``requests`` requests or ``max_seconds``, whichever
comes first; only answers with the expected status and content count.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import trio
from tests.support.processes import server_env

from benchkit.core_requests import FORM_TYPE, JSON_TYPE, TOKEN_PATH
from benchkit.core_server import machine_busy_seconds
from benchkit.httpclient import RawClient, Target

REGISTER_PATH = "/api/v1/oauth/register"
METADATA_PATH = "/.well-known/oauth-authorization-server"
METRICS_PATH = "/metrics"

# The registration bodies (RFC 7591 §2), sent as they are for every registration.
BODIES: dict[str, dict[str, Any]] = {
    "register_public": {
        "client_name": "Bench public app",
        "redirect_uris": ["https://app.example.com/callback"],
        "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "scope": "openid profile",
    },
    "register_confidential": {
        "client_name": "Bench confidential app",
        "redirect_uris": ["https://service.example.com/callback"],
        "token_endpoint_auth_method": "client_secret_basic",
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "scope": "openid profile",
    },
}
KINDS = ("metadata", "client_credentials", "register_public", "register_confidential")
CC_BODY = urlencode({"grant_type": "client_credentials"}).encode()


class Unexpected(Exception):
    """An answer that does not count; the message is its error kind."""


def check_registration(kind: str) -> Callable[[int, bytes], None]:
    confidential = kind == "register_confidential"

    def check(status: int, body: bytes) -> None:
        if status != 201:
            raise Unexpected(f"HTTP {status} {_error(body)}".strip())
        doc = json.loads(body)
        if not doc.get("client_id") or not doc.get("registration_access_token"):
            raise Unexpected("201 without client_id or registration_access_token")
        if confidential != bool(doc.get("client_secret")):
            raise Unexpected("201 with a wrong client_secret presence")

    return check


def check_status(status_wanted: int, marker: bytes) -> Callable[[int, bytes], None]:
    def check(status: int, body: bytes) -> None:
        if status != status_wanted or marker not in body:
            raise Unexpected(f"HTTP {status} {_error(body)}".strip())

    return check


def _error(body: bytes) -> str:
    try:
        return str(json.loads(body).get("error", ""))
    except (ValueError, AttributeError):
        return ""


@dataclass(frozen=True)
class Request:
    """What every request of a cell sends, and how its answer is checked."""

    method: str
    path: str
    body: bytes
    content_type: str | None
    headers: tuple[tuple[str, str], ...]
    check: Callable[[int, bytes], None]


def request_of(kind: str, initial_token: str, basic: tuple[str, str]) -> Request:
    if kind == "metadata":
        return Request("GET", METADATA_PATH, b"", None, (), check_status(200, b'"issuer"'))
    if kind == "client_credentials":
        check = check_status(200, b'"access_token"')
        return Request("POST", TOKEN_PATH, CC_BODY, FORM_TYPE, (basic,), check)
    body = json.dumps(BODIES[kind]).encode()
    auth = ("Authorization", f"Bearer {initial_token}")
    return Request("POST", REGISTER_PATH, body, JSON_TYPE, (auth,), check_registration(kind))


@dataclass
class Result:
    round: int
    kind: str
    concurrency: int
    ok: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0
    stopped_by_time: bool = False
    server_cpu: float | None = None
    main_thread_cpu: float | None = None  # the server's event loop(s)
    other_threads_cpu: float | None = None  # its worker threads (the store's)
    store_cpu: float | None = None  # PostgreSQL's processes (None on SQLite)
    client_cpu: float = 0.0
    other_cpu: float | None = None
    store_calls: float | None = None  # store calls (authly_store_query_duration_seconds)
    store_seconds: float | None = None  # their summed duration, queueing included

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def per_ok(self, value: float | None) -> float | None:
        return None if value is None or not self.ok else value / self.ok

    def share(self, value: float | None) -> float | None:
        """CPU seconds as a share of one core over the cell."""
        return None if value is None or not self.seconds else value / self.seconds

    def add_error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1


_METRIC = re.compile(r"^authly_store_query_duration_seconds_(sum|count)\{[^}]*\} (\S+)$", re.M)


async def store_totals(target: Target) -> tuple[float, float] | None:
    """(calls, seconds) of the server's store so far, from /metrics (None if absent)."""
    client = RawClient(target)
    try:
        status, body = await client.request("GET", METRICS_PATH)
    finally:
        await client.aclose()
    if status != 200:
        return None
    found = dict.fromkeys(("sum", "count"), 0.0)
    seen = False
    for name, value in _METRIC.findall(body.decode("utf-8", "replace")):
        found[name] += float(value)
        seen = True
    return (found["count"], found["sum"]) if seen else None


def main_thread_cpu(root: int) -> float | None:
    """utime + stime (s) of the main threads of ``root`` and its descendants, from
    /proc/PID/task/PID/stat: a server process's main thread runs its event loop. The
    process's own total (/proc/PID/stat) also counts its other threads, exited ones
    included, so those are the difference (the store's thread or pool threads)."""
    tick = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = Path(entry.path, "stat").read_text()
                parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    if root not in parents:
        return None
    tree = {root}
    while grown := {p for p, pp in parents.items() if pp in tree and p not in tree}:
        tree |= grown
    total = 0.0
    for pid in tree:
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{pid}/task/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


class Meter:
    """CPU of the server (and the store's processes), of this process and of the whole
    machine, and the server's store totals, between ``start`` and ``stop``."""

    def __init__(
        self,
        server_pid: int,
        server_cpu: Callable[[], float | None],
        store_cpu: Callable[[], float | None],
        target: Target,
    ) -> None:
        self._server_pid = server_pid
        self._server_cpu = server_cpu
        self._store_cpu = store_cpu
        self._target = target
        self._begin: dict[str, Any] = {}

    def _sample(self) -> dict[str, Any]:
        return {
            "server": self._server_cpu(),
            "main": main_thread_cpu(self._server_pid),
            "store": self._store_cpu(),
            "client": time.process_time(),
            "machine": machine_busy_seconds(),
        }

    async def start(self) -> None:
        self._begin = {"totals": await store_totals(self._target)}
        self._begin |= self._sample()

    async def stop(self, result: Result) -> None:
        end = self._sample()
        totals = await store_totals(self._target)
        b = self._begin

        def delta(name: str) -> float | None:
            if end[name] is None or b[name] is None:
                return None
            return float(end[name] - b[name])

        result.server_cpu = delta("server")
        result.store_cpu = delta("store")
        result.main_thread_cpu = delta("main")
        if result.main_thread_cpu is not None and result.server_cpu is not None:
            result.other_threads_cpu = max(0.0, result.server_cpu - result.main_thread_cpu)
        result.client_cpu = delta("client") or 0.0
        machine = delta("machine")
        if machine is not None and result.server_cpu is not None:
            mine = result.server_cpu + result.client_cpu + (result.store_cpu or 0.0)
            result.other_cpu = max(0.0, machine - mine)
        if totals is not None and b["totals"] is not None:
            result.store_calls = totals[0] - b["totals"][0]
            result.store_seconds = totals[1] - b["totals"][1]


async def run_cell(
    target: Target,
    requests_of: list[Request],
    result: Result,
    requests: int,
    max_seconds: float,
    timeout: float,
    meter: Meter,
) -> Result:
    """``requests`` requests (or ``max_seconds``) on ``result.concurrency`` keep-alive
    connections, opened (one GET /health/live each) before the clock starts; connection
    ``i`` sends ``requests_of[i % len(requests_of)]`` (one initial access token each)."""
    clients = [RawClient(target) for _ in range(result.concurrency)]
    for client in clients:
        await client.request("GET", "/health/live")
    issued = 0
    await meter.start()
    started = time.perf_counter()
    deadline = trio.current_time() + max_seconds

    async def worker(client: RawClient, request: Request) -> None:
        nonlocal issued
        while issued < requests:
            if trio.current_time() >= deadline:
                result.stopped_by_time = True
                return
            issued += 1
            t0 = time.perf_counter()
            try:
                with trio.fail_after(timeout):
                    status, body = await client.request(
                        request.method,
                        request.path,
                        request.body,
                        request.content_type,
                        request.headers,
                    )
                request.check(status, body)
            except Unexpected as exc:
                result.add_error(str(exc))
                continue
            except (OSError, ValueError, trio.TooSlowError) as exc:
                result.add_error(type(exc).__name__)
                client.drop()
                continue
            result.latencies.append(time.perf_counter() - t0)
            result.ok += 1

    async with trio.open_nursery() as nursery:
        for index, client in enumerate(clients):
            nursery.start_soon(worker, client, requests_of[index % len(requests_of)])
    result.seconds = time.perf_counter() - started
    await meter.stop(result)
    for client in clients:
        await client.aclose()
    return result


def secrets_cost(n: int = 20_000) -> float:
    """Seconds, in this process, for what a registration computes besides its store
    transaction and HTTP: a client_id, a client secret and its SHA-256, a registration
    access token and its SHA-256, and the SHA-256 of the initial access token (the
    functions oauth/dynamic_registration.py and oauth/initial_tokens.py call)."""
    from authly.oauth.clients import hash_secret, new_client_secret
    from authly.oauth.initial_tokens import hash_token
    from authly.oauth.registration import new_client_id

    initial = "init_" + secrets.token_urlsafe(32)
    started = time.perf_counter()
    for _ in range(n):
        new_client_id()
        new_client_secret()
        hash_secret("reg_" + secrets.token_urlsafe(32))
        hash_token(initial)
    return (time.perf_counter() - started) / n


# --- the initial access token, through the admin CLI ----------------------------------


class AdminCli:
    """``python -m authly admin ...`` against one server, with its session file in a
    directory of its own (XDG_CONFIG_HOME), never the user's."""

    def __init__(self, url: str, config_dir: Path) -> None:
        config_dir.mkdir(mode=0o700, exist_ok=True)
        self.env = server_env(AUTHLY_URL=url, XDG_CONFIG_HOME=str(config_dir))
        self.commands: list[str] = []

    def run(self, *args: str, stdin: str | None = None) -> str:
        argv = [sys.executable, "-m", "authly", "admin", *args]
        self.commands.append("authly admin " + " ".join(args))
        done = subprocess.run(
            argv, input=stdin, env=self.env, capture_output=True, text=True, timeout=60
        )
        if done.returncode != 0:
            raise SystemExit(f"bench: authly admin {args[0]} failed: {done.stderr.strip()}")
        return done.stdout

    def login(self, username: str, password: str) -> None:
        self.run("login", "--username", username, "--password-stdin", stdin=password + "\n")

    def create_token(self, max_uses: int) -> dict[str, Any]:
        out = self.run(
            "initial-token",
            "create",
            "--description",
            "bench_registration",
            "--max-uses",
            str(max_uses),
            "--json",
        )
        return dict(json.loads(out))

    def uses(self, token_ids: list[str]) -> int | None:
        """The uses ``initial-token list`` shows for these tokens, summed (None when one
        is missing)."""
        found = {t.get("id"): t for t in json.loads(self.run("initial-token", "list", "--json"))}
        if any(i not in found for i in token_ids):
            return None
        return sum(int(found[i].get("uses", 0)) for i in token_ids)
