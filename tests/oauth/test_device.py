"""Device authorization grants (RFC 8628) in the domain: codes, decisions, polling, and
the verification page's guess limit, over the memory session store and a fake clock."""

from __future__ import annotations

import re

import pytest
import trio

from authly.backends.memory import MemoryRateLimiter, MemorySessionStore
from authly.errors import (
    AccessDenied,
    AuthorizationPending,
    ExpiredToken,
    InvalidGrant,
    InvalidScope,
    RateLimitExceeded,
    SlowDown,
)
from authly.oauth.device import (
    APPROVED,
    DENIED,
    EXPIRED_GRACE,
    GRANT_TYPE,
    POOL,
    USER_CODE_ALPHABET,
    DeviceGrants,
    MalformedUserCode,
    UnknownUserCode,
    format_user_code,
    new_user_code,
    normalise_user_code,
)
from authly.oauth.device_requests import GuessLimits, Verification, check_form, form_token
from authly.oauth.pending import CsrfFailure, new_token
from authly.oauth.registration import check_client, parse_new_client
from authly.store.users import User
from tests.support.fakes import Clock


@pytest.fixture
def grants(store: MemorySessionStore, clock: Clock) -> DeviceGrants:
    return DeviceGrants(store, now=clock)


def user(user_id: str = "u1", *, is_admin: bool = False) -> User:
    return User(
        id=user_id,
        username=user_id,
        email=None,
        password_hash="x",
        is_admin=is_admin,
        is_active=True,
        created_at=0.0,
        updated_at=0.0,
    )


async def started(grants: DeviceGrants, scope: str = "profile") -> tuple[str, str]:
    """(device code, user code) of a new pending grant of client ``tv``."""
    auth = await grants.start("tv", "TV app", scope)
    return auth.device_code, auth.user_code


# ---- codes -------------------------------------------------------------------------------


def test_user_codes_are_eight_consonants() -> None:
    for _ in range(200):
        code = new_user_code()
        assert len(code) == 8
        assert set(code) <= set(USER_CODE_ALPHABET)
    assert not set("AEIOUY0123456789") & set(USER_CODE_ALPHABET)
    assert format_user_code("BCDFGHJK") == "BCDF-GHJK"


@pytest.mark.parametrize(
    "typed", ["BCDF-GHJK", "bcdf-ghjk", "bcdfghjk", " bcdf ghjk ", "BC-DF-GH-JK", "Bcdf\tGhjk"]
)
def test_user_code_input_is_normalised(typed: str) -> None:
    assert normalise_user_code(typed) == "BCDFGHJK"


@pytest.mark.parametrize(
    "typed",
    [None, "", "BCDF-GHJ", "BCDF-GHJKL", "ABCD-EFGH", "BCDF-GHJ1", "\u017fCDF-GHJK", "B" * 40],
)
def test_what_cannot_be_a_user_code_is_refused(typed: str | None) -> None:
    with pytest.raises(MalformedUserCode):
        normalise_user_code(typed)


async def test_start_hands_out_high_entropy_device_codes(grants: DeviceGrants) -> None:
    auth = await grants.start("tv", "TV app", "profile")
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", auth.device_code)
    assert auth.expires_in == 600
    assert auth.interval == 5
    other = await grants.start("tv", "TV app", "profile")
    assert other.device_code != auth.device_code


async def test_no_backend_key_is_a_code(grants: DeviceGrants, store: MemorySessionStore) -> None:
    device_code, user_code = await started(grants)
    keys = [key for key, _, _ in store.export()[0]]
    assert len(keys) == 3
    assert store.pool_size(POOL) == 3
    assert not any(device_code in key or user_code in key for key in keys)


# ---- the verification side --------------------------------------------------------------


