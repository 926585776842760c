"""The store as operators see it: /health and /metrics name it, and a PostgreSQL server
that goes away gives clear 503s and is used again, by itself, when it comes back."""

from __future__ import annotations

import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ADMIN_PASSWORD, login, make_settings
from tests.postgres_server import own_postgres_server
from tests.web.helpers import running_app

TOKEN = "/api/v1/oauth/token"


def _samples(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[sample.name] = out.get(sample.name, 0.0) + sample.value
    return out


@pytest.mark.both_stores
async def test_metrics_time_store_calls_and_show_the_pool(client, settings):
    assert (await login(client)).status_code == 200
    text = (await (await client.get("/metrics")).get_data()).decode()
    samples = _samples(text)
    assert samples["authly_store_query_duration_seconds_count"] > 0
    backend = "postgresql" if settings.database_url.startswith("postgresql:") else "sqlite"
    assert f'authly_store_query_duration_seconds_count{{backend="{backend}"}}' in text
    assert samples["authly_store_pool_size"] == (10 if backend == "postgresql" else 1)
    # Between requests only the background tasks (the heartbeat) may hold one.
    assert samples["authly_store_pool_connections_in_use"] in (0, 1)


async def _refresh(client, token: str):
    return await client.post(
        TOKEN,
        form={"grant_type": "refresh_token", "refresh_token": token, "client_id": "authly"},
    )


@pytest.fixture
def own_postgres():
    """A PostgreSQL server of this test's own, so it can be stopped and started."""
    with own_postgres_server() as server:
        yield server


async def test_a_lost_database_answers_503_and_recovers_without_a_restart(own_postgres, tmp_path):
    url = own_postgres.create_database("authly")
    settings = make_settings(tmp_path, url)
    async with running_app(settings) as test_app:
        client = test_app.test_client()
        logged_in = await login(client)
        assert logged_in.status_code == 200
        refresh = (await logged_in.get_json())["refresh_token"]

        await trio.to_thread.run_sync(own_postgres.stop)  # immediate: like a crash

        refused = await _refresh(client, refresh)
        assert refused.status_code == 503
        body = await refused.get_json()
        assert body["error"] == "temporarily_unavailable"
        assert "Traceback" not in str(body)
        again = await login(client, "admin", ADMIN_PASSWORD)
        assert again.status_code == 503
        health = await client.get("/health")
        assert health.status_code == 503
        assert (await health.get_json())["database"]["available"] is False
        ready = await client.get("/health/ready")
        assert ready.status_code == 503
        assert await ready.get_json() == {"status": "not_ready", "reason": "store_unavailable"}
        assert (await client.get("/health/live")).status_code == 200  # alive all along

        await trio.to_thread.run_sync(own_postgres.start)

        # Back by itself: connections that died with the server are dropped after the
        # first failure; a bounded number of attempts (not a clock) must see service.
        for _attempt in range(20):
            answer = await _refresh(client, refresh)
            if answer.status_code != 503:
                break
            await trio.sleep(0.25)
        assert answer.status_code == 200, await answer.get_data()
        # Nothing was half-written: the family the 503s touched still rotates once.
        rotated = (await answer.get_json())["refresh_token"]
        assert (await _refresh(client, rotated)).status_code == 200
        assert (await _refresh(client, refresh)).status_code == 400  # reuse still detected
        for _attempt in range(20):
            health = await client.get("/health")
            if health.status_code == 200:
                break
            await trio.sleep(0.3)
        assert (await health.get_json())["database"]["available"] is True
        assert (await client.get("/health/ready")).status_code == 200
