"""Fixtures for the authorization-endpoint tests: a registered web client, its user,
and a cookie-keeping browser over the test client."""

from __future__ import annotations

from typing import Any

import pytest

from tests.web.browser import PASSWORD, USER, Browser, web_client
from tests.web.helpers import create_user


@pytest.fixture
async def alice(app: Any) -> Any:
    await web_client(app)
    return await create_user(app, USER, PASSWORD)


@pytest.fixture
def browser(app: Any) -> Browser:
    return Browser(app)
