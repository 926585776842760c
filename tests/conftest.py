"""Shared fixtures: settings factory, app (real lifespan), test client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from authly.config import Settings
from authly.factory import create_app
from authly.services import EXTENSION_KEY, Services

pytest_plugins = ["tests.redis_server", "tests.postgres_server"]

ADMIN_PASSWORD = "admin-pass-123"
ISSUER = "http://authly.test"

# Cheap argon2id parameters keep the suite fast; production defaults live in config.py.
FAST_HASH = {"password_hash_time_cost": 1, "password_hash_memory_kib": 64}


def make_settings(tmp_path: Path, database_url: str | None = None, **overrides: Any) -> Settings:
    base = Settings(
        database_url=database_url or f"sqlite:///{tmp_path / 'authly.db'}",
        issuer=ISSUER,
        admin_password=ADMIN_PASSWORD,
        **FAST_HASH,
    )
    return base.replace(**overrides)


@pytest.fixture
def settings_factory(tmp_path: Path, database_url: str) -> Callable[..., Settings]:
    """Settings on the test's store (``database_url``: SQLite unless the test is marked
    ``both_stores``, then SQLite and PostgreSQL)."""
    return lambda **overrides: make_settings(
        tmp_path, **{"database_url": database_url, **overrides}
    )


@pytest.fixture
def settings(settings_factory: Callable[..., Settings]) -> Settings:
    return settings_factory()


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Any]:
    application = create_app(settings)
    async with application.test_app() as test_app:
        yield test_app


@pytest.fixture
def client(app: Any) -> Any:
    return app.test_client()


def services_of(test_app: Any) -> Services:
    return test_app.app.extensions[EXTENSION_KEY]  # type: ignore[no-any-return]


async def login(
    client: Any, username: str = "admin", password: str = ADMIN_PASSWORD, **extra: Any
) -> Any:
    return await client.post(
        "/api/v1/auth/login", json={"username": username, "password": password}, **extra
    )
