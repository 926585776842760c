"""Several workers, or instances on one store, without Redis (issue 10, item 3).

Sessions (pending authorization requests, browser and login sessions, admin CLI
sessions) live in the store, so any process can finish what another began; memory rate
limits divide their budget by the instances heartbeating in the store, so the
deployment stays within a limit. Proven two ways: ``authly serve --workers 2`` (the
kernel spreads connections over the workers), and two instances behind a round-robin
balancer that sends every request to the other instance (no sticky sessions at all).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.server import ADMIN_PASSWORD, authly_env
from tests.e2e.test_admin_cli import Cli
from tests.e2e.test_authlib_client import REDIRECT, oauth_client, query_of, through_pages
from tests.e2e.test_browser_flow import CHROMIUM, Callback, chromium  # noqa: F401
from tests.support.balancer import RoundRobin
from tests.support.processes import ServerProcess, free_port, serve_argv
from tests.support.store import register_client
from tests.web.browser import pkce_pair

pytestmark = pytest.mark.e2e

AUTHORIZE = "/api/v1/oauth/authorize"
TOKEN = "/api/v1/oauth/token"
ME = "/api/v1/users/me"
LIMIT = 5  # AUTHLY_LOGIN_RATE_LIMIT's default


def _instances(http: httpx.Client, base: str) -> float:
    text = http.get(base + "/metrics").text
    match = re.search(r"^authly_rate_limit_instances (\S+)$", text, re.M)
    assert match, text
    return float(match.group(1))


def _wait_instances(http: httpx.Client, base: str, count: int, *, agreeing: int = 8) -> None:
    """Until ``agreeing`` answers in a row (from whichever process answers) count
    ``count`` instances: the heartbeat has run everywhere. Bounded by attempts."""
    seen = 0
    for _ in range(400):
        seen = seen + 1 if _instances(http, base) == count else 0
        if seen >= agreeing:
            return
        http.get(base + "/health")  # the pause between two looks (no sleep)
    raise AssertionError(f"the processes never all counted {count} instances")


def _failed_logins(http: httpx.Client, base: str, attempts: int) -> list[int]:
    return [
        http.post(
            base + "/api/v1/auth/login", json={"username": "admin", "password": "wrong-password"}
        ).status_code
        for _ in range(attempts)
    ]


def _assert_limit_holds(statuses: list[int]) -> None:
    assert set(statuses) <= {401, 429}, statuses
    allowed = statuses.count(401)
    assert 1 <= allowed <= LIMIT, statuses  # never more than the deployment's limit
    assert statuses[-1] == 429


def _authlib_flow(base: str) -> None:
    """An independent client library completes authorization code + PKCE through
    ``base``, a plain httpx client with a cookie jar playing the browser."""
    verifier = "shared-store-verifier-" + "v" * 40
    with (
        httpx.Client(timeout=15.0, follow_redirects=False) as browser,
        oauth_client("spa") as client,
    ):
        url, state = client.create_authorization_url(base + AUTHORIZE, code_verifier=verifier)
        callback = through_pages(browser, url)
        assert query_of(callback)["state"] == state
        token = client.fetch_token(
            base + TOKEN, authorization_response=callback, code_verifier=verifier
        )
        assert client.get(base + ME).json()["username"] == "admin"
        renewed = client.refresh_token(base + TOKEN)
        assert renewed["refresh_token"] != token["refresh_token"]


def _admin_cli(tmp_path: Path, base: str) -> None:
    """`authly admin login` then client creation, several times over: each command is a
    new connection, so the session must be known wherever it lands."""
    cli = Cli(tmp_path, base)
    assert "Logged in" in cli.login()
    for n in range(6):
        created = cli.json(
            "client", "create", "--name", f"svc-{n}", "--confidential",
            "--auth-method", "client_secret_basic", "--grant-type", "client_credentials",
            "--scope", "profile",
        )  # fmt: skip
        assert created["client_id"]
    assert cli.json("status")["user"]["username"] == "admin"


@pytest.fixture
def store(tmp_path: Path) -> Path:
    db = tmp_path / "authly.db"
    register_client(db, "spa", redirect_uris=(REDIRECT,))
    return db


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[list[ServerProcess]]:
    started: list[ServerProcess] = []
    try:
        yield started
    finally:
        for server in started:
            server.kill()


def test_two_workers_without_redis_share_sessions_and_limits(
    store: Path, tmp_path: Path, processes: list[ServerProcess]
) -> None:
    port = free_port()
    env = authly_env(store, AUTHLY_ISSUER=f"http://127.0.0.1:{port}")
    server = ServerProcess(
        tmp_path, name="workers", env=env, port=port, argv=[*serve_argv(port), "--workers", "2"]
    )
    processes.append(server.start())
    server.wait_healthy()
    with httpx.Client(timeout=10.0) as http:
        _wait_instances(http, server.base_url, 2)
        _admin_cli(tmp_path, server.base_url)
        for _ in range(3):
            _authlib_flow(server.base_url)
        _assert_limit_holds(_failed_logins(http, server.base_url, 2 * LIMIT))
    assert server.log_problems() == [], server.output()


@pytest.fixture
def balanced(
    store: Path, tmp_path: Path, processes: list[ServerProcess]
) -> Iterator[tuple[RoundRobin, list[ServerProcess]]]:
    """Two instances on one SQLite store, no Redis, behind a round-robin balancer whose
    URL is the deployment's issuer."""
    ports = [free_port(), free_port()]
    balancer = RoundRobin([f"http://127.0.0.1:{p}" for p in ports])
    env = authly_env(store, AUTHLY_ISSUER=balancer.url)
    servers = [
        ServerProcess(tmp_path, name=f"instance{i}", env=env, port=p) for i, p in enumerate(ports)
    ]
    for server in servers:
        processes.append(server.start())
    for server in servers:
        server.wait_healthy()
    with balancer:
        yield balancer, servers


