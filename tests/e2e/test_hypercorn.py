"""`hypercorn ... authly.app` as a real process: the documented entry point."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.e2e import bugs
from tests.e2e.server import authly_env, hypercorn_argv, login, me
from tests.support.processes import ServerProcess, free_port

pytestmark = pytest.mark.e2e

Spawn = Callable[..., ServerProcess]

EXIT_BOUND = 15.0
TRIO_HINT = "hypercorn -k trio authly.app"
BAD_REDIS_URL = "redis://:hunter2secret@redis.invalid:notaport/0"


def exited(server: ServerProcess, timeout: float = EXIT_BOUND) -> int:
    code = server.wait_exit(timeout)
    if code is None:
        server.kill()
        pytest.fail(f"{server.name} did not exit by itself within {timeout}s\n{server.output()}")
    return code


def test_hypercorn_cli_trio_worker(spawn: Spawn, http: httpx.Client) -> None:
    port = free_port()
    server = spawn(port=port, argv=hypercorn_argv(port, "-k", "trio"))
    server.wait_healthy()

    response = login(http, server.base_url)
    assert response.status_code == 200, response.text
    assert me(http, server.base_url, response.json()["access_token"]).status_code == 200

    # Without open connections: hypercorn's CLI default graceful_timeout is 3 s.
    http.close()
    code, _ = server.stop(signal.SIGTERM, timeout=30.0)
    assert code == 0, server.output()
    assert "Traceback" not in server.stderr()


def test_hypercorn_asyncio_worker_refused(spawn: Spawn) -> None:
    port = free_port()
    server = spawn(port=port, argv=hypercorn_argv(port))  # default asyncio worker
    exited(server)
    stderr = server.stderr()
    assert any(line.rstrip().endswith(TRIO_HINT) for line in stderr.splitlines()), stderr
    assert "Traceback" not in stderr, stderr


def test_hypercorn_bad_config_one_line(spawn: Spawn, tmp_path: Path) -> None:
    port = free_port()
    env = authly_env(tmp_path / "authly.db", AUTHLY_REDIS_URL=BAD_REDIS_URL)
    server = spawn(port=port, env=env, argv=hypercorn_argv(port, "-k", "trio"))
    exited(server)
    stderr = server.stderr()
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert "AUTHLY_REDIS_URL" in lines[0]
    assert "hunter2secret" not in stderr
    assert "Traceback" not in stderr


@pytest.mark.xfail(strict=True, reason=bugs.HYPERCORN_WORKER_EXIT_CODE_LOST)
@pytest.mark.parametrize(
    ("options", "extra_env"),
    [
        pytest.param((), {}, id="asyncio-worker"),
        pytest.param(("-k", "trio"), {"AUTHLY_REDIS_URL": BAD_REDIS_URL}, id="bad-config"),
    ],
)
def test_hypercorn_refusal_exits_nonzero(
    spawn: Spawn, tmp_path: Path, options: tuple[str, ...], extra_env: dict[str, str]
) -> None:
    port = free_port()
    env = authly_env(tmp_path / "authly.db", **extra_env)
    server = spawn(port=port, env=env, argv=hypercorn_argv(port, *options))
    assert exited(server) != 0, server.output()
