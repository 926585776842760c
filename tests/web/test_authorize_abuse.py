"""An anonymous flood of authorization requests (security review, defect 3).

Cookie-less ``GET /authorize`` requests with a valid ``client_id`` each store a pending
request. They are limited per client IP, and what they store lives in a bounded pool
of its own: filling it never evicts a login, browser or admin session, on memory or on
Redis, and every eviction is counted in ``authly_session_evictions_total``.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest

from authly.factory import create_app
from tests.web.admin_client import CLIENTS, AdminClient, session_handle
from tests.web.browser import (
    AUTHORIZE,
    PASSWORD,
    USER,
    Browser,
    auth_params,
    html_of,
    pkce_pair,
    web_client,
    with_web_client_and_alice,
)
from tests.web.helpers import create_user, from_ip, running_app

BOUND = 20


@pytest.fixture
async def flood_app(backend_settings: Any) -> AsyncIterator[Any]:
    async with create_app(
        backend_settings.replace(pending_requests_max=BOUND, authorize_rate_limit=1000)
    ).test_app() as test_app:
        yield await with_web_client_and_alice(test_app)


def _evictions(metrics: str, pool: str) -> float:
    found = re.search(rf'^authly_session_evictions_total{{pool="{pool}"}} (\S+)$', metrics, re.M)
    return float(found.group(1)) if found else 0.0


async def test_a_flood_of_anonymous_requests_evicts_no_session(flood_app: Any) -> None:
    # A signed-in browser (login session), and an admin CLI session.
    browser = Browser(flood_app)
    _, challenge = pkce_pair()
    consent_page = await browser.sign_in(await browser.authorize(auth_params(challenge)))
    assert "Allow access?" in await html_of(consent_page)
    admin = AdminClient(flood_app.test_client(), await session_handle(flood_app.test_client()))
    assert (await admin.get(CLIENTS)).status_code == 200

    # Five times the bound of cookie-less requests, each from a fresh "browser".
    for _ in range(5 * BOUND):
        flood = await flood_app.test_client().get(AUTHORIZE, query_string=auth_params(challenge))
        assert "Sign in" in await html_of(flood)

    # Both sessions survive: the browser goes straight to consent, the admin is in.
    again = await browser.authorize(auth_params(challenge))
    assert "Allow access?" in await html_of(again)
    assert (await admin.get(CLIENTS)).status_code == 200
    metrics = (await (await flood_app.test_client().get("/metrics")).get_data()).decode()
    assert _evictions(metrics, "authz") >= 4 * BOUND
    assert _evictions(metrics, "session") == 0


async def test_anonymous_authorize_requests_are_limited_per_ip(settings_factory: Any) -> None:
    """AUTHLY_AUTHORIZE_RATE_LIMIT per window per client IP, for browsers without a
    login session; a signed-in browser is not counted."""
    async with running_app(settings_factory(authorize_rate_limit=3)) as app:
        await _limited(app)


async def _limited(app: Any) -> None:
    await web_client(app)
    await create_user(app, USER, PASSWORD)
    _, challenge = pkce_pair()
    signed_in = Browser(app)
    await signed_in.sign_in(await signed_in.authorize(auth_params(challenge)))

    def anonymous(address: str) -> Any:
        return app.test_client().get(
            AUTHORIZE, query_string=auth_params(challenge), scope_base=from_ip(address)
        )

    for _ in range(3):
        assert (await anonymous("127.0.0.1")).status_code == 200
    refused = await anonymous("127.0.0.1")
    html = await html_of(refused, 429)
    assert "Too many sign-in requests" in html
    assert int(refused.headers["Retry-After"]) >= 1
    assert (await anonymous("127.0.0.2")).status_code == 200  # another address
    for _ in range(3):  # the signed-in browser is not limited
        assert "Allow access?" in await html_of(await signed_in.authorize(auth_params(challenge)))
