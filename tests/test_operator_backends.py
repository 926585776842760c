"""Runtime control (issue 11, item 5): the operator pins Redis-enabled features to their
fallback, or releases them, on every instance on the store, without a restart; the
choice survives restarts, shows in /health and in the switch log line (reason=operator).

Two apps share one store and one real redis-server, as two instances would."""

from __future__ import annotations

import dataclasses
import logging

import pytest
import trio

from authly.factory import create_app
from tests.conftest import services_of
from tests.supervisor_helpers import HANG, lines_with, steady_redis_settings
from tests.web.admin_client import AdminClient, session_handle
from tests.web.helpers import json_of

pytestmark = pytest.mark.redis

BACKENDS = "/api/v1/admin/backends"


async def _admin(test_app) -> AdminClient:
    client = test_app.test_client()
    return AdminClient(client, await session_handle(client))


async def _wait_pins(services, pins: set[str]) -> None:
    supervisor = services.supervisor
    with trio.fail_after(HANG):
        while supervisor.pinned != pins:
            await supervisor.wait_for_probes(supervisor.probes + 1)


def _backends(services) -> dict[str, str]:
    return {slot.feature: slot.backend_name for slot in services.slots()}


async def test_pinning_reaches_every_instance_carries_sessions_and_survives_a_restart(
    tmp_path, redis_server, caplog
):
    caplog.set_level(logging.INFO)
    settings = steady_redis_settings(tmp_path, redis_server.url)
    first, second = create_app(settings), create_app(settings)
    async with first.test_app() as a, second.test_app() as b:
        sa, sb = services_of(a), services_of(b)
        assert _backends(sa) == _backends(sb) == dict.fromkeys(sa.supervisor.features, "redis")
        await sa.sessions.set("before-pin", {"sid": "before-pin"}, 300)  # in Redis
        admin = await _admin(a)

        answer = await json_of(
            await admin.call("PUT", BACKENDS, json={"rate_limit": "memory", "session": "memory"})
        )
        assert answer["features"]["rate_limit"] == {
            "configured": True,
            "pinned": True,
            "backend": "memory",
        }
        assert answer["features"]["session"]["backend"] == "database"
        assert answer["features"]["cache"]["backend"] == "redis"
        await _wait_pins(sb, {"rate_limit", "session"})  # the other instance follows
        assert _backends(sb) == {"rate_limit": "memory", "cache": "redis", "session": "database"}
        # The session Redis held was handed to the store: both instances still see it.
        for services in (sa, sb):
            assert await services.sessions.get("before-pin") == {"sid": "before-pin"}
        health = await json_of(await a.test_client().get("/health"))
        assert health["status"] == "healthy"  # where the operator wants it: not degraded
        assert health["redis"]["pinned"] == ["rate_limit", "session"]
        assert health["redis"]["last_switch"]["reason"] == "operator"
        text = (await (await a.test_client().get("/metrics")).get_data()).decode()
        assert 'authly_backend_pinned{feature="rate_limit"} 1.0' in text
        assert 'authly_backend_pinned{feature="cache"} 0.0' in text
        switches = lines_with(caplog, "reason=operator")
        assert any("feature=rate_limit from=redis to=memory" in line for line in switches)
        assert any("feature=session from=redis to=database" in line for line in switches)

        await sb.sessions.set("during-pin", {"sid": "during-pin"}, 300)  # in the store

    # A restart of any instance keeps the choice, though Redis is up.
    async with create_app(settings).test_app() as c:
        sc = services_of(c)
        assert sc.supervisor.pinned == {"rate_limit", "session"}
        assert _backends(sc) == {"rate_limit": "memory", "cache": "redis", "session": "database"}
        admin = await _admin(c)
        answer = await json_of(
            await admin.call("PUT", BACKENDS, json={"rate_limit": "redis", "session": "redis"})
        )
        assert {f: i["backend"] for f, i in answer["features"].items()} == {
            "rate_limit": "redis",
            "cache": "redis",
            "session": "redis",
        }
        # Released: what was written to the store meanwhile was carried into Redis.
        assert await sc.sessions.get("during-pin") == {"sid": "during-pin"}
        assert await sc.sessions.memory.count() == 0
        assert (await json_of(await admin.call("GET", BACKENDS)))["features"]["session"][
            "pinned"
        ] is False


async def test_a_feature_off_redis_by_configuration_cannot_be_sent_there(tmp_path, redis_server):
    settings = steady_redis_settings(tmp_path, redis_server.url)
    settings = settings.replace(redis=dataclasses.replace(settings.redis, cache=False))
    async with create_app(settings).test_app() as app:
        admin = await _admin(app)
        refused = await admin.call("PUT", BACKENDS, json={"cache": "redis"})
        body = await json_of(refused, 409)
        assert "AUTHLY_REDIS_CACHE" in body["error_description"]
        for bad in ({}, {"cache": "disk"}, {"queue": "memory"}):
            assert (await admin.call("PUT", BACKENDS, json=bad)).status_code == 400
        # Pinning it to its fallback is allowed (it is there anyway) and remembered.
        ok = await json_of(await admin.call("PUT", BACKENDS, json={"cache": "memory"}))
        assert ok["features"]["cache"] == {
            "configured": False,
            "pinned": True,
            "backend": "memory",
        }
        anonymous = AdminClient(app.test_client(), None)
        assert (await anonymous.call("GET", BACKENDS)).status_code == 401
