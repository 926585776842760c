"""AUTHLY_LOG_FILE and AUTHLY_LOG_FORMAT=json on real servers: the Redis guide's
``tail -f /var/log/authly.log | grep -i redis`` finds its lines, every line is JSON,
passwords stay masked, SIGHUP reopens the file after logrotate moved it, and an unusable
file stops start-up with one line (issue 11, item 8)."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.server import authly_env, hypercorn_argv, run_cli
from tests.redis_server import requires_redis
from tests.support.processes import RedisProcess, ServerProcess, free_port, serve_argv

pytestmark = pytest.mark.e2e

Spawn = Callable[..., ServerProcess]
PASSWORD = "s3cret-log-pw"


def json_lines(path: Path) -> list[dict[str, Any]]:
    """Every line of the file, each of which must be one JSON object."""
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        entry = json.loads(line)
        assert isinstance(entry, dict), line
        assert {"time", "level", "logger", "message"} <= entry.keys(), line
        entries.append(entry)
    return entries


def grep_redis(path: Path) -> list[str]:
    """``grep -i redis`` over the file."""
    return [ln for ln in path.read_text(encoding="utf-8").splitlines() if "redis" in ln.lower()]


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_unreachable_redis_is_logged_as_json_with_the_password_masked(
    spawn: Spawn, tmp_path: Path
) -> None:
    log_file = tmp_path / "authly.log"
    env = authly_env(
        tmp_path / "authly.db",
        AUTHLY_REDIS_URL=f"redis://:{PASSWORD}@127.0.0.1:{free_port()}/0",
        AUTHLY_REDIS_CACHE="true",
        AUTHLY_REDIS_TIMEOUT="1",
        AUTHLY_LOG_FORMAT="json",
        AUTHLY_LOG_FILE=str(log_file),
    )
    server = spawn(env=env)
    server.wait_healthy()
    wait_for(lambda: any("falling back" in ln for ln in grep_redis(log_file)), "the WARNING")
    code, _ = server.stop(signal.SIGTERM)
    assert code == 0, server.output()

    entries = json_lines(log_file)
    redis = [e for e in entries if "redis" in json.dumps(e).lower()]
    assert any(
        e["level"] == "WARNING"
        and e["message"].startswith("Redis connection failed, falling back to memory")
        for e in redis
    ), entries
    assert any(e["message"].startswith("Authly serving as") for e in entries)
    assert entries[-1]["message"] == "received SIGTERM, shutting down"
    assert PASSWORD not in log_file.read_text() + server.output()
    # Nothing logged to stderr any more (only what Python itself might print).
    assert "Authly serving as" not in server.stderr()


@requires_redis
@pytest.mark.redis
async def test_the_guides_grep_finds_redis_initialized(spawn: Spawn, tmp_path: Path) -> None:
    redis = RedisProcess(password=PASSWORD)
    await redis.start()
    try:
        log_file = tmp_path / "authly.log"
        env = authly_env(
            tmp_path / "authly.db",
            AUTHLY_REDIS_URL=redis.url,
            AUTHLY_REDIS_CACHE="true",
            AUTHLY_REDIS_RATE_LIMIT="true",
            AUTHLY_LOG_FORMAT="json",
            AUTHLY_LOG_FILE=str(log_file),
        )
        server = spawn(env=env)
        await server.await_healthy()
        messages = [json.loads(ln)["message"] for ln in grep_redis(log_file)]
        for expected in (
            "Redis connection initialized successfully",
            "Using Redis rate limiting backend",
            "Using Redis caching backend",
        ):
            assert expected in messages, messages
        assert PASSWORD not in log_file.read_text()
        json_lines(log_file)
    finally:
        redis.close()


def _failed_logins(base_url: str, times: int) -> None:
    with httpx.Client(timeout=10.0) as http:
        for _ in range(times):
            http.post(
                f"{base_url}/api/v1/auth/login", json={"username": "admin", "password": "wrong-pw"}
            )


def test_sighup_reopens_the_log_file_after_logrotate_moved_it(spawn: Spawn, tmp_path: Path) -> None:
    log_file = tmp_path / "authly.log"
    rotated = tmp_path / "authly.log.1"
    env = authly_env(
        tmp_path / "authly.db", AUTHLY_LOG_FILE=str(log_file), AUTHLY_LOGIN_RATE_LIMIT="1"
    )
    server = spawn(env=env)
    server.wait_healthy()
    assert "Authly serving as" in log_file.read_text()

    log_file.rename(rotated)  # logrotate's move ...
    server.proc.send_signal(signal.SIGHUP)  # type: ignore[union-attr]  # ... then HUP
    wait_for(log_file.exists, "the reopened log file")
    _failed_logins(server.base_url, 3)  # the limited attempts log "login rate limited"
    wait_for(lambda: "login rate limited" in log_file.read_text(), "a request's line")

    code, _ = server.stop(signal.SIGTERM)
    assert code == 0, server.output()
    new = log_file.read_text()
    old = rotated.read_text()
    assert f"SIGHUP: reopened log file {log_file}" in new
    assert "received SIGTERM, shutting down" in new
    assert "Authly serving as" in old
    assert "login rate limited" not in old
    assert "SIGHUP" not in old


def test_workers_are_restarted_by_sighup_and_write_a_new_file(spawn: Spawn, tmp_path: Path) -> None:
    # With --workers, SIGHUP goes to hypercorn's parent process, which restarts the workers
    # gracefully; each new worker opens AUTHLY_LOG_FILE afresh.
    log_file = tmp_path / "authly.log"
    rotated = tmp_path / "authly.log.1"
    env = authly_env(tmp_path / "authly.db", AUTHLY_LOG_FILE=str(log_file))
    port = free_port()
    server = spawn(env=env, port=port, argv=serve_argv(port, "--workers", "2"))
    server.wait_healthy()
    wait_for(lambda: log_file.read_text().count("Authly serving as") == 2, "two workers")

    log_file.rename(rotated)
    server.proc.send_signal(signal.SIGHUP)  # type: ignore[union-attr]
    wait_for(
        lambda: log_file.exists() and log_file.read_text().count("Authly serving as") == 2,
        "two restarted workers logging to the new file",
    )
    server.wait_healthy()
    code, _ = server.stop(signal.SIGTERM)
    assert code == 0, server.output()
    assert "Traceback" not in log_file.read_text() + rotated.read_text() + server.stderr()


def test_hypercorn_cli_logs_to_the_file(spawn: Spawn, tmp_path: Path) -> None:
    log_file = tmp_path / "authly.log"
    port = free_port()
    env = authly_env(
        tmp_path / "authly.db",
        AUTHLY_PORT=str(port),
        AUTHLY_LOG_FORMAT="json",
        AUTHLY_LOG_FILE=str(log_file),
    )
    server = spawn(env=env, port=port, argv=hypercorn_argv(port, "-k", "trio"))
    server.wait_healthy()
    wait_for(log_file.exists, "the log file")
    messages = [e["message"] for e in json_lines(log_file)]
    assert any(m.startswith("Authly serving as") for m in messages), messages


@pytest.mark.parametrize(
    ("args", "where"),
    [
        pytest.param(("serve",), "missing-dir/authly.log", id="serve-missing-dir"),
        pytest.param(("serve",), ".", id="serve-directory"),
        pytest.param(("check-config",), "missing-dir/authly.log", id="check-config"),
    ],
)
def test_an_unusable_log_file_stops_start_up_with_one_line(
    tmp_path: Path, args: tuple[str, ...], where: str
) -> None:
    env = authly_env(tmp_path / "authly.db", AUTHLY_LOG_FILE=str(tmp_path / where))
    result = run_cli(args, env, tmp_path, timeout=15.0)
    assert result.returncode == 2, result
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("authly: configuration error: AUTHLY_LOG_FILE: ")
    assert not (tmp_path / "authly.db").exists()
