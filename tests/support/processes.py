"""Processes for tests and scripts: free ports, a private redis-server, an Authly server.

The one home of process handling for the test suite (the ``redis_server`` fixture in
tests/redis_server.py, the end-to-end tests) and for scripts/ (benchmarks, chaos,
multi_instance.sh), which put the checkout's root on sys.path to import it
(docs/decisions.md, "Test-process helpers"). Every process starts in its own session
(killing its group reaches only what it started) with stdin closed and its output in
files; every wait is bounded; a free port is never 6379, the machine's shared Redis.

Command line, for scripts/multi_instance.sh (``python tests/support/processes.py ...``):

    free-port        print a free loopback port (never 6379)
    port-free PORT   exit 0 when PORT can be bound on 127.0.0.1
    redis-ping PORT  exit 0 when a Redis on 127.0.0.1:PORT answers PONG (after AUTH with
                     $REDISCLI_AUTH when that is set: the password stays off the command line)
    health PORT      exit 0 when GET /health on 127.0.0.1:PORT answers 200
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import trio

if __package__ in (None, ""):  # run as a script (scripts/multi_instance.sh): find tests/
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.support.base import (
    REDIS_SERVER,
    REDIS_START_SECONDS,
    SERVER_START_SECONDS,
    SERVER_STOP_SECONDS,
    SHARED_REDIS_PORT,
    SRC,
    free_port,
    http_get,
    port_is_free,
    spawn,
)
from tests.support.redis_process import RedisProcess, RedisTls, redis_argv, redis_ping

__all__ = [
    "REDIS_SERVER",
    "REDIS_START_SECONDS",
    "SERVER_START_SECONDS",
    "SERVER_STOP_SECONDS",
    "SHARED_REDIS_PORT",
    "SRC",
    "RedisProcess",
    "RedisTls",
    "ServerError",
    "ServerProcess",
    "free_port",
    "http_get",
    "port_is_free",
    "redis_argv",
    "redis_ping",
    "serve_argv",
    "server_env",
    "spawn",
]


# ------------------------------------------------------------------ Authly


def server_env(*, inherit_authly: bool = False, **settings: str) -> dict[str, str]:
    """The environment for a server: this one (without its AUTHLY_* variables unless
    ``inherit_authly``) plus ``settings``, with the checkout's src/ on PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if inherit_authly or not k.startswith("AUTHLY_")}
    env.update(settings)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), env.get("PYTHONPATH")]))
    return env


def serve_argv(port: int, *extra: str, host: str = "127.0.0.1") -> list[str]:
    return [sys.executable, "-m", "authly", "serve", "--host", host, "--port", str(port), *extra]


class ServerError(RuntimeError):
    """A server exited early, did not become healthy or did not stop; with its output."""


Ready = Callable[[dict[str, Any]], str | None]  # None when ready, else why not (shown)


