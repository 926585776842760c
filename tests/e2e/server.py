"""Real Authly processes for end-to-end tests.

``ServerProcess`` starts a command (``python -m authly serve`` by default) on a free
loopback port with a test environment, waits until ``GET /health`` answers 200, and
stops it with a signal, measuring how long the exit took. Output goes to files under
the test's ``tmp_path`` so a failure can show it. Every wait is bounded, and each
process runs in its own session so ``kill()`` can reap a whole process group (worker
processes included) without touching anything the test did not start.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

ADMIN_PASSWORD = "e2e-admin-pass-123"
START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0


def free_port() -> int:
    """A port that was free on 127.0.0.1 a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int) -> bool:
    """Whether a server could listen on ``port`` now (TIME_WAIT leftovers do not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def authly_env(db_path: Path, **extra: str) -> dict[str, str]:
    """The parent's environment minus any AUTHLY_* setting, plus a fast test setup."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHLY_")}
    env.update(
        AUTHLY_DATABASE_URL=f"sqlite:///{db_path}",
        AUTHLY_ADMIN_PASSWORD=ADMIN_PASSWORD,
        AUTHLY_PASSWORD_HASH_TIME_COST="1",
        AUTHLY_PASSWORD_HASH_MEMORY_KIB="64",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def serve_argv(port: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "authly", "serve", "--port", str(port), *extra]


def hypercorn_argv(port: int, *options: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "hypercorn",
        *options,
        "--bind",
        f"127.0.0.1:{port}",
        "authly.app",
    ]


def run_cli(
    args: Sequence[str],
    env: dict[str, str],
    cwd: Path,
    *,
    stdin: str | None = None,
    timeout: float = 20.0,
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m authly ARGS`` to completion (bounded)."""
    return subprocess.run(
        [sys.executable, "-m", "authly", *args],
        env=env,
        cwd=cwd,
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class ServerExitedEarly(RuntimeError):
    """The process ended before answering /health."""


class ServerProcess:
    def __init__(
        self,
        workdir: Path,
        *,
        name: str = "server",
        env: dict[str, str] | None = None,
        argv: Sequence[str] | None = None,
        port: int | None = None,
    ) -> None:
        self.workdir = workdir
        self.name = name
        self.port = port if port is not None else free_port()
        self.env = env if env is not None else authly_env(workdir / "authly.db")
        self.argv = list(argv) if argv is not None else serve_argv(self.port)
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.stdout_path = workdir / f"{name}.stdout"
        self.stderr_path = workdir / f"{name}.stderr"
        self.proc: subprocess.Popen[bytes] | None = None
        self.returncode: int | None = None

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> ServerProcess:
        """Spawn the process (does not wait for it to serve)."""
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.proc = subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def wait_healthy(self, timeout: float = START_TIMEOUT) -> None:
        """Poll GET /health until 200; fail fast if the process exits first."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        last_error: object = None
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                code = self.proc.poll()
                if code is not None:
                    self.returncode = code
                    raise ServerExitedEarly(
                        f"{self.name} exited with {code} before serving\n{self.output()}"
                    )
                try:
                    response = client.get(self.url("/health"))
                except httpx.TransportError as exc:
                    last_error = exc
                else:
                    if response.status_code == 200:
                        return
                    last_error = f"/health answered {response.status_code}"
                time.sleep(0.05)
        raise TimeoutError(
            f"{self.name} not healthy within {timeout}s ({last_error!r})\n{self.output()}"
        )

    def wait_exit(self, timeout: float) -> int | None:
        """The exit code, or None if still running after ``timeout`` seconds."""
        assert self.proc is not None
        try:
            self.returncode = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        return self.returncode

    def stop(self, sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT) -> tuple[int, float]:
        """Send ``sig`` to the main process; return (exit code, seconds to exit).

        Raises AssertionError (after killing the group) if it does not exit in time.
        """
        assert self.proc is not None
        started = time.monotonic()
        self.proc.send_signal(sig)
        code = self.wait_exit(timeout)
        elapsed = time.monotonic() - started
        if code is None:
            self.kill()
            raise AssertionError(
                f"{self.name} still running {timeout}s after {signal.Signals(sig).name}\n"
                f"{self.output()}"
            )
        return code, elapsed

    def group_alive(self) -> bool:
        """Whether a live process of this server's group (workers too) remains.

        Zombies do not count: a helper orphaned at exit (multiprocessing's resource
        tracker) is reparented to PID 1, which may reap it late in a container.
        """
        assert self.proc is not None
        pgid = self.proc.pid
        proc_root = Path("/proc")
        if not proc_root.is_dir():
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return False
            return True
        for entry in proc_root.iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # Fields after "(comm)": state, ppid, pgrp, ...
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
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

    # -- helpers -----------------------------------------------------------------------

    def url(self, path: str) -> str:
        return self.base_url + path

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace") if self.stdout_path.exists() else ""

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""

    def output(self) -> str:
        name = self.name
        return f"--- {name} stdout ---\n{self.stdout()}--- {name} stderr ---\n{self.stderr()}"

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()


def login(
    client: httpx.Client,
    base_url: str,
    username: str = "admin",
    password: str = ADMIN_PASSWORD,
) -> httpx.Response:
    return client.post(
        base_url + "/api/v1/auth/login", json={"username": username, "password": password}
    )


def refresh(client: httpx.Client, base_url: str, refresh_token: str) -> httpx.Response:
    return client.post(
        base_url + "/api/v1/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh_token},
    )


def me(client: httpx.Client, base_url: str, access_token: str) -> httpx.Response:
    return client.get(
        base_url + "/api/v1/users/me", headers={"Authorization": f"Bearer {access_token}"}
    )
