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
