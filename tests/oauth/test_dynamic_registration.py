"""oauth/dynamic_registration.py and oauth/initial_tokens.py over a real store (SQLite and
PostgreSQL): initial access tokens spent atomically, registration access tokens, the
secret on an RFC 7592 replace, the per-IP limit."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio

from authly.backends.memory import MemoryRateLimiter
from authly.errors import InvalidRequest, InvalidToken, NotFound, RateLimitExceeded
from authly.oauth.client_metadata import InvalidClientMetadata
from authly.oauth.dynamic_registration import DynamicRegistration, Registered
from authly.oauth.grants import TokenLimits
from authly.oauth.initial_tokens import InitialTokens, parse_new_token
from authly.store import clients as client_repo
from authly.store import registrations as repo
from authly.store.db import Database, open_database
from tests.support.fakes import Clock

pytestmark = pytest.mark.both_stores

WEB = {"redirect_uris": ["https://app.example/cb"], "client_name": "App"}
IP = "203.0.113.7"


@pytest.fixture
def clock() -> Clock:
    return Clock(1_800_000_000.0)


@pytest.fixture
async def db(nursery: trio.Nursery, database_url: str) -> AsyncIterator[Database]:
    database = await open_database(nursery, database_url)
    try:
        yield database
    finally:
        database.close()


def service(db: Database, clock: Clock, mode: str, *, limit: int = 100) -> DynamicRegistration:
    return DynamicRegistration(
        db,
        MemoryRateLimiter(),
        mode=mode,
        limits=TokenLimits(limit, 3600),
        management_limits=TokenLimits(1000, 60),
        now=clock,
    )


async def register(reg: DynamicRegistration, body: Any = None, token: str | None = None) -> Any:
    await reg.admit(IP)
    return await reg.register(body or WEB, initial_token=token, client_ip=IP)


# --- initial access tokens --------------------------------------------------------------


def test_new_token_fields():
    assert parse_new_token({}) == ("", None, None)
    assert parse_new_token({"description": " ci ", "expires_in": 60, "max_uses": 1}) == (
        "ci",
        60,
        1,
    )
    for bad in (
        {"expires_in": 59},
        {"expires_in": "3600"},
        {"max_uses": 0},
        {"max_uses": True},
        {"description": "x" * 201},
        {"description": "a\tb"},
        {"token": "mine"},
    ):
        with pytest.raises(InvalidRequest):
            parse_new_token(bad)


async def test_token_mode_needs_a_valid_initial_access_token(db: Database, clock: Clock):
    tokens = InitialTokens(db, now=clock)
    reg = service(db, clock, "token")
    with pytest.raises(InvalidToken) as missing:
        await register(reg)
    assert missing.value.missing
    for wrong in ("nope", "init_" + "x" * 43, "init_" + "y" * 300):
        with pytest.raises(InvalidToken, match="unknown or was revoked"):
            await register(reg, token=wrong)
    shown, token = await tokens.create({"description": "ci"}, created_by="admin")
    registered = await register(reg, token=token)
    assert registered.client.name == "App"
    listed = await tokens.list()
    assert listed == [{**shown, "uses": 1}]
    assert "token_hash" not in shown
    assert token not in str(listed)


async def test_single_use_and_max_uses(db: Database, clock: Clock):
    tokens = InitialTokens(db, now=clock)
    reg = service(db, clock, "token")
    _, single = await tokens.create({"max_uses": 1}, created_by=None)
    await register(reg, token=single)
    with pytest.raises(InvalidToken, match="used up"):
        await register(reg, token=single)
    _, twice = await tokens.create({"max_uses": 2}, created_by=None)
    await register(reg, token=twice)
    await register(reg, token=twice)
    with pytest.raises(InvalidToken, match="used up"):
        await register(reg, token=twice)
    statuses = {t["max_uses"]: t["status"] for t in await tokens.list()}
    assert statuses == {1: "used_up", 2: "used_up"}


async def test_refused_metadata_spends_nothing(db: Database, clock: Clock):
    tokens = InitialTokens(db, now=clock)
    reg = service(db, clock, "token")
    _, single = await tokens.create({"max_uses": 1}, created_by=None)
    with pytest.raises(InvalidClientMetadata):
        await register(reg, {**WEB, "scope": "nope"}, token=single)
    await register(reg, token=single)


async def test_expired_and_revoked_tokens(db: Database, clock: Clock):
    tokens = InitialTokens(db, now=clock)
    reg = service(db, clock, "token")
    shown, token = await tokens.create({"expires_in": 600}, created_by=None)
    assert shown["expires_at"] == int(clock.now) + 600
    clock.now += 599
    await register(reg, token=token)
    clock.now += 1
    with pytest.raises(InvalidToken, match="expired"):
        await register(reg, token=token)
    assert (await tokens.list())[0]["status"] == "expired"
    await tokens.revoke(shown["id"])
    assert await tokens.list() == []
    with pytest.raises(InvalidToken, match="unknown or was revoked"):
        await register(reg, token=token)
    with pytest.raises(NotFound):
        await tokens.revoke(shown["id"])


async def test_concurrent_registrations_share_a_single_use_token_once(db: Database, clock: Clock):
    tokens = InitialTokens(db, now=clock)
    reg = service(db, clock, "token")
    _, single = await tokens.create({"max_uses": 1}, created_by=None)
    outcomes: list[str] = []

    async def attempt() -> None:
        try:
            await register(reg, token=single)
            outcomes.append("registered")
        except InvalidToken:
            outcomes.append("refused")

    async with trio.open_nursery() as nursery:
        for _ in range(6):
            nursery.start_soon(attempt)
    assert sorted(outcomes) == ["refused"] * 5 + ["registered"]


async def test_many_registrations_sharing_one_token_all_succeed_and_count_exactly(
    db: Database, clock: Clock
):
    """The use is spent by one conditional UPDATE of its own and given back when the
    registration fails. (Why on its own: on PostgreSQL, spent inside the SERIALIZABLE
    registration, concurrent registrations on one token conflicted until some ran out of
    retries; scripts/bench_registration.py at c=32 shows it, this test does not.)"""
    tokens = InitialTokens(db, now=clock)
    reg = service(db, clock, "token")
    _, shared = await tokens.create({"max_uses": 40}, created_by=None)
    outcomes: list[str] = []

    async def attempt(body: dict[str, object]) -> None:
        try:
            await register(reg, body, token=shared)
            outcomes.append("registered")
        except InvalidClientMetadata:
            outcomes.append("refused")

    async with trio.open_nursery() as nursery:
        for i in range(32):  # every fourth one is refused for its metadata
            nursery.start_soon(attempt, {**WEB, "scope": "nope"} if i % 4 == 0 else WEB)
    assert sorted(outcomes) == ["refused"] * 8 + ["registered"] * 24
    assert (await tokens.list())[0]["uses"] == 24  # the refused ones were given back


async def test_open_mode_ignores_any_token_and_closed_mode_is_not_found(db: Database, clock: Clock):
    assert (await register(service(db, clock, "open"), token="whatever")).client
    closed = service(db, clock, "closed")
    with pytest.raises(NotFound):
        await closed.admit(IP)
    with pytest.raises(NotFound):
        await closed.register(WEB, initial_token=None, client_ip=IP)


async def test_registrations_are_limited_per_address(db: Database, clock: Clock):
    reg = service(db, clock, "open", limit=2)
    await reg.admit(IP)
    await reg.admit(IP)
    with pytest.raises(RateLimitExceeded) as caught:
        await reg.admit(IP)
    assert caught.value.retry_after >= 1
    await reg.admit("198.51.100.1")  # another address has its own budget


# --- registration access tokens and RFC 7592 --------------------------------------------


async def test_registration_access_token_is_stored_hashed(db: Database, clock: Clock):
    reg = service(db, clock, "open")
    registered: Registered = await register(reg)
    token = registered.registration_access_token
    assert token.startswith("reg_")
    assert len(token) > 40
    stored = await db.run(repo.registration_token_hash, registered.client.client_id)
    assert stored is not None
    assert token not in stored
    assert registered.client_secret is not None
    assert registered.client.secret_hash != registered.client_secret
    assert registered.client.first_party is False


async def test_read_needs_the_right_token(db: Database, clock: Clock):
    reg = service(db, clock, "open")
    first = await register(reg)
    second = await register(reg)
    cid = first.client.client_id
    assert (await reg.read(cid, first.registration_access_token, client_ip=IP)) == first.client
    for client_id, token in [
        (cid, second.registration_access_token),  # another client's token
        (cid, first.registration_access_token + "x"),
        ("unknown", first.registration_access_token),
        ("x" * 200, first.registration_access_token),
        (cid, "reg_" + "a" * 300),
    ]:
        with pytest.raises(InvalidToken):
            await reg.read(client_id, token, client_ip=IP)


async def test_operator_clients_cannot_be_managed(db: Database, clock: Clock):
    reg = service(db, clock, "open")
    with pytest.raises(InvalidToken):
        await reg.read("authly", "reg_anything", client_ip=IP)
    with pytest.raises(InvalidToken):
        await reg.delete("authly", "reg_anything", client_ip=IP)
    assert await db.run(client_repo.get, "authly") is not None


async def test_replace_keeps_or_issues_secrets(db: Database, clock: Clock):
    reg = service(db, clock, "open")
    first = await register(reg, {**WEB, "token_endpoint_auth_method": "client_secret_basic"})
    cid, token = first.client.client_id, first.registration_access_token
    body = {**WEB, "client_id": cid, "token_endpoint_auth_method": "client_secret_post"}
    same = await reg.replace(cid, token, body, client_ip=IP)
    assert same.client_secret is None
    assert same.client.secret_hash == first.client.secret_hash
    assert same.client.auth_method == "client_secret_post"
    # Into client_secret_jwt: the server must keep the secret, so a new one is issued.
    jwt_body = {**body, "token_endpoint_auth_method": "client_secret_jwt"}
    moved = await reg.replace(cid, token, jwt_body, client_ip=IP)
    assert moved.client_secret is not None
    assert moved.client.jwt_secret == moved.client_secret
    # Back to a plain secret method: the same secret stays, the kept copy goes.
    back = await reg.replace(cid, token, body, client_ip=IP)
    assert back.client_secret is None
    assert back.client.jwt_secret is None
    assert back.client.secret_hash == moved.client.secret_hash
    # The registration access token is unchanged; the creation time too.
    assert back.registration_access_token == token
    assert back.client.created_at == first.client.created_at


async def test_replace_checks_client_id_secret_and_type(db: Database, clock: Clock):
    reg = service(db, clock, "open")
    first = await register(reg)
    cid, token, secret = (
        first.client.client_id,
        first.registration_access_token,
        first.client_secret,
    )
    with pytest.raises(InvalidClientMetadata, match="client_id"):
        await reg.replace(cid, token, WEB, client_ip=IP)
    with pytest.raises(InvalidClientMetadata, match="client_id"):
        await reg.replace(cid, token, {**WEB, "client_id": "other"}, client_ip=IP)
    with pytest.raises(InvalidClientMetadata, match="cannot choose"):
        await reg.replace(
            cid, token, {**WEB, "client_id": cid, "client_secret": "mine"}, client_ip=IP
        )
    ok = await reg.replace(
        cid, token, {**WEB, "client_id": cid, "client_secret": secret}, client_ip=IP
    )
    assert ok.client.secret_hash == first.client.secret_hash
    public = {**WEB, "client_id": cid, "token_endpoint_auth_method": "none"}
    with pytest.raises(InvalidClientMetadata, match="cannot move"):
        await reg.replace(cid, token, public, client_ip=IP)


async def test_delete_removes_the_client_and_its_token(db: Database, clock: Clock):
    reg = service(db, clock, "open")
    first = await register(reg)
    cid, token = first.client.client_id, first.registration_access_token
    await reg.delete(cid, token, client_ip=IP)
    assert await db.run(client_repo.get, cid) is None
    with pytest.raises(InvalidToken):
        await reg.read(cid, token, client_ip=IP)
    with pytest.raises(InvalidToken):
        await reg.delete(cid, token, client_ip=IP)
