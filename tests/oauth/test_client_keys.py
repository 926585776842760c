"""The keys of private_key_jwt clients (oauth/client_keys.py: what may be registered,
which keys verify) and the jwks_uri fetcher (oauth/jwks_fetch.py: cache, cooldown, one
fetch for concurrent misses)."""

from __future__ import annotations

import base64
import json

import pytest
import trio
import trio.testing
from cryptography.hazmat.primitives.asymmetric import rsa

from authly.backends.memory import MemoryCache
from authly.errors import InvalidRequest
from authly.oauth import client_keys
from authly.oauth.client_keys import MAX_JWKS_BYTES
from authly.oauth.jwks_fetch import JwksUnavailable, RemoteJwks, http_fetch
from tests.support.assertions import (
    URI,
    Fetcher,
    ec_key,
    jwks_server,
    jwks_text,
    public_jwks,
    rsa_key,
)
from tests.support.fakes import Clock


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# --- registrable keys -------------------------------------------------------------------


def test_public_rsa_and_ec_keys_are_registrable():
    text = client_keys.check_jwks(public_jwks(rsa_key("a"), ec_key("b")))
    assert [k["kid"] for k in json.loads(text)["keys"]] == ["a", "b"]
    assert len(client_keys.usable_keys(text)) == 2


def small_rsa_jwk() -> dict[str, str]:
    numbers = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()  # noqa: S505 (the point)
    n, e = numbers.public_numbers().n, numbers.public_numbers().e
    return {"kty": "RSA", "n": _b64(n.to_bytes(128, "big")), "e": _b64(e.to_bytes(3, "big"))}


def _jwk(key, **changes):
    return {**key.as_dict(private=False), **changes}


@pytest.mark.parametrize(
    ("jwks", "message"),
    [
        ({"keys": [rsa_key().as_dict(private=True)]}, "private or symmetric"),
        ({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}, "private or symmetric"),
        ({"keys": [_jwk(rsa_key(), use="enc")]}, "use must be sig"),
        ({"keys": [_jwk(rsa_key(), alg="ES256")]}, "alg must be one of"),
        ({"keys": [_jwk(rsa_key(), alg="HS256")]}, "alg must be one of"),
        ({"keys": [_jwk(rsa_key(), key_ops=["encrypt"])]}, "key_ops"),
        ({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "AAAA"}]}, "kty must be"),
        ({"keys": [{"kty": "EC", "crv": "P-384", "x": "AAAA", "y": "AAAA"}]}, "P-256"),
        ({"keys": [small_rsa_jwk()]}, "at least 2048 bits"),
        ({"keys": [_jwk(rsa_key(), e=5)]}, "not a valid RSA key"),
        ({"keys": [_jwk(rsa_key("same")), _jwk(ec_key("same"))]}, "appears twice"),
        ({"keys": [_jwk(rsa_key(None)), _jwk(ec_key("b"))]}, "every key needs a kid"),
        ({"keys": []}, "1 to 20 keys"),
        ({"keys": "none"}, "JWK Set"),
        ([], "JWK Set"),
        ({"keys": ["x"]}, "JSON object"),
    ],
)
def test_refused_jwks(jwks, message):
    with pytest.raises(InvalidRequest, match=message):
        client_keys.check_jwks(jwks)


@pytest.mark.parametrize(
    "uri", ["https://app.example/jwks.json", "http://127.0.0.1:9000/jwks", "http://localhost/k"]
)
def test_good_jwks_uris(uri):
    assert client_keys.check_jwks_uri(uri) == uri


@pytest.mark.parametrize(
    "uri", ["http://app.example/jwks", "ftp://app.example/k", "https://a b/", "", 5, "x" * 2001]
)
def test_bad_jwks_uris(uri):
    with pytest.raises(InvalidRequest, match="jwks_uri"):
        client_keys.check_jwks_uri(uri)


def test_method_keys_rules():
    client_keys.check_method_keys("private_key_jwt", "{}", None)
    client_keys.check_method_keys("private_key_jwt", None, "https://a.example/k")
    client_keys.check_method_keys("client_secret_basic", None, None)
    with pytest.raises(InvalidRequest, match="one, not both"):
        client_keys.check_method_keys("private_key_jwt", None, None)
    with pytest.raises(InvalidRequest, match="one, not both"):
        client_keys.check_method_keys("private_key_jwt", "{}", "https://a.example/k")
    with pytest.raises(InvalidRequest, match="private_key_jwt clients only"):
        client_keys.check_method_keys("client_secret_jwt", "{}", None)


