"""Signing keys over a real store: algorithms, rotation, retention, other instances."""

from __future__ import annotations

import pytest
import trio
from joserfc import jwt
from joserfc.jwk import KeySet

from authly.backends.memory import MemoryCache
from authly.errors import InvalidRequest, InvalidToken
from authly.store import keys as key_repo
from authly.store.db import open_database
from authly.tokens.access import AccessTokens, UnknownSigningKey
from authly.tokens.jwks import JwksDocument
from authly.tokens.keys import ALGORITHMS, SigningKeys

RETENTION = 1000.0
START = 1_000_000.0


pytestmark = pytest.mark.both_stores


@pytest.fixture
def db_path(database_url) -> str:
    """The store (SQLite, then PostgreSQL): instances sharing it agree on keys."""
    return database_url


@pytest.fixture
async def db(nursery, db_path):
    database = await open_database(nursery, db_path)
    yield database
    database.close()


@pytest.fixture
def clock() -> list[float]:
    return [START]


async def open_keys(db, clock, **kwargs) -> SigningKeys:
    return await SigningKeys.open(db, retention=RETENTION, now=lambda: clock[0], **kwargs)


def access_tokens(keys: SigningKeys, clock: list[float], ttl: int = 60) -> AccessTokens:
    return AccessTokens(keys, issuer="http://i", audience="http://i", ttl=ttl, now=lambda: clock[0])


def published_kids(keys: SigningKeys) -> set[str]:
    return {k["kid"] for k in keys.jwks()["keys"]}


async def test_start_up_makes_one_current_key_per_algorithm_once(db, clock):
    first = await open_keys(db, clock)
    second = await open_keys(db, clock)  # another instance on the same store
    assert {i.alg for i in first.infos()} == set(ALGORITHMS)
    assert [i.kid for i in first.infos()] == [i.kid for i in second.infos()]
    assert {i.status for i in first.infos()} == {"current"}
    assert len(await db.run(key_repo.list_all)) == 3


@pytest.mark.parametrize("alg", ALGORITHMS)
async def test_every_algorithm_signs_and_verifies_against_the_published_jwks(db, clock, alg):
    keys = await open_keys(db, clock)
    key = keys.current(alg)
    token = jwt.encode({"alg": alg, "kid": key.kid}, {"sub": "u"}, key, algorithms=[alg])
    published = KeySet.import_key_set(keys.jwks())
    decoded = jwt.decode(token, published, algorithms=[alg])
    assert decoded.claims == {"sub": "u"}
    (jwk,) = [k for k in keys.jwks()["keys"] if k["kid"] == key.kid]
    assert jwk["alg"] == alg
    assert jwk["use"] == "sig"
    assert "d" not in jwk
    if alg == "EdDSA":
        assert (jwk["kty"], jwk["crv"]) == ("OKP", "Ed25519")


async def test_unknown_algorithms_are_refused(db, clock):
    keys = await open_keys(db, clock)
    with pytest.raises(InvalidRequest):
        keys.current("HS256")
    with pytest.raises(InvalidRequest):
        await keys.rotate("none")
    assert len(await db.run(key_repo.list_all)) == 3


async def test_rotation_keeps_old_tokens_verifying_until_the_retention_ends(db, clock):
    keys = await open_keys(db, clock)
    issuer = access_tokens(keys, clock)
    old_kid = keys.kid
    old_token = issuer.issue(subject="u", client_id="c", scope="profile")
    cache = MemoryCache(clock=lambda: clock[0])
    jwks = JwksDocument(keys, cache)
    assert old_kid in await jwks.json()

    clock[0] += 10
    rotated = await keys.rotate("RS256")
    await jwks.invalidate()
    assert rotated.kid == keys.kid != old_kid
    assert rotated.status == "current"
    new_token = issuer.issue(subject="u", client_id="c", scope="profile")
    assert jwt.decode(new_token, keys.keyset, algorithms=["RS256"]).header["kid"] == rotated.kid
    # A token signed before the rotation verifies (a fresh verifier: nothing remembered).
    assert access_tokens(keys, clock).verify(old_token).subject == "u"
    document = await jwks.json()
    assert old_kid in document
    assert rotated.kid in document
    (old,) = [i for i in keys.infos() if i.kid == old_kid]
    assert (old.status, old.retired_at, old.published_until) == (
        "retired",
        START + 10,
        START + 10 + RETENTION,
    )
    # The other algorithms' keys are untouched.
    assert {i.alg for i in keys.infos() if i.status == "current"} == set(ALGORITHMS)

    clock[0] = START + 10 + RETENTION - 1
    assert old_kid in published_kids(keys)
    assert old_kid in await jwks.json()  # the cached document, still right

    clock[0] += 1  # the retention is over: the key drops out by itself
    assert old_kid not in published_kids(keys)
    assert not keys.knows(old_kid)
    assert old_kid not in await jwks.json()  # cached no longer than the key was published
    assert rotated.kid in await jwks.json()
    (old,) = [i for i in keys.infos() if i.kid == old_kid]
    assert old.status == "expired"
    with pytest.raises(InvalidToken):
        access_tokens(keys, clock, ttl=2 * int(RETENTION)).verify(old_token)