async def test_find_by_user_code(grants: DeviceGrants) -> None:
    _, user_code = await started(grants, "openid profile")
    grant = await grants.find(user_code)
    assert grant.client_id == "tv"
    assert grant.client_name == "TV app"
    assert grant.scope == "openid profile"
    with pytest.raises(UnknownUserCode):
        await grants.find("BBBBBBBB" if user_code != "BBBBBBBB" else "CCCCCCCC")


async def test_an_expired_user_code_is_unknown(grants: DeviceGrants, clock: Clock) -> None:
    _, user_code = await started(grants)
    clock.now += 600
    with pytest.raises(UnknownUserCode):
        await grants.find(user_code)


async def test_a_user_code_answers_once(grants: DeviceGrants) -> None:
    _, user_code = await started(grants)
    grant = await grants.find(user_code)
    await grants.decide(grant, user_id="u1", auth_time=1.0, status=APPROVED)
    with pytest.raises(UnknownUserCode):
        await grants.find(user_code)
    with pytest.raises(UnknownUserCode):
        await grants.decide(grant, user_id="u2", auth_time=1.0, status=DENIED)


async def test_concurrent_decisions_exactly_one_counts(grants: DeviceGrants) -> None:
    _, user_code = await started(grants)
    grant = await grants.find(user_code)
    results: list[str] = []

    async def decide(status: str) -> None:
        try:
            await grants.decide(grant, user_id=status, auth_time=1.0, status=status)
            results.append(status)
        except UnknownUserCode:
            results.append("refused")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(decide, APPROVED)
        nursery.start_soon(decide, DENIED)
    assert sorted(results)[-1] == "refused"
    assert len([r for r in results if r != "refused"]) == 1


# ---- polling -----------------------------------------------------------------------------


async def test_pending_then_slow_down_then_pending(grants: DeviceGrants, clock: Clock) -> None:
    device_code, _ = await started(grants)
    with pytest.raises(AuthorizationPending):
        await grants.poll(device_code, "tv")
    clock.now += 4.9
    with pytest.raises(SlowDown) as slow:
        await grants.poll(device_code, "tv")
    assert "10 seconds" in slow.value.description
    clock.now += 9.9  # the interval is now 10 s
    with pytest.raises(SlowDown):
        await grants.poll(device_code, "tv")
    clock.now += 15  # and now 15 s
    with pytest.raises(AuthorizationPending):
        await grants.poll(device_code, "tv")


async def test_approved_grant_is_taken_once(grants: DeviceGrants) -> None:
    device_code, user_code = await started(grants, "openid profile")
    grant = await grants.find(user_code)
    await grants.decide(grant, user_id="u1", auth_time=123.0, status=APPROVED)
    approved = await grants.poll(device_code, "tv")
    assert (approved.user_id, approved.auth_time, approved.scope) == ("u1", 123.0, "openid profile")
    with pytest.raises(InvalidGrant):
        await grants.poll(device_code, "tv")


async def test_concurrent_polls_after_approval_one_wins(grants: DeviceGrants) -> None:
    device_code, user_code = await started(grants)
    await grants.decide(await grants.find(user_code), user_id="u1", auth_time=1.0, status=APPROVED)
    won: list[bool] = []

    async def poll() -> None:
        try:
            await grants.poll(device_code, "tv")
            won.append(True)
        except InvalidGrant:
            won.append(False)

    async with trio.open_nursery() as nursery:
        for _ in range(5):
            nursery.start_soon(poll)
    assert sorted(won) == [False, False, False, False, True]


async def test_denied_is_access_denied_every_time(grants: DeviceGrants) -> None:
    device_code, user_code = await started(grants)
    await grants.decide(
        await grants.find(user_code),
        user_id="u1",
        auth_time=1.0,
        status=DENIED,
        error="access_denied",
    )
    for _ in range(2):
        with pytest.raises(AccessDenied) as denied:
            await grants.poll(device_code, "tv")
        assert denied.value.status_code == 400


