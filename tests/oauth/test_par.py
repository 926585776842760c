"""Pushed authorization requests (RFC 9126) in the domain: pushing, single use, expiry
and ownership over the memory session store and a fake clock; the registration rule of
``require_pushed_authorization_requests``."""

from __future__ import annotations

import re

import pytest
import trio

from authly.backends.memory import MemorySessionStore
from authly.errors import InvalidRequest
from authly.oauth.authorization import AuthorizationRequest
from authly.oauth.par import (
    POOL,
    PUSHED_TTL,
    REQUEST_URI_PREFIX,
    PushedRequests,
    UnknownRequestUri,
)
from authly.oauth.registration import check_client, parse_changes, parse_new_client
from authly.store.clients import ClientRow
from tests.support.fakes import Clock

REQUEST = AuthorizationRequest(
    client_id="app",
    client_name="The App",
    first_party=False,
    redirect_uri="https://app.example/cb",
    redirect_uri_given="https://app.example/cb",
    scope="openid profile",
    state="st-1",
    code_challenge="E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
    nonce="n-1",
    prompt="consent",
    max_age=300,
    login_hint="alice",
    claims_userinfo="email",
    response_mode="form_post",
)


@pytest.fixture
def pushed(store: MemorySessionStore, clock: Clock) -> PushedRequests:
    return PushedRequests(store, now=clock)


async def test_a_pushed_request_comes_back_whole_once(pushed, store):
    answer = await pushed.push(REQUEST)
    assert answer.expires_in == PUSHED_TTL == 60
    assert re.fullmatch(re.escape(REQUEST_URI_PREFIX) + r"[A-Za-z0-9_-]{43}", answer.request_uri)
    assert store.pool_size(POOL) == 1
    # The backend key is not the reference itself.
    reference = answer.request_uri.removeprefix(REQUEST_URI_PREFIX)
    assert await store.get("par:" + reference) is None
    assert await pushed.take(answer.request_uri, "app") == REQUEST
    assert store.pool_size(POOL) == 0
    with pytest.raises(UnknownRequestUri):
        await pushed.take(answer.request_uri, "app")


async def test_every_push_gets_its_own_request_uri(pushed):
    first, second = await pushed.push(REQUEST), await pushed.push(REQUEST)
    assert first.request_uri != second.request_uri
    assert await pushed.take(second.request_uri, "app") == REQUEST
    assert await pushed.take(first.request_uri, "app") == REQUEST


async def test_another_clients_request_uri_is_refused_and_left_to_its_owner(pushed):
    answer = await pushed.push(REQUEST)
    with pytest.raises(UnknownRequestUri):
        await pushed.take(answer.request_uri, "intruder")
    assert await pushed.take(answer.request_uri, "app") == REQUEST


async def test_it_expires_after_its_ttl(pushed, clock):
    answer = await pushed.push(REQUEST)
    clock.now += PUSHED_TTL - 1
    survivor = await pushed.push(REQUEST)
    assert await pushed.take(survivor.request_uri, "app") == REQUEST
    clock.now += 1
    with pytest.raises(UnknownRequestUri):
        await pushed.take(answer.request_uri, "app")


async def test_its_own_deadline_holds_even_where_the_backend_keeps_it(clock):
    # A backend that has not dropped the entry yet (a store purged later, another
    # instance's clock): the deadline written into the entry still counts.
    lenient = MemorySessionStore(clock=lambda: 0.0)
    pushed = PushedRequests(lenient, now=clock)
    answer = await pushed.push(REQUEST)
    clock.now += PUSHED_TTL
    with pytest.raises(UnknownRequestUri):
        await pushed.take(answer.request_uri, "app")


@pytest.mark.parametrize(
    "request_uri",
    [
        None,
        "",
        "urn:ietf:params:oauth:request_uri:",
        "urn:ietf:params:oauth:request_uri:short",
        "urn:ietf:params:oauth:request_uri:" + "A" * 44,
        "urn:ietf:params:oauth:request_uri:" + "!" * 43,
        "https://app.example/request.jwt",
        "A" * 43,
    ],
)
async def test_malformed_request_uris_are_unknown(pushed, request_uri):
    with pytest.raises(UnknownRequestUri):
        await pushed.take(request_uri, "app")


async def test_of_concurrent_uses_exactly_one_gets_it(pushed):
    answer = await pushed.push(REQUEST)
    results: list[object] = []

    async def use() -> None:
        try:
            results.append(await pushed.take(answer.request_uri, "app"))
        except UnknownRequestUri as exc:
            results.append(exc)

    async with trio.open_nursery() as nursery:
        for _ in range(5):
            nursery.start_soon(use)
    assert sum(1 for r in results if r == REQUEST) == 1
    assert sum(1 for r in results if isinstance(r, UnknownRequestUri)) == 4


async def test_the_pool_is_bounded(store, clock):
    pushed = PushedRequests(store, max_entries=3, now=clock)
    answers = []
    for _ in range(5):
        answers.append(await pushed.push(REQUEST))
        clock.now += 1
    assert store.pool_size(POOL) == 3
    with pytest.raises(UnknownRequestUri):
        await pushed.take(answers[0].request_uri, "app")  # the oldest were evicted
    assert await pushed.take(answers[-1].request_uri, "app") == REQUEST


# ---- registration ---------------------------------------------------------------------


def _web_client(**body):
    values = parse_new_client(
        {"name": "web", "client_type": "confidential", "redirect_uris": ["https://a.example/cb"]}
        | body,
        ("profile",),
    )
    check_client(values, frozenset({"profile"}))
    return values


def test_the_flag_defaults_to_off_and_can_be_set():
    assert _web_client().require_pushed_authorization_requests is False
    assert _web_client(
        require_pushed_authorization_requests=True
    ).require_pushed_authorization_requests


@pytest.mark.parametrize("value", ["yes", 1, None, "true"])
def test_the_flag_is_a_boolean(value):
    with pytest.raises(InvalidRequest, match="must be true or false"):
        _web_client(require_pushed_authorization_requests=value)


def test_the_flag_needs_the_authorization_code_grant():
    with pytest.raises(InvalidRequest, match="needs authorization_code"):
        _web_client(grant_types=["client_credentials"], require_pushed_authorization_requests=True)


def test_an_update_keeps_the_flag_unless_named():
    row = ClientRow(
        client_id="c",
        name="c",
        secret_hash="x",
        auth_method="client_secret_basic",
        redirect_uris=("https://a.example/cb",),
        grant_types=("authorization_code",),
        scopes=("profile",),
        first_party=False,
        created_at=0.0,
        updated_at=0.0,
        require_pushed_authorization_requests=True,
    )
    assert parse_changes(row, {"name": "d"}).require_pushed_authorization_requests is True
    changed = parse_changes(row, {"require_pushed_authorization_requests": False})
    assert changed.require_pushed_authorization_requests is False
    assert row.public()["require_pushed_authorization_requests"] is True
