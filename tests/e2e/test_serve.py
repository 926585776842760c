"""`python -m authly serve` as a real process: HTTP login flows, shared SQLite, signals."""

from __future__ import annotations

import base64
import json
import signal
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.e2e.server import ADMIN_PASSWORD, authly_env, login, me, refresh
from tests.support.processes import ServerProcess, free_port, port_is_free, serve_argv

pytestmark = pytest.mark.e2e

Spawn = Callable[..., ServerProcess]


def jwt_header(token: str) -> dict[str, str]:
    segment = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))  # type: ignore[no-any-return]


def assert_invalid_grant(response: httpx.Response) -> None:
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_grant"


def test_serve_login_over_http(spawn: Spawn, http: httpx.Client) -> None:
    server = spawn()
    server.wait_healthy()
    base = server.base_url

    health = http.get(server.url("/health")).json()
    assert health["status"] == "healthy"
    assert health["database"]["available"] is True
    assert health["database"]["backend"] == "sqlite"

    response = login(http, base)
    assert response.status_code == 200, response.text
    assert "no-store" in response.headers["cache-control"]
    first = response.json()
    assert first["token_type"] == "Bearer"

    profile = me(http, base, first["access_token"])
    assert profile.status_code == 200, profile.text
    assert profile.json()["username"] == "admin"

    response = refresh(http, base, first["refresh_token"])
    assert response.status_code == 200, response.text
    second = response.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert me(http, base, second["access_token"]).status_code == 200

    response = http.post(
        server.url("/api/v1/auth/logout"), json={"refresh_token": second["refresh_token"]}
    )
    assert response.status_code == 200, response.text

    assert_invalid_grant(refresh(http, base, second["refresh_token"]))
    assert_invalid_grant(refresh(http, base, first["refresh_token"]))

    http.close()  # idle keep-alive connections would hold shutdown for graceful_timeout
    code, _ = server.stop(signal.SIGTERM)
    assert code == 0, server.output()
    assert "Traceback" not in server.stderr()


def test_two_processes_share_sqlite(spawn: Spawn, http: httpx.Client, tmp_path: Path) -> None:
    # Tokens carry iss/aud, so instances serving one deployment share AUTHLY_ISSUER.
    env = authly_env(tmp_path / "authly.db", AUTHLY_ISSUER="http://authly.e2e.test")
    # Both start at once on a fresh file: migrations, the first signing keys (one per
    # algorithm) and the bootstrap admin must each be created exactly once.
    a = spawn(name="a", env=env)
    b = spawn(name="b", env=env)
    a.wait_healthy()
    b.wait_healthy()

    jwks_a = http.get(a.url("/.well-known/jwks.json")).json()
    jwks_b = http.get(b.url("/.well-known/jwks.json")).json()
    kids_a = [key["kid"] for key in jwks_a["keys"]]
    assert sorted(key["alg"] for key in jwks_a["keys"]) == ["ES256", "EdDSA", "RS256"]
    assert kids_a == [key["kid"] for key in jwks_b["keys"]]
    assert jwks_a == jwks_b
    (rs256,) = [key["kid"] for key in jwks_a["keys"] if key["alg"] == "RS256"]

    response = login(http, a.base_url)
    assert response.status_code == 200, response.text
    from_a = response.json()
    assert jwt_header(from_a["access_token"])["kid"] == rs256

    # An access token issued by A is accepted by B (same key, same issuer).
    profile = me(http, b.base_url, from_a["access_token"])
    assert profile.status_code == 200, profile.text
    assert profile.json()["username"] == "admin"

    # Rotate on B; B's access token works on A.
    response = refresh(http, b.base_url, from_a["refresh_token"])
    assert response.status_code == 200, response.text
    from_b = response.json()
    assert me(http, a.base_url, from_b["access_token"]).status_code == 200

    # Replaying the rotated token on A is reuse: refused, and the family is revoked in
    # the shared store, so B refuses the newest token too.
    assert_invalid_grant(refresh(http, a.base_url, from_a["refresh_token"]))
    assert_invalid_grant(refresh(http, b.base_url, from_b["refresh_token"]))

    http.close()
    for server in (a, b):
        code, _ = server.stop(signal.SIGTERM)
        assert code == 0, server.output()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_sigterm_and_sigint_shut_down_cleanly(spawn: Spawn, sig: signal.Signals) -> None:
    """The server exits 0 and frees its port while a client still holds an idle
    keep-alive connection open (the connection must not hold up the shutdown). How
    long shutdown takes is measured by scripts, not asserted here."""
    server = spawn()
    server.wait_healthy()
    with httpx.Client(timeout=5.0) as client:
        assert client.get(server.url("/health")).status_code == 200
        code, _ = server.stop(sig, timeout=30.0)
    assert code == 0, server.output()
    assert port_is_free(server.port)
    assert "Traceback" not in server.stderr()


def test_workers_2(spawn: Spawn) -> None:
    port = free_port()
    server = spawn(port=port, argv=serve_argv(port, "--workers", "2"))
    server.wait_healthy()

    def one_login(_: int) -> int:
        # A fresh connection per login, so the kernel spreads them over the workers.
        response = httpx.post(
            server.url("/api/v1/auth/login"),
            json={"username": "admin", "password": ADMIN_PASSWORD},
            timeout=10.0,
        )
        return response.status_code

    with ThreadPoolExecutor(max_workers=4) as pool:
        codes = list(pool.map(one_login, range(20)))
    assert codes == [200] * 20, server.output()

    code, _ = server.stop(signal.SIGTERM, timeout=30.0)
    assert code == 0, server.output()
    deadline = time.monotonic() + 30.0  # a hang detector, not a timing assertion
    while server.group_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not server.group_alive(), "worker processes outlived the server"
    assert port_is_free(port)
