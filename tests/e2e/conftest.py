"""Fixtures for end-to-end tests: every process a test spawns is killed at teardown."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.server import authly_env
from tests.support.processes import ServerProcess


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """Start a ServerProcess in ``tmp_path`` (not waiting for health; by default
    ``authly serve`` with ``authly_env``); reaped at teardown."""
    started: list[ServerProcess] = []

    def factory(**kwargs: Any) -> ServerProcess:
        kwargs.setdefault("name", f"server{len(started)}")
        kwargs.setdefault("env", authly_env(tmp_path / "authly.db"))
        server = ServerProcess(tmp_path, **kwargs)
        started.append(server)
        return server.start()

    try:
        yield factory
    finally:
        for server in started:
            server.kill()


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10.0) as client:
        yield client


@pytest.fixture
def browser() -> Iterator[httpx.Client]:
    """The browser of the Authlib flows: a client with a cookie jar that stops at every
    redirect (the pages' forms are submitted by tests/e2e/test_authlib_client.py)."""
    with httpx.Client(timeout=10.0, follow_redirects=False) as client:
        yield client
