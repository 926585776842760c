"""A multi-host rehearsal on one machine (issue 10, item 6): three ``authly serve``
instances on one PostgreSQL and one password-protected Redis, the topology that
``scripts/multi_instance.sh --postgres`` starts by hand.

One user session travels across the fleet (log in on the first instance, refresh on the
second, revoke on the third, introspect everywhere); a client created through the admin
API of one instance is used on another; then the PostgreSQL server is stopped the way a
crash looks (``pg_ctl -m immediate``) and started again: while it is away every instance
answers clear 503s, afterwards every instance serves again by itself, and the refresh
token family that was live before the outage is intact (it rotates exactly once, and
reuse of the old token is still detected). Neither password ever shows in the output.
"""

from __future__ import annotations

import base64
import re
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.server import ADMIN_PASSWORD, authly_env, login, refresh
from tests.support.postgres import AVAILABLE as POSTGRES_AVAILABLE
from tests.support.postgres import PASSWORD as POSTGRES_PASSWORD
from tests.support.postgres import PostgresProcess
from tests.support.processes import REDIS_SERVER, RedisProcess, ServerProcess
from tests.support.store import register_client

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.redis,
    pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server not installed"),
    pytest.mark.skipif(not POSTGRES_AVAILABLE, reason="PostgreSQL binaries not installed"),
]

ISSUER = "http://authly.multi-host.test"
TOKEN = "/api/v1/oauth/token"
REVOKE = "/api/v1/oauth/revoke"
INTROSPECT = "/api/v1/oauth/introspect"
ADMIN_SESSION = "/api/v1/admin/session"
ADMIN_CLIENTS = "/api/v1/admin/clients"
RS_SECRET = "introspector-secret-0123456789"
# How many looks (0.1 s apart) a recovery may take before the test calls it a hang. A
# bound on attempts, not a timing assertion.
ATTEMPTS = 300
# The lines an instance logs for a store call that fails while the database is away
# (store/postgres.py, and the 503 it becomes); every other ERROR, and any traceback, is
# a finding.
OUTAGE_LINES = re.compile(
    r" ERROR authly\.(store: store query \w+ failed|web: store unavailable): "
)


def _basic(client_id: str, secret: str) -> dict[str, str]:
    value = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {value}"}


RS = _basic("rs", RS_SECRET)


def _introspect(http: httpx.Client, server: ServerProcess, token: str) -> dict[str, Any]:
    response = http.post(server.url(INTROSPECT), data={"token": token}, headers=RS)
    assert response.status_code == 200, f"{server.name}: {response.text}"
    return dict(response.json())


def _until(look: Callable[[], bool], what: str) -> None:
    """Look up to ATTEMPTS times, 0.1 s apart, until ``look()`` is true."""
    for _ in range(ATTEMPTS):
        if look():
            return
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {ATTEMPTS} attempts")


def _outage_json(response: httpx.Response, where: str) -> dict[str, Any]:
    """A clear 503: JSON ``temporarily_unavailable``, not a 500, no traceback."""
    assert response.status_code == 503, f"{where}: {response.status_code} {response.text}"
    assert response.headers["content-type"].startswith("application/json"), where
    assert "Traceback" not in response.text, where
    body = dict(response.json())
    assert body["error"] == "temporarily_unavailable", f"{where}: {body}"
    return body