async def test_a_long_lived_token_from_a_retired_key_verifies_until_the_key_expires(db, clock):
    keys = await open_keys(db, clock)
    long_lived = access_tokens(keys, clock, ttl=int(RETENTION) * 2)
    token = long_lived.issue(subject="u", client_id="c", scope="profile")
    await keys.rotate("RS256")
    clock[0] += RETENTION - 1
    assert access_tokens(keys, clock, ttl=1).verify(token).subject == "u"
    clock[0] += 1
    with pytest.raises(InvalidToken):
        access_tokens(keys, clock, ttl=1).verify(token)


async def test_another_instance_sees_a_rotation_when_it_reloads(nursery, db_path, clock):
    one = await open_database(nursery, db_path)
    two = await open_database(nursery, db_path)
    try:
        a = await open_keys(one, clock)
        b = await open_keys(two, clock)
        old = b.current("ES256").kid
        rotated = await a.rotate("ES256")
        assert b.current("ES256").kid == old  # until b reloads
        cache = MemoryCache(clock=lambda: clock[0])
        jwks = JwksDocument(b, cache)
        document = await jwks.json()  # a rebuilt document reloads first
        assert rotated.kid in document
        assert old in document
        assert b.current("ES256").kid == rotated.kid
        # The JWKS's cache entry is rebuilt only after its TTL: then it reloads again.
        second = await a.rotate("ES256")
        assert second.kid not in await jwks.json()
        clock[0] += jwks.ttl
        assert second.kid in await jwks.json()
    finally:
        one.close()
        two.close()


async def test_an_unknown_kid_reloads_once_then_verifies(nursery, db_path, clock):
    one = await open_database(nursery, db_path)
    two = await open_database(nursery, db_path)
    try:
        a = await open_keys(one, clock)
        b = await open_keys(two, clock, unknown_kid_interval=5.0)
        await a.rotate("RS256")
        token = access_tokens(a, clock).issue(subject="u", client_id="c", scope="profile")
        verifier = access_tokens(b, clock)
        with pytest.raises(UnknownSigningKey):
            verifier.verify(token)
        reloads = b.reloads
        assert (await verifier.verify_fresh(token)).subject == "u"
        assert b.reloads == reloads + 1
        assert b.kid == a.kid  # b signs with the new key from now on
        assert (await verifier.verify_fresh(token)).subject == "u"
        assert b.reloads == reloads + 1  # known now: no reload
    finally:
        one.close()
        two.close()


async def test_unknown_kid_reloads_are_rate_limited(db, clock):
    keys = await open_keys(db, clock, unknown_kid_interval=5.0)
    verifier = access_tokens(keys, clock)
    token = verifier.issue(subject="u", client_id="c", scope="profile")
    _, payload, signature = token.split(".")

    def forged(kid: str) -> str:
        head = jwt.encode({"alg": "RS256", "kid": kid}, {}, keys.active).split(".")[0]
        return f"{head}.{payload}.{signature}"

    before = keys.reloads
    for n in range(3):
        with pytest.raises(InvalidToken):
            await verifier.verify_fresh(forged(f"made-up-{n}"))
    assert keys.reloads == before + 1
    clock[0] += 5
    with pytest.raises(InvalidToken):
        await verifier.verify_fresh(forged("made-up-later"))
    assert keys.reloads == before + 2


async def test_concurrent_rotations_on_two_instances_leave_one_current_key(nursery, db_path, clock):
    one = await open_database(nursery, db_path)
    two = await open_database(nursery, db_path)
    try:
        a = await open_keys(one, clock)
        b = await open_keys(two, clock)
        async with trio.open_nursery() as inner:
            inner.start_soon(a.rotate, "EdDSA")
            inner.start_soon(b.rotate, "EdDSA")
        rows = [r for r in await one.run(key_repo.list_all) if r.alg == "EdDSA"]
        assert len(rows) == 3
        assert len([r for r in rows if r.retired_at is None]) == 1
        await a.reload()
        await b.reload()
        assert a.current("EdDSA").kid == b.current("EdDSA").kid == rows[0].kid
    finally:
        one.close()
        two.close()
