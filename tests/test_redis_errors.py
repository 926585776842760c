"""Say why: when Redis is unreachable or refuses us, the WARNING line and /health's
``redis.last_error`` name the reason (password masked), at start-up and at run time."""

from __future__ import annotations

import json
import logging
import re

import pytest

from authly.factory import create_app
from tests.conftest import services_of
from tests.redis_server import RedisServer
from tests.redis_tls import ACL_PASSWORD, ACL_RULES, tls_acl_server, tls_url
from tests.supervisor_helpers import (
    FALLBACKS,
    lines_with,
    metrics_text,
    redis_settings,
    sample,
    wait_all,
)
from tests.support.certs import make_pki

pytestmark = pytest.mark.redis

FALLBACK = "Redis connection failed, falling back to memory"
WRONGPASS = "WRONGPASS invalid username-password pair or user is disabled."
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
RIGHT, WRONG = "pw-right-7f3a1c", "pw-wrong-9c2b4e"


def url_with(server: RedisServer, password: str) -> str:
    return f"redis://:{password}@127.0.0.1:{server.port}/0"


async def health_of(test_app) -> dict:
    return await (await test_app.test_client().get("/health")).get_json()


def assert_never_shown(caplog, health: dict, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in caplog.text
        assert secret not in json.dumps(health)


async def test_wrong_password_at_startup(tmp_path, nursery, caplog):
    caplog.set_level(logging.INFO)
    server = RedisServer(nursery, password=RIGHT)
    await server.start()
    app = create_app(redis_settings(tmp_path, url_with(server, WRONG)))
    async with app.test_app() as test_app:
        health = await health_of(test_app)
        assert [s.backend_name for s in services_of(test_app).slots()] == FALLBACKS
    assert lines_with(caplog, FALLBACK) == [f"{FALLBACK}: {WRONGPASS}"]
    assert lines_with(caplog, "using memory backends")
    assert health["status"] == "degraded"
    assert health["redis"]["last_switch"] is None  # nothing switched: memory from the start
    assert health["redis"]["last_error"]["error"] == WRONGPASS
    assert ISO.match(health["redis"]["last_error"]["time"])
    assert_never_shown(caplog, health, WRONG, RIGHT)
    await server.stop()


async def test_connection_refused_at_startup(tmp_path, nursery, caplog):
    caplog.set_level(logging.INFO)
    server = RedisServer(nursery)  # a free port, nothing listening
    app = create_app(redis_settings(tmp_path, server.url))
    async with app.test_app() as test_app:
        health = await health_of(test_app)
    refused = f"ConnectionError: Error 111 connecting to 127.0.0.1:{server.port}."
    (line,) = lines_with(caplog, FALLBACK)
    assert line.startswith(f"{FALLBACK}: {refused}"), line
    assert health["redis"]["available"] is False
    assert health["redis"]["last_error"]["error"].startswith(refused)


async def test_wrong_password_at_runtime(tmp_path, nursery, caplog):
    caplog.set_level(logging.INFO)
    server = RedisServer(nursery, password=RIGHT)
    await server.start()
    # Only a request can wake the supervisor: no probe runs between restart and request.
    settings = redis_settings(tmp_path, url_with(server, RIGHT), health_interval_ms=60_000)
    app = create_app(settings)
    async with app.test_app() as test_app:
        services = services_of(test_app)
        server.password = WRONG  # the operator rotated the password and restarted Redis
        await server.restart()
        await services.sessions.set("s", {"a": "1"}, 60)  # fails, answered from memory
        await wait_all(services, "memory")
        health = await health_of(test_app)
    assert lines_with(caplog, FALLBACK) == [f"{FALLBACK}: {WRONGPASS}"]
    assert health["redis"]["last_switch"]["reason"].startswith("request failed: ")
    assert health["redis"]["last_error"]["error"] == WRONGPASS
    assert_never_shown(caplog, health, WRONG, RIGHT)
    await server.stop()


async def test_probe_errors_while_down_are_logged_once_per_change(tmp_path, nursery, caplog):
    caplog.set_level(logging.INFO)
    server = RedisServer(nursery, password=RIGHT)  # not started yet: refused
    settings = redis_settings(tmp_path, url_with(server, WRONG), health_interval_ms=20)
    app = create_app(settings)
    async with app.test_app() as test_app:
        supervisor = services_of(test_app).supervisor
        await supervisor.wait_for_probes(supervisor.probes + 4)
        (line,) = lines_with(caplog, FALLBACK)
        assert "Error 111" in line
        assert lines_with(caplog, "Redis still unavailable") == []  # same error: not again
        await server.start()  # now Redis answers, but refuses our password
        await supervisor.wait_for_probes(supervisor.probes + 3)
        assert lines_with(caplog, "Redis still unavailable") == [
            f"Redis still unavailable: {WRONGPASS}"
        ]
        assert len(lines_with(caplog, FALLBACK)) == 1  # no new switch to memory
        health = await health_of(test_app)
        assert health["redis"]["last_error"]["error"] == WRONGPASS
        text = await metrics_text(test_app.test_client())
        assert sample(text, "authly_redis_failures_total", seen_by="health_probe") >= 8
    assert_never_shown(caplog, health, WRONG, RIGHT)
    await server.stop()


# --- TLS and ACL (issue 11, item 3): the server is TLS-only, asks for client certificates
# and knows the least-privilege user of docs/redis.md (tests/redis_tls.py).

NO_EVALSHA = ACL_RULES.replace(" +evalsha", "")  # the ACL line without one needed command
NOPERM_EVALSHA = "NOPERM this user has no permissions to run the 'evalsha' command"


async def _startup_error(tmp_path, url: str, caplog) -> tuple[str, dict]:
    """The start-up WARNING's reason and /health for an app pointed at ``url``."""
    app = create_app(redis_settings(tmp_path, url, connect_timeout=5))
    async with app.test_app() as test_app:
        health = await health_of(test_app)
        assert [s.backend_name for s in services_of(test_app).slots()] == FALLBACKS
    (line,) = lines_with(caplog, FALLBACK)
    assert line.startswith(f"{FALLBACK}: ")
    assert health["status"] == "degraded"
    assert health["redis"]["available"] is False
    assert ISO.match(health["redis"]["last_error"]["time"])
    return line.removeprefix(f"{FALLBACK}: "), health


async def test_tls_acl_user_wrong_password(tmp_path, nursery, caplog):
    caplog.set_level(logging.INFO)
    server, pki = tls_acl_server(nursery, tmp_path / "pki")
    await server.start()
    url = tls_url(server, ca=pki.ca_cert, client=pki, password=WRONG)
    reason, health = await _startup_error(tmp_path, url, caplog)
    assert reason == health["redis"]["last_error"]["error"] == WRONGPASS
    assert_never_shown(caplog, health, WRONG, ACL_PASSWORD)


async def test_tls_acl_user_missing_a_permission(tmp_path, nursery, caplog):
    caplog.set_level(logging.INFO)
    server, pki = tls_acl_server(nursery, tmp_path / "pki", rules=NO_EVALSHA)
    await server.start()
    url = tls_url(server, ca=pki.ca_cert, client=pki)  # PING passes, the heartbeat does not
    reason, health = await _startup_error(tmp_path, url, caplog)
    assert reason == health["redis"]["last_error"]["error"] == NOPERM_EVALSHA
    assert_never_shown(caplog, health, ACL_PASSWORD)


async def test_tls_untrusted_server_certificate(tmp_path, nursery, caplog):
    caplog.set_level(logging.INFO)
    server, pki = tls_acl_server(nursery, tmp_path / "pki")
    await server.start()
    rogue = make_pki(tmp_path / "rogue", name="rogue")  # a CA that did not sign the server's
    url = tls_url(server, ca=rogue.ca_cert, client=pki)
    reason, health = await _startup_error(tmp_path, url, caplog)
    assert reason == health["redis"]["last_error"]["error"]
    assert reason.startswith(
        f"ConnectionError: Error 1 connecting to 127.0.0.1:{server.port}. "
        "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"
    ), reason
    assert_never_shown(caplog, health, ACL_PASSWORD)


async def test_tls_without_the_client_certificate_the_server_asks_for(tmp_path, nursery, caplog):
    caplog.set_level(logging.INFO)
    server, pki = tls_acl_server(nursery, tmp_path / "pki")
    await server.start()
    url = tls_url(server, ca=pki.ca_cert, client=None)  # trusted server, no client certificate
    reason, health = await _startup_error(tmp_path, url, caplog)
    assert reason == health["redis"]["last_error"]["error"]
    # TLS 1.3: the handshake completes on the client's side; the server then refuses and
    # closes, so the client reads a reset (or, if it was quick enough, the TLS alert).
    assert reason.startswith("ConnectionError: "), reason
    assert any(
        text in reason for text in ("Connection reset by peer", "certificate required", "closed")
    ), reason
    assert_never_shown(caplog, health, ACL_PASSWORD)