def test_candidates_follow_kid_and_alg():
    rsa, ec = rsa_key("r"), ec_key("e")
    keys = client_keys.usable_keys(jwks_text(rsa, ec))
    assert [k.kid for k in client_keys.candidates(keys, None, "RS256")] == ["r"]
    assert [k.kid for k in client_keys.candidates(keys, None, "ES256")] == ["e"]
    assert [k.kid for k in client_keys.candidates(keys, "e", "ES256")] == ["e"]
    assert client_keys.candidates(keys, "e", "RS256") == []
    assert client_keys.candidates(keys, "unknown", "RS256") == []


def test_fetched_sets_skip_the_keys_they_cannot_use():
    document = json.dumps(
        {"keys": [{"kty": "oct", "k": "c2VjcmV0"}, rsa_key("r").as_dict(private=False), "x"]}
    )
    assert [k.kid for k in client_keys.usable_keys(document)] == ["r"]


# --- the jwks_uri fetcher ---------------------------------------------------------------


async def test_fetched_keys_are_cached_and_refreshed_at_most_once_per_cooldown():
    one, two = rsa_key("one"), rsa_key("two")
    fetch, clock = Fetcher(jwks_text(one), jwks_text(one, two), jwks_text(two)), Clock(0.0)
    remote = RemoteJwks(MemoryCache(), fetch=fetch, cooldown=30, clock=clock)
    assert [k.kid for k in await remote.keys(URI)] == ["one"]
    assert [k.kid for k in await remote.keys(URI)] == ["one"]
    assert fetch.calls == 1
    # A request no cached key fits refreshes at once (the client rotated its keys)...
    assert [k.kid for k in await remote.keys(URI, refresh=True)] == ["one", "two"]
    assert fetch.calls == 2
    # ...but another refresh within the cooldown gets the set just fetched.
    clock.now = 29
    assert [k.kid for k in await remote.keys(URI, refresh=True)] == ["one", "two"]
    assert fetch.calls == 2
    clock.now = 31
    assert [k.kid for k in await remote.keys(URI, refresh=True)] == ["two"]
    assert fetch.calls == 3


async def test_a_failed_fetch_is_not_repeated_within_the_cooldown():
    fetch, clock = Fetcher("fail", jwks_text(rsa_key("one"))), Clock(0.0)
    remote = RemoteJwks(MemoryCache(), fetch=fetch, cooldown=30, clock=clock)
    for _ in range(3):
        with pytest.raises(JwksUnavailable, match="HTTP 500"):
            await remote.keys(URI)
    assert fetch.calls == 1
    clock.now = 31
    assert len(await remote.keys(URI)) == 1


@pytest.mark.parametrize("document", ["not json", "[]", '{"keys": [{"kty": "oct", "k": "AA"}]}'])
async def test_a_document_without_usable_keys_is_unavailable(document):
    remote = RemoteJwks(MemoryCache(), fetch=Fetcher(document))
    with pytest.raises(JwksUnavailable):
        await remote.keys(URI)


async def test_concurrent_misses_share_one_fetch():
    fetch = Fetcher(jwks_text(rsa_key("one")))
    fetch.release = trio.Event()
    remote = RemoteJwks(MemoryCache(), fetch=fetch)
    results = []

    async def one() -> None:
        results.append(await remote.keys(URI))

    async with trio.open_nursery() as nursery:
        for _ in range(5):
            nursery.start_soon(one)
        await trio.testing.wait_all_tasks_blocked()
        fetch.release.set()
    assert fetch.calls == 1
    assert len(results) == 5


async def test_the_http_fetch_takes_only_a_small_200_answer():
    document = jwks_text(rsa_key("one"))
    with jwks_server(document) as (handler, url):
        assert await http_fetch(url, 5.0) == document
        handler.status = 302  # no redirects are followed
        with pytest.raises(JwksUnavailable, match="HTTP 302"):
            await http_fetch(url, 5.0)
        handler.status = 200
        handler.document = " " * (MAX_JWKS_BYTES + 1)
        with pytest.raises(JwksUnavailable, match="larger than"):
            await http_fetch(url, 5.0)
    with pytest.raises(JwksUnavailable, match="ConnectError"):
        await http_fetch(url, 5.0)  # nothing listens there any more
