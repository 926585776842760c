"""Helpers shared by the scripts in this directory and by tests/redis_server.py.

Not a benchmark itself. The Python scripts import it (``python scripts/bench_core.py`` finds
it next to the script); the tests import it as ``scripts.benchlib``. ``multi_instance.sh``
runs its small command line:

    python scripts/benchlib.py free-port          print a free loopback port (never 6379)
    python scripts/benchlib.py port-free PORT     exit 0 when PORT can be bound on 127.0.0.1
    python scripts/benchlib.py redis-ping PORT    exit 0 when a Redis on PORT answers PONG
    python scripts/benchlib.py health PORT        exit 0 when GET /health on PORT answers 200
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.client
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import trio

SHARED_REDIS_PORT = 6379  # the machine's Redis: never ours, never touched
SRC = Path(__file__).resolve().parent.parent / "src"
SERVER_START_SECONDS = 60.0
SERVER_STOP_SECONDS = 10.0
REDIS_START_SECONDS = 5.0


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on at ``host`` right now; never the shared Redis port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    while True:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            port = int(sock.getsockname()[1])
        if port != SHARED_REDIS_PORT:
            return port


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def int_list(maximum: int | None = None) -> Callable[[str], list[int]]:
    """An argparse type: comma-separated whole numbers, each at least 1 (and at most
    ``maximum``)."""

    def parse(text: str) -> list[int]:
        try:
            values = [int(p) for p in text.split(",") if p.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError("expected comma-separated whole numbers") from None
        if not values or any(v < 1 or (maximum is not None and v > maximum) for v in values):
            bounds = ">= 1" if maximum is None else f"in 1..{maximum}"
            raise argparse.ArgumentTypeError(f"expected whole numbers {bounds}")
        return values

    return parse


def machine() -> dict[str, str]:
    """What a benchmark header says about the machine: cores, CPU, OS, Python, load."""
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    try:
        nproc = len(os.sched_getaffinity(0))
    except AttributeError:
        nproc = os.cpu_count() or 0
    load = "?"
    with contextlib.suppress(OSError):
        load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return {
        "nproc": str(nproc),
        "cpu": model,
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
        "load": load,
    }


def spawn(
    argv: Sequence[str], log_path: Path, env: dict[str, str] | None = None, mode: str = "wb"
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in its own session (a SIGKILL to the group reaches only its
    processes), stdin closed, stdout and stderr into ``log_path``."""
    with log_path.open(mode) as log:
        return subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


# ------------------------------------------------------------------ Redis


def redis_argv(binary: str, port: int, password: str | None = None) -> list[str]:
    """redis-server on 127.0.0.1:port without persistence (nothing written to disk)."""
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1"]
    argv += ["--save", "", "--appendonly", "no", "--loglevel", "warning"]
    if password:
        argv += ["--requirepass", password]
    return argv


async def redis_ping(port: int, password: str | None = None) -> bool:
    """True when a Redis on 127.0.0.1:port answers PING (after AUTH when a password is
    given) within 0.5 s."""
    try:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
    except OSError:
        return False
    commands = [f"AUTH {password}", "PING"] if password else ["PING"]
    async with stream:
        with trio.move_on_after(0.5):
            await stream.send_all("".join(f"{c}\r\n" for c in commands).encode())
            data = b""
            while data.count(b"\r\n") < len(commands):
                chunk = await stream.receive_some(64)
                if not chunk:
                    return False
                data += chunk
            return data.split(b"\r\n")[len(commands) - 1].startswith(b"+PONG")
    return False


class RedisServerProcess:
    """A private redis-server on a free loopback port (never 6379) that can be killed,
    paused, resumed and started again on the same port; output goes to workdir/redis.log."""

    def __init__(self, workdir: Path, prog: str) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise SystemExit(f"{prog}: redis-server not found on PATH")
        self.binary = binary
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.log_path = workdir / "redis.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def version(self) -> str:
        out = subprocess.run(
            [self.binary, "--version"], capture_output=True, text=True, check=False
        )
        words = [w[2:] for w in out.stdout.split() if w.startswith("v=")]
        return words[-1] if words else "?"

    async def start(self) -> None:
        """Start it and wait until it answers PING; RuntimeError when it does not."""
        self.proc = spawn(redis_argv(self.binary, self.port), self.log_path, mode="ab")
        with trio.move_on_after(REDIS_START_SECONDS):
            while not await redis_ping(self.port):
                if self.proc.poll() is not None:
                    raise RuntimeError(f"redis-server exited with status {self.proc.returncode}")
                await trio.sleep(0.01)
            return
        raise RuntimeError(f"redis-server did not answer PING within {REDIS_START_SECONDS:g} s")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()  # SIGKILL works on a stopped process too
            self.proc.wait(5)

    def pause(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)

    def stop(self) -> None:
        self.resume()
        self.kill()


