"""Failed-login limits: per username and per client IP, sliding window (DESIGN §5, §7).

Defaults: 5 failed attempts per 60 s (``login_rate_limit`` / ``login_rate_window``).
Window arithmetic is driven by a fake clock injected into a real MemoryRateLimiter
through the rate-limit slot; nothing here sleeps.
"""

from __future__ import annotations

import ipaddress

import trio

from authly.backends.memory import MemoryRateLimiter
from tests.conftest import ADMIN_PASSWORD, login, services_of
from tests.web.helpers import (
    create_user,
    error_body,
    from_ip,
    json_of,
    running_app,
    token_request,
)

WRONG = "not-the-password"


async def _fail(client, username="admin", **extra):
    return await login(client, username=username, password=WRONG, **extra)


async def _assert_limited(response) -> int:
    """A 429 with an integral Retry-After >= 1 and the JSON error body; returns it."""
    body = await error_body(response, 429)
    assert set(body) == {"error", "error_description"}
    assert body["error"] == "too_many_requests"
    retry_after = response.headers["Retry-After"]
    assert retry_after.isdigit(), retry_after
    assert int(retry_after) >= 1
    assert response.headers["Cache-Control"] == "no-store"
    return int(retry_after)


def _fake_clock(app, start: float = 1000.0) -> list[float]:
    """Point the app's rate-limit slot at a real memory limiter on a fake clock."""
    now = [start]
    services_of(app).rate_limit.swap(MemoryRateLimiter(clock=lambda: now[0]))
    return now


async def test_sixth_failed_attempt_is_429(client, settings):
    assert settings.login_rate_limit == 5
    assert settings.login_rate_window == 60
    for _ in range(5):
        assert (await _fail(client)).status_code == 401
    retry_after = await _assert_limited(await _fail(client))
    assert retry_after <= 60


async def test_correct_password_is_refused_while_limited(client):
    for _ in range(5):
        assert (await _fail(client)).status_code == 401
    await _assert_limited(await login(client))


async def test_limit_holds_for_further_attempts(client):
    for _ in range(5):
        await _fail(client)
    for _ in range(5):
        await _assert_limited(await _fail(client))
    await _assert_limited(await login(client))


async def test_successful_logins_do_not_count(client):
    for _ in range(10):
        assert (await login(client)).status_code == 200


async def test_successes_between_failures_do_not_count(client):
    for _ in range(4):
        assert (await _fail(client)).status_code == 401
    for _ in range(3):
        assert (await login(client)).status_code == 200
    assert (await _fail(client)).status_code == 401  # the 5th failure
    await _assert_limited(await _fail(client))


async def test_limit_is_per_username_whatever_the_ip(client):
    for i in range(5):
        response = await _fail(client, scope_base=from_ip(f"198.51.100.{i + 1}"))
        assert response.status_code == 401
    # A fresh address, the right password: the username's window is full.
    await _assert_limited(await login(client, scope_base=from_ip("198.51.100.200")))


async def test_username_bucket_is_case_insensitive(client):
    for i, name in enumerate(["ADMIN", "Admin", "aDmin", "admiN", "admin"]):
        response = await _fail(client, username=name, scope_base=from_ip(f"198.51.100.{i + 1}"))
        assert response.status_code == 401
    await _assert_limited(await login(client, scope_base=from_ip("198.51.100.200")))


async def test_other_usernames_are_not_limited_by_one_users_failures(client, app):
    for i in range(5):
        await _fail(client, scope_base=from_ip(f"198.51.100.{i + 1}"))
    response = await _fail(client, username="someone-else", scope_base=from_ip("203.0.113.1"))
    assert (await error_body(response, 401))["error"] == "invalid_grant"


async def test_limit_is_per_client_ip_across_usernames(client):
    ip = from_ip("192.0.2.10")
    for i in range(5):
        assert (await _fail(client, username=f"user{i}", scope_base=ip)).status_code == 401
    await _assert_limited(await _fail(client, username="user-new", scope_base=ip))
    await _assert_limited(await login(client, scope_base=ip))
    # Another address is not affected.
    other = await _fail(client, username="user-new", scope_base=from_ip("192.0.2.11"))
    assert other.status_code == 401
    assert (await login(client, scope_base=from_ip("192.0.2.11"))).status_code == 200


async def test_x_forwarded_for_is_ignored_without_trusted_proxies(client):
    ip = from_ip("192.0.2.10")
    for i in range(5):
        await _fail(client, username=f"user{i}", scope_base=ip)
    spoofed = await _fail(
        client, username="user-new", scope_base=ip, headers={"X-Forwarded-For": "203.0.113.77"}
    )
    await _assert_limited(spoofed)