class ServerProcess:
    """A server (by default ``python -m authly serve``) on a free port, run in ``workdir``;
    stdout and stderr go to ``workdir/NAME.stdout`` and ``.stderr``."""

    def __init__(
        self,
        workdir: Path,
        *,
        name: str = "server",
        env: dict[str, str] | None = None,
        argv: Sequence[str] | None = None,
        port: int | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.workdir = workdir
        self.name = name
        self.host = host
        self.port = port if port is not None else free_port(host)
        self.env = env if env is not None else server_env()
        self.argv = list(argv) if argv is not None else serve_argv(self.port, host=host)
        self.stdout_path = workdir / f"{name}.stdout"
        self.stderr_path = workdir / f"{name}.stderr"
        self.proc: subprocess.Popen[bytes] | None = None
        self.returncode: int | None = None

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> ServerProcess:
        """Spawn the process (does not wait for it to serve)."""
        self.proc = spawn(
            self.argv, self.stdout_path, self.stderr_path, env=self.env, cwd=self.workdir
        )
        return self

    def wait_healthy(
        self, timeout: float = SERVER_START_SECONDS, ready: Ready | None = None
    ) -> dict[str, Any]:
        """Poll GET /health until it answers 200 with a JSON body that ``ready`` accepts;
        return that body. ServerError when the process exits first or time runs out."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if (code := self.proc.poll()) is not None:
                self.returncode = code
                raise ServerError(f"{self.name} exited with {code} before serving\n{self.output()}")
            status, payload = http_get(self.host, self.port, "/health")
            last = f"HTTP {status}" if status else payload.decode(errors="replace")
            if status == 200:
                try:
                    body = dict(json.loads(payload))
                except (ValueError, TypeError):
                    last = "HTTP 200 without a JSON object"
                else:
                    why_not = ready(body) if ready is not None else None
                    if why_not is None:
                        return body
                    last = why_not
            time.sleep(0.05)
        raise ServerError(f"{self.name} not healthy within {timeout:g} s ({last})\n{self.output()}")

    async def await_healthy(self, ready: Ready | None = None) -> dict[str, Any]:
        """``wait_healthy`` from trio (in a thread; a cancelled wait abandons it)."""
        wait = functools.partial(self.wait_healthy, ready=ready)
        return await trio.to_thread.run_sync(wait, abandon_on_cancel=True)

    def wait_exit(self, timeout: float) -> int | None:
        """The exit code, or None if still running after ``timeout`` seconds."""
        assert self.proc is not None
        try:
            self.returncode = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        return self.returncode

    def stop(
        self, sig: int = signal.SIGTERM, timeout: float = SERVER_STOP_SECONDS
    ) -> tuple[int, float]:
        """Send ``sig``; (exit code, seconds to exit). ServerError (after killing the
        group) when it is still running ``timeout`` seconds later."""
        assert self.proc is not None
        started = time.monotonic()
        self.proc.send_signal(sig)
        code = self.wait_exit(timeout)
        if code is None:
            self.kill()
            name = signal.Signals(sig).name
            raise ServerError(
                f"{self.name} still running {timeout:g}s after {name}\n{self.output()}"
            )
        return code, time.monotonic() - started

    def shutdown(self) -> str:
        """``stop`` with SIGTERM for a report: how it went, in words."""
        if self.proc is None:
            return "never started"
        if self.proc.poll() is not None:
            return f"already exited (status {self.proc.returncode})"
        try:
            code, elapsed = self.stop()
        except ServerError:
            return f"did NOT stop within {SERVER_STOP_SECONDS:.0f} s of SIGTERM (killed)"
        note = f"stopped by SIGTERM in {elapsed:.2f} s"
        return note if code in (0, -signal.SIGTERM) else f"{note} (exit status {code})"

    def group_alive(self) -> bool:
        """Whether a live process of this server's group (workers too) remains, from /proc.
        Zombies do not count: an orphaned helper may be reaped late by PID 1 in a container."""
        pgid = self.pid
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):  # state, ppid, pgrp
                return True
        return False

    def kill(self) -> None:
        """SIGKILL the whole process group this server leads (idempotent)."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace") if self.stdout_path.exists() else ""

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""

    def output(self) -> str:
        name = self.name
        return f"--- {name} stdout ---\n{self.stdout()}--- {name} stderr ---\n{self.stderr()}"

    def log_lines(self) -> list[str]:
        return (self.stdout() + self.stderr()).splitlines()

    def log_problems(self) -> list[str]:
        """Lines of its output that say ERROR, CRITICAL or Traceback."""
        words = ("ERROR", "Traceback", "CRITICAL")
        return [ln for ln in self.log_lines() if any(w in ln for w in words)]

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()


def main(argv: list[str]) -> int:
    """The command line described in the module docstring."""
    match argv:
        case ["free-port"]:
            print(free_port())
            return 0
        case ["port-free", port]:
            return 0 if port_is_free(int(port)) else 1
        case ["redis-ping", port]:
            password = os.environ.get("REDISCLI_AUTH") or None
            return 0 if trio.run(redis_ping, int(port), password) else 1
        case ["health", port]:
            return 0 if http_get("127.0.0.1", int(port), "/health", timeout=1.0)[0] == 200 else 1
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