# ------------------------------------------------------------------ Authly


class ServerError(RuntimeError):
    """The Authly server exited or did not become healthy; the message has its log tail."""


def authly_env(**settings: str) -> dict[str, str]:
    """The environment for a server: this one without its AUTHLY_* variables, plus
    ``settings``, with the checkout's src/ on PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHLY_")}
    env.update(settings)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), env.get("PYTHONPATH")]))
    return env


def http_get(host: str, port: int, path: str, timeout: float = 2.0) -> tuple[int, bytes]:
    """(status, body) of a plain GET; (0, the error text) when nothing answers."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    except (OSError, http.client.HTTPException) as exc:
        return 0, str(exc).encode()
    finally:
        conn.close()


Ready = Callable[[dict[str, Any]], str | None]  # None when ready, else why not (shown)


class AuthlyServer:
    """An Authly server subprocess (by default ``python -m authly serve``) on a free port,
    in its own session, with an admin account; output goes to ``log_path``."""

    def __init__(self, log_path: Path, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = free_port(host)
        self.username = "admin"
        self.password = secrets.token_urlsafe(18)
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def serve_command(self) -> list[str]:
        argv = [sys.executable, "-m", "authly", "serve", "--host", self.host]
        return [*argv, "--port", str(self.port)]

    def launch(self, argv: Sequence[str], env: dict[str, str]) -> None:
        self.proc = spawn(argv, self.log_path, env)

    def wait_healthy(
        self, ready: Ready | None = None, timeout: float = SERVER_START_SECONDS
    ) -> dict[str, Any]:
        """Poll GET /health until it answers 200 with a JSON body that ``ready`` accepts;
        return that body. ServerError when the server exits or time runs out."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerError(
                    f"authly exited (status {self.proc.returncode}) before it was healthy:\n"
                    f"{self.log_tail()}"
                )
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
            time.sleep(0.1)
        raise ServerError(f"authly did not become healthy ({last}):\n{self.log_tail()}")

    async def await_healthy(self, ready: Ready | None = None) -> dict[str, Any]:
        """``wait_healthy`` from trio (in a thread; a cancelled wait abandons it)."""
        wait = functools.partial(self.wait_healthy, ready)
        return await trio.to_thread.run_sync(wait, abandon_on_cancel=True)

    def stop(self) -> str:
        """SIGTERM, then after SERVER_STOP_SECONDS SIGKILL to its session; says how it went."""
        if self.proc is None:
            return "never started"
        if self.proc.poll() is not None:
            return "already exited"
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(SERVER_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)  # its own session: only its processes
            self.proc.wait()
            return f"did NOT stop within {SERVER_STOP_SECONDS:.0f} s of SIGTERM (killed)"
        return f"stopped by SIGTERM in {time.monotonic() - started:.2f} s"

    def log_lines(self) -> list[str]:
        try:
            return self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return []

    def log_tail(self, n: int = 30) -> str:
        return "\n".join(self.log_lines()[-n:]) or "(no log)"

    def log_problems(self) -> list[str]:
        words = ("ERROR", "Traceback", "CRITICAL")
        return [ln for ln in self.log_lines() if any(w in ln for w in words)]


# ------------------------------------------------------------------ command line


def main(argv: list[str]) -> int:
    """The command line described in the module docstring (for multi_instance.sh)."""
    match argv:
        case ["free-port"]:
            print(free_port())
            return 0
        case ["port-free", port]:
            with socket.socket() as sock:
                try:
                    sock.bind(("127.0.0.1", int(port)))
                except OSError:
                    return 1
            return 0
        case ["redis-ping", port]:
            return 0 if trio.run(redis_ping, int(port)) else 1
        case ["health", port]:
            return 0 if http_get("127.0.0.1", int(port), "/health", timeout=1.0)[0] == 200 else 1
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