def test_two_instances_behind_round_robin_share_sessions_and_limits(
    balanced: tuple[RoundRobin, list[ServerProcess]], tmp_path: Path
) -> None:
    balancer, servers = balanced
    with httpx.Client(timeout=10.0) as http:
        for server in servers:
            _wait_instances(http, server.base_url, 2, agreeing=1)
        _admin_cli(tmp_path, balancer.url)
        _authlib_flow(balancer.url)
        _assert_limit_holds(_failed_logins(http, balancer.url, 2 * LIMIT))
    assert min(balancer.counts) > 10, balancer.counts  # both instances answered
    for server in servers:
        assert server.log_problems() == [], server.output()


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium is missing")
def test_a_real_browser_signs_in_through_two_instances(
    balanced: tuple[RoundRobin, list[ServerProcess]],
    store: Path,
    chromium: Any,  # noqa: F811
) -> None:
    balancer, _ = balanced
    callback = Callback()
    try:
        register_client(store, "webapp", redirect_uris=(callback.redirect_uri,))
        verifier, challenge = pkce_pair()
        query = httpx.QueryParams(
            response_type="code",
            client_id="webapp",
            redirect_uri=callback.redirect_uri,
            scope="profile email offline_access",
            state="through-two",
            code_challenge=challenge,
            code_challenge_method="S256",
        )
        context = chromium.new_context()
        try:
            page = context.new_page()
            page.set_default_timeout(15_000)
            page.goto(f"{balancer.url}{AUTHORIZE}?{query}")  # instance 1 keeps the request
            assert page.title() == "Sign in · Authly"
            page.fill("#username", "admin")
            page.fill("#password", ADMIN_PASSWORD)
            page.click("button[type=submit]")  # instance 2 signs in
            page.wait_for_selector("text=Allow access?")
            page.click("button[value=approve]")
            page.wait_for_url(f"{callback.redirect_uri}**")
        finally:
            context.close()
        result = callback.params()
        assert result["state"] == "through-two"
        with httpx.Client(timeout=10.0) as http:
            tokens = http.post(
                balancer.url + TOKEN,
                data={
                    "grant_type": "authorization_code",
                    "code": result["code"],
                    "redirect_uri": callback.redirect_uri,
                    "client_id": "webapp",
                    "code_verifier": verifier,
                },
            )
            assert tokens.status_code == 200, tokens.text
            bearer = {"Authorization": f"Bearer {tokens.json()['access_token']}"}
            for _ in range(2):  # accepted by both instances
                assert http.get(balancer.url + ME, headers=bearer).status_code == 200
    finally:
        callback.close()


def _on(http: httpx.Client, server: ServerProcess, wanted: set[str]) -> None:
    """Until the server's features run on ``wanted`` backends (attempt-bounded)."""
    for _ in range(600):
        body = http.get(server.url("/health")).json()
        if set(body["redis"]["backends"].values()) == wanted:
            return
        http.get(server.url("/metrics"))  # the pause between two looks (no sleep)
    raise AssertionError(f"{server.name} never reached {wanted}: {body}")


@pytest.mark.trio
async def test_through_a_redis_outage_two_instances_need_no_sticky_sessions(
    store: Path, tmp_path: Path, processes: list[ServerProcess]
) -> None:
    """Sessions on Redis; Redis dies: both instances fall back to the store (not their
    own memory), so a sign-in and an admin session still work across them; Redis
    returns: what was written meanwhile is carried back, and keeps working."""
    from tests.support.processes import RedisProcess

    redis = RedisProcess(tmp_path / "redis.log", password="outage-pw-123")
    await redis.start()
    try:
        ports = [free_port(), free_port()]
        balancer = RoundRobin([f"http://127.0.0.1:{p}" for p in ports])
        env = authly_env(
            store,
            AUTHLY_ISSUER=balancer.url,
            AUTHLY_REDIS_URL=redis.url,
            AUTHLY_REDIS_RATE_LIMIT="true",
            AUTHLY_REDIS_CACHE="true",
            AUTHLY_REDIS_SESSION="true",
            AUTHLY_REDIS_OP_TIMEOUT_MS="1000",
        )
        servers = [
            ServerProcess(tmp_path, name=f"instance{i}", env=env, port=p)
            for i, p in enumerate(ports)
        ]
        for server in servers:
            processes.append(server.start())
        for server in servers:
            server.wait_healthy()
        with balancer, httpx.Client(timeout=10.0) as http:
            for server in servers:
                _on(http, server, {"redis"})
            await redis.kill()
            for server in servers:
                _on(http, server, {"memory", "database"})
            cli = Cli(tmp_path, balancer.url)
            assert "Logged in" in cli.login()  # an admin session written to the store
            _authlib_flow(balancer.url)  # pending request, browser session: the store
            await redis.start()
            for server in servers:
                _on(http, server, {"redis"})
            # The admin session begun during the outage was carried back into Redis.
            for n in range(4):
                created = cli.json(
                    "client", "create", "--name", f"after-{n}", "--public",
                    "--redirect-uri", "https://app.example/cb",
                    "--grant-type", "authorization_code", "--scope", "profile",
                )  # fmt: skip
                assert created["client_id"]
            _authlib_flow(balancer.url)
        for server in servers:
            assert server.log_problems() == [], server.output()
    finally:
        await redis.kill()
