"""/health/live and /health/ready, the probes for orchestrators: liveness never touches
the store or Redis; readiness follows start-up and the store, never Redis."""

from __future__ import annotations

import pytest
import trio

from authly.factory import create_app
from tests.conftest import services_of
from tests.supervisor_helpers import redis_settings, wait_all
from tests.web.helpers import json_of

LIVE = "/health/live"
READY = "/health/ready"


async def test_live_and_ready_when_serving(client):
    for path, body in ((LIVE, {"status": "alive"}), (READY, {"status": "ready"})):
        response = await client.get(path)
        assert await json_of(response) == body
        assert response.headers["Cache-Control"] == "no-store"
        assert response.mimetype == "application/json"


async def test_without_a_store_the_process_is_alive_but_not_ready(app, client):
    services_of(app).db.close()
    assert await json_of(await client.get(LIVE)) == {"status": "alive"}
    response = await client.get(READY)
    assert response.status_code == 503
    assert await response.get_json() == {"status": "not_ready", "reason": "store_unavailable"}
    assert response.headers["Cache-Control"] == "no-store"


async def test_a_store_that_hangs_leaves_liveness_alone(app, client):
    db = services_of(app).db
    real_run = db.run

    async def hang(*args, **kwargs):
        await trio.sleep_forever()

    db.run = hang  # type: ignore[method-assign]
    try:
        assert await json_of(await client.get(LIVE)) == {"status": "alive"}
        # Readiness gives the store its probe deadline (STORE_PROBE_TIMEOUT), then says no.
        response = await client.get(READY)
        assert response.status_code == 503
        assert (await response.get_json())["reason"] == "store_unavailable"
    finally:
        db.run = real_run  # type: ignore[method-assign]


async def test_not_ready_before_start_up_and_after_shutdown(settings):
    app = create_app(settings)
    before = await app.test_client().get(READY)
    assert before.status_code == 503
    assert await before.get_json() == {"status": "not_ready", "reason": "starting"}
    assert (await app.test_client().get(LIVE)).status_code == 200
    async with app.test_app() as started:
        assert (await started.test_client().get(READY)).status_code == 200
    after = await app.test_client().get(READY)
    assert after.status_code == 503
    assert await after.get_json() == {"status": "not_ready", "reason": "stopping"}
    assert (await app.test_client().get(LIVE)).status_code == 200


@pytest.mark.redis
async def test_ready_while_redis_is_down(tmp_path, redis_server):
    async with create_app(redis_settings(tmp_path, redis_server.url)).test_app() as test_app:
        client = test_app.test_client()
        services = services_of(test_app)
        await wait_all(services, "redis")
        assert await json_of(await client.get(READY)) == {"status": "ready"}
        await redis_server.stop()
        await wait_all(services, "memory")
        health = await client.get("/health")
        assert (await json_of(health))["status"] == "degraded"
        assert await json_of(await client.get(READY)) == {"status": "ready"}
        assert await json_of(await client.get(LIVE)) == {"status": "alive"}


async def test_ready_when_redis_never_answered(tmp_path):
    # Configured for every feature, but nothing listens there: the server starts on its
    # fallbacks and is ready.
    settings = redis_settings(tmp_path, "redis://127.0.0.1:1/0", connect_timeout=1)
    async with create_app(settings).test_app() as test_app:
        client = test_app.test_client()
        assert await json_of(await client.get(READY)) == {"status": "ready"}
        assert (await json_of(await client.get("/health")))["redis"]["available"] is False
