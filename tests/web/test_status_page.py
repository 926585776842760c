"""GET /status (issue 11, item 6): the operator's page, for the admin networks only."""

from __future__ import annotations

import pytest

from authly.factory import create_app
from tests.conftest import login, services_of
from tests.redis_server import requires_redis
from tests.supervisor_helpers import HANG, redis_settings, wait_all
from tests.web.helpers import from_ip


async def _status(client, address: str = "127.0.0.1"):
    return await client.get("/status", scope_base=from_ip(address))


async def test_the_page_shows_backends_traffic_and_refreshes_itself(client, settings):
    await login(client)
    await login(client, password="wrong-password")
    response = await _status(client)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert response.headers["Cache-Control"] == "no-store"
    assert "script-src" not in response.headers["Content-Security-Policy"]  # no script
    html = await response.get_data(as_text=True)
    assert '<meta http-equiv="refresh" content="2">' in html
    assert 'id="feature-rate_limit"' in html
    assert "backend-database" in html  # sessions live in the store without Redis
    assert "not configured (AUTHLY_REDIS_URL unset)" in html
    assert "allowed" in html
    assert "denied" in html
    assert "none yet" in html  # no switch without Redis


@pytest.mark.parametrize("address", ["192.0.2.10", "10.1.2.3"])
async def test_only_the_admin_networks_get_it(client, address):
    response = await _status(client, address)
    assert response.status_code == 403
    assert "not reachable from this address" in await response.get_data(as_text=True)


@requires_redis
@pytest.mark.redis
async def test_the_page_shows_a_switch_and_its_reason(tmp_path, redis_server):
    app = create_app(redis_settings(tmp_path, redis_server.url))
    async with app.test_app() as test_app:
        client = test_app.test_client()
        html = await (await _status(client)).get_data(as_text=True)
        assert '<span class="up">up</span>' in html
        assert "last PING" in html
        assert "redis://127.0.0.1" in html
        await redis_server.kill()
        await wait_all(services_of(test_app), "memory", timeout=HANG)
        html = await (await _status(client)).get_data(as_text=True)
        assert '<span class="down">down</span>' in html
        assert "health probe failed" in html or "request failed" in html
        assert 'class="backend backend-memory">memory' in html
        assert 'class="backend backend-database">database' in html