async def test_expired_then_forgotten(grants: DeviceGrants, clock: Clock) -> None:
    device_code, _ = await started(grants)
    clock.now += 600
    with pytest.raises(ExpiredToken):
        await grants.poll(device_code, "tv")
    clock.now += EXPIRED_GRACE
    with pytest.raises(InvalidGrant):
        await grants.poll(device_code, "tv")


async def test_another_client_and_unknown_codes_are_invalid_grant(grants: DeviceGrants) -> None:
    device_code, _ = await started(grants)
    with pytest.raises(InvalidGrant, match="another client"):
        await grants.poll(device_code, "other")
    # ... and that poll did not count for the real client.
    with pytest.raises(AuthorizationPending):
        await grants.poll(device_code, "tv")
    for code in ("nope", new_token(), "x" * 43 + "!"):
        with pytest.raises(InvalidGrant):
            await grants.poll(code, "tv")


# ---- the verification page's rules ----------------------------------------------------------


def verification(grants: DeviceGrants, clock: Clock, max_failures: int = 3) -> Verification:
    limiter = MemoryRateLimiter(clock=clock)
    return Verification(grants, limiter, GuessLimits(max_failures, 60))


async def test_failed_guesses_are_limited_per_address(grants: DeviceGrants, clock: Clock) -> None:
    _, user_code = await started(grants)
    v = verification(grants, clock)
    for _ in range(5):  # malformed input and the right code are not guesses
        with pytest.raises(MalformedUserCode):
            await v.lookup("ABC", "10.0.0.1")
        await v.lookup(format_user_code(user_code).lower(), "10.0.0.1")
    wrong = "BBBBBBBB" if user_code != "BBBBBBBB" else "CCCCCCCC"
    for _ in range(3):
        with pytest.raises(UnknownUserCode):
            await v.lookup(wrong, "10.0.0.1")
    with pytest.raises(RateLimitExceeded) as limited:
        await v.lookup(user_code, "10.0.0.1")
    assert limited.value.retry_after == 60
    assert "Try again in 60 seconds" in limited.value.description
    # Another address is not affected; the window ends.
    await v.lookup(user_code, "10.0.0.2")
    clock.now += 60
    await v.lookup(user_code, "10.0.0.1")


async def test_admin_scope_needs_an_admin(grants: DeviceGrants, clock: Clock) -> None:
    v = verification(grants, clock)
    device_code, user_code = await started(grants, "admin profile")
    grant = await v.lookup(user_code, "10.0.0.1")
    decided = await v.answer(grant, user("bob"), 1.0, approve=True)
    assert (decided.status, decided.error) == (DENIED, "invalid_scope")
    with pytest.raises(InvalidScope):
        await grants.poll(device_code, "tv")

    device_code, user_code = await started(grants, "admin profile")
    grant = await v.lookup(user_code, "10.0.0.1")
    decided = await v.answer(grant, user("root", is_admin=True), 1.0, approve=True)
    assert decided.status == APPROVED
    assert (await grants.poll(device_code, "tv")).user_id == "root"


def test_form_tokens_belong_to_the_browser_cookie() -> None:
    cookie, other = new_token(), new_token()
    check_form(cookie, form_token(cookie))
    for bad_cookie, token in [
        (other, form_token(cookie)),
        (None, form_token(cookie)),
        (cookie, None),
        (cookie, ""),
        ("short", form_token("short")),
    ]:
        with pytest.raises(CsrfFailure):
            check_form(bad_cookie, token)


# ---- registration ------------------------------------------------------------------------


@pytest.mark.parametrize("client_type", ["public", "confidential"])
def test_device_clients_need_no_redirect_uri(client_type: str) -> None:
    for grants in ([GRANT_TYPE], [GRANT_TYPE, "refresh_token"]):
        values = parse_new_client(
            {"name": "TV", "client_type": client_type, "grant_types": grants}, ("profile",)
        )
        check_client(values, frozenset({"profile"}))
