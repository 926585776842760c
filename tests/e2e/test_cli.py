"""The `authly` command line as real processes: config errors, check-config, admin."""

from __future__ import annotations

import secrets
import socket
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.e2e.server import authly_env, login, me, run_cli
from tests.support.processes import ServerProcess, free_port, serve_argv

pytestmark = pytest.mark.e2e

Spawn = Callable[..., ServerProcess]


@pytest.mark.parametrize(
    ("args", "variable", "value"),
    [
        pytest.param(("serve",), "AUTHLY_REDIS_POOL_SIZE", "abc", id="serve-pool-size"),
        pytest.param(("check-config",), "AUTHLY_PORT", "notaport", id="check-config-port"),
    ],
)
def test_bad_config_exits_2_one_line(
    tmp_path: Path, args: tuple[str, ...], variable: str, value: str
) -> None:
    env = authly_env(tmp_path / "authly.db", **{variable: value})
    result = run_cli(args, env, tmp_path, timeout=15.0)
    assert result.returncode == 2, result
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.endswith("\n")
    assert variable in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "authly.db").exists(), "a bad config must stop before the store"


def test_check_config_masks_secrets(tmp_path: Path) -> None:
    env = authly_env(
        tmp_path / "authly.db",
        AUTHLY_ADMIN_PASSWORD="supersecret123",
        AUTHLY_REDIS_URL="redis://user:p%40ss@h:6379/0",
    )
    result = run_cli(("check-config",), env, tmp_path)
    assert result.returncode == 0, result
    lines = result.stdout.splitlines()
    assert "AUTHLY_ADMIN_PASSWORD=***" in lines
    assert "AUTHLY_REDIS_URL=redis://user:***@h:6379/0" in lines
    everything = result.stdout + result.stderr
    for secret in ("supersecret123", "p%40ss", "p@ss"):
        assert secret not in everything


def test_serve_never_prints_redis_password(spawn: Spawn, tmp_path: Path) -> None:
    # URL set but every feature flag off: Authly must not need Redis, and must not
    # show the password in its logs or /health (DESIGN §3).
    password = secrets.token_hex(8)
    env = authly_env(
        tmp_path / "authly.db", AUTHLY_REDIS_URL=f"redis://:{password}@127.0.0.1:{free_port()}/0"
    )
    server = spawn(env=env)
    server.wait_healthy()
    health = httpx.get(server.url("/health"), timeout=5.0)
    assert health.status_code == 200
    assert password not in health.text
    server.stop()
    assert password not in server.stdout() + server.stderr()


def test_admin_user_create_cli(spawn: Spawn, tmp_path: Path, http: httpx.Client) -> None:
    env = authly_env(tmp_path / "authly.db")
    del env["AUTHLY_ADMIN_PASSWORD"]  # no bootstrap admin: Bob is the only user
    args = ("admin", "user", "create", "--username", "Bob", "--password-stdin")
    created = run_cli((*args, "--email", "b@x.io"), env, tmp_path, stdin="bob-password-1\n")
    assert created.returncode == 0, created
    assert "created user Bob" in created.stdout
    assert "bob-password-1" not in created.stdout + created.stderr

    # Usernames are unique case-insensitively; the first account is left untouched.
    duplicate = run_cli(
        ("admin", "user", "create", "--username", "bob", "--password-stdin"),
        env,
        tmp_path,
        stdin="other-password-2\n",
    )
    assert duplicate.returncode == 1, duplicate

    port = free_port()
    server = spawn(port=port, env=env, argv=serve_argv(port))
    server.wait_healthy()
    response = login(http, server.base_url, "bob", "bob-password-1")
    assert response.status_code == 200, response.text
    profile = me(http, server.base_url, response.json()["access_token"])
    assert profile.status_code == 200, profile.text
    assert profile.json()["username"] == "Bob"
    assert profile.json()["email"] == "b@x.io"
    refused = login(http, server.base_url, "bob", "other-password-2")
    assert refused.status_code == 401, refused.text


def test_admin_user_create_duplicate_is_one_clear_line(tmp_path: Path) -> None:
    env = authly_env(tmp_path / "authly.db")
    args = ("admin", "user", "create", "--password-stdin", "--username")
    assert run_cli((*args, "Bob"), env, tmp_path, stdin="bob-password-1\n").returncode == 0
    duplicate = run_cli((*args, "bob"), env, tmp_path, stdin="bob-password-1\n")
    assert duplicate.returncode == 1, duplicate
    assert "Traceback" not in duplicate.stderr, duplicate.stderr
    lines = duplicate.stderr.splitlines()
    assert len(lines) == 1, duplicate.stderr
    assert "already exists" in lines[0]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_serve_port_in_use_one_line(spawn: Spawn, tmp_path: Path, workers: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = spawn(port=port, argv=serve_argv(port, "--workers", workers))
        code = server.wait_exit(15.0)
    if code is None:
        server.kill()
        pytest.fail(f"serve on a taken port did not exit\n{server.output()}")
    stderr = server.stderr()
    assert code != 0
    assert "Traceback" not in stderr, stderr
    assert f"127.0.0.1:{port}" in stderr
    assert len([line for line in stderr.splitlines() if "authly:" in line]) == 1, stderr


def test_serve_port_flag_overrides_env(spawn: Spawn, tmp_path: Path) -> None:
    # Settings.from_env documents that CLI flags win; a flag replaces a bad env value.
    port = free_port()
    env = authly_env(tmp_path / "authly.db", AUTHLY_PORT="notaport")
    server = spawn(port=port, env=env, argv=serve_argv(port))
    server.wait_healthy()
    code, _ = server.stop()
    assert code == 0, server.output()
