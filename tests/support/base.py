"""The ground every test process stands on: free loopback ports (never 6379, the
machine's shared Redis), spawning a process in its own session with bounded output, and
a tiny HTTP GET. Re-exported by tests/support/processes.py."""

from __future__ import annotations

import contextlib
import http.client
import shutil
import socket
import subprocess
from collections.abc import Sequence
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
SHARED_REDIS_PORT = 6379  # the machine's Redis: never ours, never touched
REDIS_SERVER = shutil.which("redis-server")
REDIS_START_SECONDS = 5.0
SERVER_START_SECONDS = 30.0
SERVER_STOP_SECONDS = 10.0


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on at ``host`` right now; never the shared Redis port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    while True:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            port = int(sock.getsockname()[1])
        if port != SHARED_REDIS_PORT:
            return port


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could listen on ``port`` now (TIME_WAIT leftovers do not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def spawn(
    argv: Sequence[str],
    out: Path | None,
    err: Path | None = None,
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in its own session with stdin closed; stdout appended to ``out``
    (None: discarded), stderr to ``err`` (None: with stdout)."""
    with contextlib.ExitStack() as files:
        stdout = files.enter_context(out.open("ab")) if out else subprocess.DEVNULL
        stderr = files.enter_context(err.open("ab")) if err else subprocess.STDOUT
        return subprocess.Popen(
            argv,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
        )


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