async def test_x_forwarded_for_is_honoured_from_a_trusted_proxy(settings_factory):
    settings = settings_factory(trusted_proxies=(ipaddress.ip_network("10.0.0.0/8"),))
    async with running_app(settings) as test_app:
        client = test_app.test_client()
        proxy = from_ip("10.1.2.3")

        def via(chain: str) -> dict:
            return {"scope_base": proxy, "headers": {"X-Forwarded-For": chain}}

        for i in range(5):
            response = await _fail(client, username=f"user{i}", **via("203.0.113.5"))
            assert response.status_code == 401
        await _assert_limited(await _fail(client, username="user-new", **via("203.0.113.5")))
        # A client cannot pick its own key by prepending an address: the rightmost
        # untrusted hop is the one that counts.
        spoofed = via("198.51.100.99, 203.0.113.5")
        await _assert_limited(await _fail(client, username="user-new", **spoofed))
        # Trusted hops on the right (a second proxy) are skipped.
        chained = via("203.0.113.5, 10.9.9.9")
        await _assert_limited(await _fail(client, username="user-new", **chained))
        # Another client behind the same proxy has its own window.
        response = await _fail(client, username="user-new", **via("203.0.113.6"))
        assert response.status_code == 401
        # A peer that is not a trusted proxy cannot borrow the header either.
        direct = await _fail(
            client,
            username="user-newest",
            scope_base=from_ip("192.0.2.50"),
            headers={"X-Forwarded-For": "203.0.113.5"},
        )
        assert direct.status_code == 401


async def test_password_grant_on_token_endpoint_shares_the_limit(client):
    for _ in range(5):
        await _fail(client)
    response = await token_request(
        client, grant_type="password", username="admin", password=ADMIN_PASSWORD
    )
    await _assert_limited(response)


async def test_token_endpoint_failures_count_too(client):
    for _ in range(5):
        response = await token_request(
            client, grant_type="password", username="admin", password=WRONG
        )
        assert (await error_body(response, 400))["error"] == "invalid_grant"
    await _assert_limited(await login(client))


async def test_retry_after_counts_down_with_the_window(app, client):
    now = _fake_clock(app)
    for _ in range(5):
        assert (await _fail(client)).status_code == 401
        now[0] += 1  # failures at t = 1000, 1001, 1002, 1003, 1004
    now[0] = 1010.0
    assert await _assert_limited(await _fail(client)) == 50
    now[0] = 1010.7
    assert await _assert_limited(await _fail(client)) == 50  # 49.3 s rounds up, not down
    now[0] = 1059.5
    assert await _assert_limited(await login(client)) == 1  # 0.5 s rounds up


async def test_window_slides_rather_than_resets(app, client):
    now = _fake_clock(app)
    for _ in range(5):
        assert (await _fail(client)).status_code == 401
        now[0] += 1  # failures at t = 1000 .. 1004
    now[0] = 1060.0  # the first failure just left the window; four remain
    assert (await login(client)).status_code == 200
    assert (await _fail(client)).status_code == 401  # five in the window again
    assert await _assert_limited(await _fail(client)) == 1  # next slot frees at t = 1061
    now[0] = 1061.0
    assert (await login(client)).status_code == 200


async def test_limit_lifts_after_the_window(app, client):
    now = _fake_clock(app)
    for _ in range(5):
        await _fail(client)
    await _assert_limited(await login(client))
    now[0] = 1059.999
    await _assert_limited(await login(client))
    now[0] = 1060.0
    assert (await login(client)).status_code == 200


async def test_limit_and_window_follow_settings(settings_factory):
    settings = settings_factory(login_rate_limit=2, login_rate_window=30)
    async with running_app(settings) as test_app:
        client = test_app.test_client()
        now = _fake_clock(test_app)
        assert (await _fail(client)).status_code == 401
        assert (await _fail(client)).status_code == 401
        assert await _assert_limited(await _fail(client)) == 30
        now[0] += 30
        assert (await login(client)).status_code == 200


async def test_concurrent_failures_cannot_exceed_the_limit(client):
    statuses: list[int] = []

    async def attempt() -> None:
        statuses.append((await _fail(client)).status_code)

    async with trio.open_nursery() as nursery:
        for _ in range(20):
            nursery.start_soon(attempt)
    assert len(statuses) == 20
    assert statuses.count(401) == 5
    assert statuses.count(429) == 15


