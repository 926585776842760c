"""The server closes connections: raw sockets against real processes.

Each server runs under a low open-file limit (RLIMIT_NOFILE = 128), once as
``authly serve`` and once as ``hypercorn -k trio --config configs/hypercorn.toml
authly.app``. Waits are generous bounds, never timing assertions: a socket the server
does not close makes ``recv`` time out and the test fail (see
``authly.web.connection_close`` for why hypercorn 0.18 + quart-trio 0.12 used to leave
them open).
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.server import authly_env, hypercorn_argv
from tests.support.processes import ServerProcess, free_port, serve_argv

pytestmark = pytest.mark.e2e

HYPERCORN_TOML = Path(__file__).resolve().parents[2] / "configs" / "hypercorn.toml"
FD_LIMIT = 128
CONNECTIONS = 3000
CLOSE_WAIT = 10.0  # bound on each recv: the server closes right after the response
IDLE_WAIT = 20.0  # bound on the idle wait: keep_alive_timeout is 5 s in both setups

CLOSE_REQUEST = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
HTTP10_REQUEST = b"GET /health HTTP/1.0\r\n\r\n"
KEEP_ALIVE_REQUEST = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"

# Lower the limit (soft and hard) in a tiny launcher, then exec the server in its place.
LIMIT_AND_EXEC = (
    "import os, resource, sys; n = int(sys.argv[1]); "
    "resource.setrlimit(resource.RLIMIT_NOFILE, (n, n)); os.execv(sys.argv[2], sys.argv[2:])"
)


class NotClosed(AssertionError):
    """The server kept the connection open past the bound."""


def under_fd_limit(argv: list[str]) -> list[str]:
    return [sys.executable, "-c", LIMIT_AND_EXEC, str(FD_LIMIT), *argv]


def read_to_eof(port: int, request: bytes, timeout: float) -> bytes:
    """Send ``request`` on a new connection; every byte the server sends until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        received = bytearray()
        while True:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                raise NotClosed(
                    f"server sent {len(received)} bytes and kept the connection open "
                    f"for {timeout}s: {bytes(received[:200])!r}"
                ) from None
            if not chunk:
                return bytes(received)
            received += chunk


def parse_one_response(data: bytes) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of exactly one complete response with a Content-Length."""
    head, sep, body = data.partition(b"\r\n\r\n")
    assert sep, data
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    assert len(body) == int(headers["content-length"]), data
    return int(status_line.split()[1]), headers, body


def output_tail(server: ServerProcess, lines: int = 40) -> str:
    return "\n".join(server.output().splitlines()[-lines:])


def fd_limit_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            return int(line.split()[3])
    raise AssertionError(f"no open-file limit in /proc/{pid}/limits")


@pytest.fixture(scope="module", params=["serve", "hypercorn-toml"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """One server per setup for the whole module, under RLIMIT_NOFILE = 128."""
    workdir = tmp_path_factory.mktemp(request.param)
    port = free_port()
    env = authly_env(workdir / "authly.db")
    if request.param == "serve":
        argv = serve_argv(port)
    else:
        env.update(AUTHLY_PORT=str(port), AUTHLY_ISSUER=f"http://127.0.0.1:{port}")
        argv = hypercorn_argv(port, "-k", "trio", "--config", str(HYPERCORN_TOML))
    proc = ServerProcess(workdir, name=request.param, env=env, argv=under_fd_limit(argv), port=port)
    proc.start()
    try:
        proc.wait_healthy()
        yield proc
    finally:
        proc.kill()


@pytest.mark.parametrize(
    "request_bytes",
    [pytest.param(CLOSE_REQUEST, id="connection-close"), pytest.param(HTTP10_REQUEST, id="http10")],
)
def test_server_closes_after_the_response(server: ServerProcess, request_bytes: bytes) -> None:
    data = read_to_eof(server.port, request_bytes, CLOSE_WAIT)
    status, headers, _ = parse_one_response(data)
    assert status == 200, data
    assert headers.get("connection") == "close", data


def test_idle_keep_alive_connection_is_closed(server: ServerProcess) -> None:
    data = read_to_eof(server.port, KEEP_ALIVE_REQUEST, IDLE_WAIT)
    status, headers, _ = parse_one_response(data)
    assert status == 200, data
    # The response kept the connection alive: the close came from the idle timeout.
    assert "close" not in headers.get("connection", ""), data


def test_thousands_of_one_request_connections_under_low_fd_limit(server: ServerProcess) -> None:
    assert fd_limit_of(server.pid) == FD_LIMIT
    for index in range(CONNECTIONS):
        try:
            data = read_to_eof(server.port, CLOSE_REQUEST, CLOSE_WAIT)
        except (OSError, NotClosed) as exc:
            pytest.fail(f"connection {index} of {CONNECTIONS}: {exc!r}\n{output_tail(server)}")
        status, _, _ = parse_one_response(data)
        assert status == 200, f"connection {index}: {data!r}"

    with httpx.Client(timeout=10.0) as client:
        assert client.get(server.url("/health")).status_code == 200
    assert server.proc is not None
    assert server.proc.poll() is None, output_tail(server)
    output = server.output()
    assert "EMFILE" not in output
    assert "Too many open files" not in output
