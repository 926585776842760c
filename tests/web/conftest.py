"""Fixtures for the authorization-endpoint tests: a registered web client, its user,
and a cookie-keeping browser over the test client; apps with dynamic client
registration open, or behind initial access tokens."""

from __future__ import annotations

from typing import Any

import pytest

from authly.config import Settings
from tests.redis_server import RedisServer, requires_redis
from tests.supervisor_helpers import steady_redis_settings
from tests.web.browser import PASSWORD, USER, Browser, web_client
from tests.web.helpers import create_user, running_app

BACKENDS = [
    pytest.param("memory", id="memory"),
    pytest.param("redis", id="redis", marks=[pytest.mark.redis, requires_redis]),
]


@pytest.fixture
async def alice(app: Any) -> Any:
    await web_client(app)
    return await create_user(app, USER, PASSWORD)


@pytest.fixture
def browser(app: Any) -> Browser:
    return Browser(app)


@pytest.fixture
async def open_app(settings_factory: Any) -> Any:
    async with running_app(settings_factory(registration="open")) as app:
        yield app


@pytest.fixture
async def token_app(settings_factory: Any) -> Any:
    async with running_app(settings_factory(registration="token")) as app:
        yield app


@pytest.fixture(params=BACKENDS)
async def backend_settings(request: Any, settings: Settings, tmp_path: Any, nursery: Any) -> Any:
    """The test settings with every backend on memory, or on a real redis-server (with
    deadlines a loaded machine cannot miss: these tests are not about outages)."""
    if request.param == "memory":
        return settings
    server = RedisServer(nursery)
    await server.start()
    return steady_redis_settings(tmp_path, server.url)
