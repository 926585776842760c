"""What end-to-end tests add to tests/support/processes.py (which starts and stops the
processes): a fast test environment with a known admin password, the hypercorn command
line, ``python -m authly ...`` run to completion, and the HTTP calls most tests make."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import httpx

from tests.support.processes import server_env

ADMIN_PASSWORD = "e2e-admin-pass-123"


def authly_env(db_path: Path, **extra: str) -> dict[str, str]:
    """The parent's environment minus any AUTHLY_* setting, plus a fast test setup."""
    fast = {
        "AUTHLY_DATABASE_URL": f"sqlite:///{db_path}",
        "AUTHLY_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "AUTHLY_PASSWORD_HASH_TIME_COST": "1",
        "AUTHLY_PASSWORD_HASH_MEMORY_KIB": "64",
        "PYTHONUNBUFFERED": "1",
    }
    return server_env(**(fast | extra))


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