async def test_three_hosts_one_postgres_one_redis_survive_a_database_crash(
    tmp_path: Path,
) -> None:
    redis_password = "redis-" + secrets.token_hex(12)
    redis = RedisProcess(tmp_path / "redis.log", password=redis_password)
    postgres = PostgresProcess()
    servers: list[ServerProcess] = []
    healths: list[str] = []  # every /health body seen: none may show a password
    try:
        await redis.start()
        postgres.start()
        database_url = postgres.create_database("authly")
        env = authly_env(
            tmp_path / "unused.db",
            AUTHLY_DATABASE_URL=database_url,
            AUTHLY_REDIS_URL=redis.url,
            AUTHLY_REDIS_RATE_LIMIT="true",
            AUTHLY_REDIS_CACHE="true",
            AUTHLY_REDIS_SESSION="true",
            AUTHLY_ISSUER=ISSUER,
        )
        servers.extend(ServerProcess(tmp_path, name=f"host{n}", env=env).start() for n in (1, 2, 3))
        for server in servers:
            body = server.wait_healthy()
            assert body["status"] == "healthy", body
            assert body["database"]["available"] is True, body
            assert body["database"]["backend"] == "postgresql", body
            assert set(body["redis"]["backends"].values()) == {"redis"}, body
        one, two, three = servers
        register_client(
            database_url,
            "rs",
            secret=RS_SECRET,
            auth_method="client_secret_basic",
            grant_types=("client_credentials",),
        )

        with httpx.Client(timeout=15.0) as http:

            def health(server: ServerProcess) -> httpx.Response:
                response = http.get(server.url("/health"))
                healths.append(response.text)
                return response

            # --- one user session across the fleet -----------------------------------
            first = login(http, one.base_url)
            assert first.status_code == 200, first.text
            session = first.json()
            rotated = refresh(http, two.base_url, session["refresh_token"])
            assert rotated.status_code == 200, rotated.text
            current = rotated.json()
            for server in servers:
                assert _introspect(http, server, current["access_token"])["active"] is True

            revoked = http.post(
                three.url(REVOKE), data={"token": current["refresh_token"], "client_id": "authly"}
            )
            assert revoked.status_code == 200, revoked.text
            for server in servers:
                for token in (current["refresh_token"], session["refresh_token"]):
                    assert _introspect(http, server, token) == {"active": False}, server.name
                # The family's access tokens went with it, on every instance.
                assert _introspect(http, server, current["access_token"])["active"] is False
                again = refresh(http, server.base_url, current["refresh_token"])
                assert again.status_code == 400, f"{server.name}: {again.text}"
                assert again.json()["error"] == "invalid_grant"

            # A second family, live through the outage below.
            live = login(http, three.base_url)
            assert live.status_code == 200, live.text
            family = live.json()
            for server in servers:
                seen = _introspect(http, server, family["access_token"])
                assert seen["active"] is True, server.name
                assert seen["iss"] == ISSUER

            # --- a client created on one instance, used on another --------------------
            opened = http.post(
                one.url(ADMIN_SESSION), json={"username": "admin", "password": ADMIN_PASSWORD}
            )
            assert opened.status_code == 201, opened.text
            admin = {"Authorization": f"Bearer {opened.json()['session']}"}
            created = http.post(
                one.url(ADMIN_CLIENTS),
                headers=admin,
                json={
                    "name": "Billing service",
                    "client_type": "confidential",
                    "grant_types": ["client_credentials"],
                    "scopes": ["profile"],
                },
            )
            assert created.status_code == 201, created.text
            service = created.json()
            service_auth = _basic(service["client_id"], service["client_secret"])
            issued = http.post(
                two.url(TOKEN),
                data={"grant_type": "client_credentials", "scope": "profile"},
                headers=service_auth,
            )
            assert issued.status_code == 200, issued.text
            service_token = issued.json()["access_token"]
            assert "refresh_token" not in issued.json()
            seen = _introspect(http, three, service_token)
            assert seen["active"] is True, seen
            assert seen["client_id"] == service["client_id"], seen
            listed = http.get(two.url(ADMIN_CLIENTS), headers=admin)  # the session too
            assert listed.status_code == 200, listed.text
            assert service["client_id"] in {c["client_id"] for c in listed.json()["clients"]}

            # --- the database crashes ---------------------------------------------------
            postgres.stop()  # immediate: no clean shut-down
            for server in servers:
                refused = refresh(http, server.base_url, family["refresh_token"])
                body = _outage_json(refused, f"{server.name} {TOKEN}")
                assert body["error"] == "temporarily_unavailable", body
                assert body.get("error_description"), body

                def unhealthy(server: ServerProcess = server) -> bool:
                    # /health reuses a store probe for a quarter of a second.
                    return health(server).status_code == 503

                _until(unhealthy, f"{server.name} /health 503")
                answer = health(server).json()
                assert answer["status"] == "unhealthy", answer
                assert answer["database"]["available"] is False, answer

            # --- and comes back -----------------------------------------------------------
            postgres.start()  # same port, same data
            for server in servers:

                def healthy(server: ServerProcess = server) -> bool:
                    response = health(server)
                    return (
                        response.status_code == 200
                        and response.json()["database"]["available"] is True
                    )

                _until(healthy, f"{server.name} /health 200 after the database returned")

                def serves(server: ServerProcess = server) -> bool:
                    # A read through the store (clients) with the Redis admin session.
                    response = http.get(server.url(ADMIN_CLIENTS), headers=admin)
                    if response.status_code == 503:
                        _outage_json(response, f"{server.name} {ADMIN_CLIENTS}")
                        return False
                    assert response.status_code == 200, f"{server.name}: {response.text}"
                    return True

                _until(serves, f"{server.name} serving the admin API again")

            # The family live before the outage rotates exactly once, on any instance.
            renewed = refresh(http, one.base_url, family["refresh_token"])
            assert renewed.status_code == 200, renewed.text
            newer = renewed.json()
            assert newer["refresh_token"] != family["refresh_token"]
            for server in servers:
                assert _introspect(http, server, newer["access_token"])["active"] is True
            # Reuse of the old token is still detected, and revokes the family everywhere.
            reused = refresh(http, two.base_url, family["refresh_token"])
            assert reused.status_code == 400, reused.text
            assert reused.json()["error"] == "invalid_grant"
            for server in servers:
                assert _introspect(http, server, newer["access_token"])["active"] is False
                after = refresh(http, server.base_url, newer["refresh_token"])
                assert after.status_code == 400, f"{server.name}: {after.text}"
            # The client created before the outage still works after it.
            issued = http.post(
                three.url(TOKEN), data={"grant_type": "client_credentials"}, headers=service_auth
            )
            assert issued.status_code == 200, issued.text
            for server in servers:
                assert health(server).json()["status"] == "healthy"

        # --- what the instances said ---------------------------------------------------------
        for server in servers:
            output = server.output()
            assert "Traceback" not in output, output
            unexpected = [ln for ln in server.log_problems() if not OUTAGE_LINES.search(ln)]
            assert unexpected == [], output
            for secret in (redis_password, POSTGRES_PASSWORD):
                assert secret not in output, f"{server.name} printed a password"
        for text in healths:
            assert redis_password not in text, text
            assert POSTGRES_PASSWORD not in text, text
        shown = httpx.get(one.url("/health"), timeout=5).json()
        assert shown["redis"]["url"] == f"redis://:***@127.0.0.1:{redis.port}/0", shown
        assert "***" in shown["database"]["url"], shown
    finally:
        for server in servers:
            server.kill()
        redis.close()
        postgres.close()