async def test_attempts_in_flight_count_against_the_limit(client):
    """Documented trade-off (docs/decisions.md): attempts reserve their slot before the
    password is checked, so at most 5 attempts for one user can be in flight; correct
    ones give the slot back when they finish."""
    statuses: list[int] = []

    async def attempt() -> None:
        statuses.append((await login(client)).status_code)

    async with trio.open_nursery() as nursery:
        for _ in range(10):
            nursery.start_soon(attempt)
    assert sorted(statuses) == [200] * 5 + [429] * 5
    assert (await login(client)).status_code == 200  # the slots came back


async def test_rate_limited_answer_does_not_issue_tokens(client):
    for _ in range(5):
        await _fail(client)
    response = await login(client)
    body = await json_of(response, 429)
    assert "access_token" not in body
    assert "refresh_token" not in body


# --- the memory limiter's key bound (security review, defect A) ---------------------------


async def _five_failures_for_alice(test_app, client) -> None:
    await create_user(test_app, "alice", "alice-password")
    for i in range(5):
        response = await _fail(client, "alice", scope_base=from_ip(f"198.51.100.{i + 1}"))
        assert response.status_code == 401


def _login_user_windows(app) -> list[str]:
    memory = services_of(app).rate_limit.memory
    return [key for key, _, _ in memory.export() if key.startswith("login:user:")]


async def test_junk_usernames_from_one_address_cannot_reset_a_users_limit(settings_factory):
    """The review's scenario: five failures for alice, then a flood of failed logins with
    junk usernames from one address. Refused requests create no window, so the flood
    cannot push alice's window out of a small table."""
    settings = settings_factory(rate_limit_max_keys=100, login_rate_window=3600)
    async with running_app(settings) as test_app:
        client = test_app.test_client()
        await _five_failures_for_alice(test_app, client)
        await _assert_limited(await _fail(client, "alice", scope_base=from_ip("198.51.100.9")))
        flood = from_ip("203.0.113.9")
        statuses = [
            (await _fail(client, f"junk-{i}", scope_base=flood)).status_code for i in range(300)
        ]
        assert statuses == [401] * 5 + [429] * 295
        # Only the five attempts the address was allowed made username windows.
        assert sorted(_login_user_windows(test_app)) == sorted(
            ["login:user:alice"] + [f"login:user:junk-{i}" for i in range(5)]
        )
        fresh = from_ip("192.0.2.77")
        await _assert_limited(await login(client, "alice", "alice-password", scope_base=fresh))


async def test_a_table_full_of_live_windows_refuses_instead_of_forgetting(settings_factory):
    """Many addresses fill the table: new keys are refused (429), no window that still
    limits is evicted, and the refusals are counted in /metrics."""
    settings = settings_factory(rate_limit_max_keys=100, login_rate_window=3600)
    async with running_app(settings) as test_app:
        client = test_app.test_client()
        await _five_failures_for_alice(test_app, client)
        statuses = []
        for i in range(150):  # each allowed attempt takes two windows: address + username
            response = await _fail(client, f"junk-{i}", scope_base=from_ip(f"10.0.{i}.1"))
            statuses.append(response.status_code)
        assert statuses == [401] * 47 + [429] * 103
        assert len(services_of(test_app).rate_limit.memory) == 100
        # alice's window is still there: from an address that has a window (so the
        # address check passes), even the right password is refused.
        await _assert_limited(
            await login(client, "alice", "alice-password", scope_base=from_ip("10.0.0.1"))
        )
        text = await (await client.get("/metrics")).get_data(as_text=True)
        assert "authly_rate_limit_table_full_total 103.0" in text
        assert "authly_rate_limit_evictions_total 0.0" in text


class _KeysSeen:
    """A memory limiter that notes every key it is asked about."""

    name = "memory"

    def __init__(self) -> None:
        self.inner = MemoryRateLimiter()
        self.keys: list[str] = []

    async def check_rate_limit(self, key: str, max_requests: int, window_seconds: float):
        self.keys.append(key)
        return await self.inner.check_rate_limit(key, max_requests, window_seconds)

    async def refund(self, key: str, member: str) -> None:
        await self.inner.refund(key, member)


async def test_a_request_refused_on_its_address_never_touches_a_username(app, client):
    seen = _KeysSeen()
    services_of(app).rate_limit.swap(seen)
    flood = from_ip("203.0.113.9")
    for i in range(5):
        assert (await _fail(client, f"junk-{i}", scope_base=flood)).status_code == 401
    seen.keys.clear()
    for i in range(5, 20):
        await _assert_limited(await _fail(client, f"junk-{i}", scope_base=flood))
    assert seen.keys == ["login:ip:203.0.113.9"] * 15
