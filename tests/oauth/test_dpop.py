"""DPoP proof validation (RFC 9449 §4.3), without HTTP: every check of oauth/dpop.py,
the nonces of oauth/dpop_nonce.py and the replay record."""

from __future__ import annotations

import base64
import hashlib
import json
import random

import pytest
import trio
from joserfc import jws
from joserfc.jwk import OctKey

from authly.backends.memory import MemoryCache
from authly.oauth.dpop import (
    IAT_WINDOW,
    MAX_PROOF,
    DPoPVerifier,
    InvalidDPoPProof,
    UseDPoPNonce,
    access_token_hash,
    normalize_url,
)
from authly.oauth.dpop_nonce import DPoPNonces
from tests.support.dpop import DPoPKey, b64url, unsigned
from tests.support.fakes import Clock, GatedCache, race_two

URL = "https://as.example/api/v1/oauth/token"
NOW = 1_800_000_000.0


def verifier(cache: MemoryCache | None = None, nonces: DPoPNonces | None = None) -> DPoPVerifier:
    return DPoPVerifier(cache or MemoryCache(), nonces=nonces, now=Clock(NOW))


@pytest.fixture(scope="module")
def key() -> DPoPKey:
    return DPoPKey("ES256")


async def refused(proof: str | list[str], match: str, **kwargs: object) -> None:
    values = proof if isinstance(proof, list) else [proof]
    kwargs.setdefault("method", "POST")
    kwargs.setdefault("url", URL)
    with pytest.raises(InvalidDPoPProof, match=match):
        await verifier().verify(values, **kwargs)  # type: ignore[arg-type]


# --- accepted proofs ---------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["ES256", "RS256", "PS256", "EdDSA"])
async def test_a_good_proof_gives_its_keys_thumbprint(alg):
    client = DPoPKey(alg)
    proof = await verifier().verify([client.proof("POST", URL, iat=NOW)], method="POST", url=URL)
    assert proof.jkt == client.jkt
    assert len(proof.jkt) == 43


async def test_htu_is_compared_without_query_and_fragment_after_normalisation(key):
    for htu in (
        "https://AS.example/api/v1/oauth/token",
        "HTTPS://as.example:443/api/v1/oauth/token",
        "https://as.example/api/v1/oauth/token?x=1",
        "https://as.example/api/v1/oauth/token#frag",
    ):
        proof = key.proof("POST", htu, iat=NOW)
        assert (await verifier().verify([proof], method="POST", url=URL)).jkt == key.jkt


async def test_iat_may_be_off_by_the_window_either_way(key):
    for iat in (NOW - IAT_WINDOW, NOW + IAT_WINDOW):
        await verifier().verify([key.proof("POST", URL, iat=iat)], method="POST", url=URL)


async def test_with_an_access_token_ath_must_be_its_hash(key):
    proof = key.proof("GET", URL, iat=NOW, access_token="the-token")
    await verifier().verify([proof], method="GET", url=URL, access_token="the-token")
    assert access_token_hash("the-token") == b64url(hashlib.sha256(b"the-token").digest())


# --- RFC 9449 §4.3: each refusal ---------------------------------------------------------


async def test_exactly_one_header(key):
    await refused([], "exactly one DPoP header")
    proof = key.proof("POST", URL, iat=NOW)
    await refused([proof, proof], "exactly one DPoP header")


@pytest.mark.parametrize(
    "text",
    ["", "not-a-jwt", "a.b.c", "é.é.é", "x" * (MAX_PROOF + 1), "eyJ9.e30.", "..", "e30.e30.e30"],
)
async def test_not_a_jwt(text):
    await refused(text, "not a signed JWT|at most|typ")


async def test_payload_must_be_an_object(key):
    proof = jws.serialize_compact(
        {"typ": "dpop+jwt", "alg": "ES256", "jwk": key.public_jwk}, b"[1, 2]", key.key
    )
    await refused(proof, "not a JSON object")


@pytest.mark.parametrize("typ", ["JWT", "at+jwt", None])
async def test_wrong_typ(key, typ):
    await refused(key.proof("POST", URL, iat=NOW, header={"typ": typ}), "typ must be dpop\\+jwt")
    proof = unsigned({"typ": 7, "alg": "ES256", "jwk": key.public_jwk}, {}, b"sig")
    await refused(proof, "typ must be dpop\\+jwt")


async def test_alg_none_is_refused(key):
    claims = {"jti": "j", "htm": "POST", "htu": URL, "iat": NOW}
    proof = unsigned({"typ": "dpop+jwt", "alg": "none", "jwk": key.public_jwk}, claims)
    await refused(proof, "signed with one of")


async def test_hs256_is_refused():
    secret = OctKey.generate_key(256)
    claims = b'{"jti": "j", "htm": "POST", "htu": "%s", "iat": %d}' % (URL.encode(), NOW)
    header = {"typ": "dpop+jwt", "alg": "HS256", "jwk": secret.as_dict()}
    proof = jws.serialize_compact(header, claims, secret, algorithms=["HS256"])
    await refused(proof, "signed with one of")


async def test_unsupported_asymmetric_alg_is_refused(key):
    proof = unsigned({"typ": "dpop+jwt", "alg": "RS512", "jwk": key.public_jwk}, {}, b"sig")
    await refused(proof, "signed with one of")


async def test_missing_jwk(key):
    await refused(key.proof("POST", URL, iat=NOW, header={"jwk": None}), "no jwk")
    proof = unsigned({"typ": "dpop+jwt", "alg": "ES256", "jwk": "text"}, {}, b"sig")
    await refused(proof, "no jwk")


async def test_private_jwk_is_refused(key):
    private = dict(key.key.as_dict(private=True))
    await refused(key.proof("POST", URL, iat=NOW, header={"jwk": private}), "private")


async def test_jwk_must_fit_the_alg(key):
    rsa = DPoPKey("RS256")
    await refused(key.proof("POST", URL, iat=NOW, header={"jwk": rsa.public_jwk}), "kty EC")
    p384 = {**key.public_jwk, "crv": "P-384"}
    await refused(key.proof("POST", URL, iat=NOW, header={"jwk": p384}), "P-256")
    broken = {**key.public_jwk, "x": "AAAA"}
    await refused(key.proof("POST", URL, iat=NOW, header={"jwk": broken}), "not a valid EC")


async def test_small_rsa_keys_are_refused():
    small = {"kty": "RSA", "e": "AQAB", "n": b64url((1 << 1023 | 1).to_bytes(128, "big"))}
    proof = unsigned({"typ": "dpop+jwt", "alg": "RS256", "jwk": small}, {}, b"sig")
    await refused(proof, "at least 2048 bits")


async def test_bad_signature(key):
    other = DPoPKey("ES256")
    forged = other.proof("POST", URL, iat=NOW, header={"jwk": key.public_jwk})
    await refused(forged, "signature does not verify")
    head, payload, _ = key.proof("POST", URL, iat=NOW).split(".")
    await refused(f"{head}.{payload}.{b64url(b'x' * 64)}", "signature does not verify")


async def test_htm_mismatch(key):
    await refused(key.proof("GET", URL, iat=NOW), "htm must be POST")
    await refused(key.proof("post", URL, iat=NOW), "htm must be POST")


@pytest.mark.parametrize(
    "htu",
    [
        "https://as.example/api/v1/oauth/par",
        "http://as.example/api/v1/oauth/token",
        "https://evil.example/api/v1/oauth/token",
        "https://as.example:8443/api/v1/oauth/token",
        "https://as.example/api/v1/oauth/token/",
        "https://user@as.example/api/v1/oauth/token",
        "https://as.example:99999/api/v1/oauth/token",
        "/api/v1/oauth/token",
        "",
    ],
)
async def test_htu_mismatch(key, htu):
    await refused(key.proof("POST", htu, iat=NOW), "htu must be")


async def test_htu_must_be_a_string(key):
    await refused(key.proof("POST", URL, iat=NOW, claims={"htu": ["x"]}), "htu must be")


@pytest.mark.parametrize("iat", [NOW - IAT_WINDOW - 1, NOW + IAT_WINDOW + 1, NOW - 86400])
async def test_iat_outside_the_window(key, iat):
    await refused(key.proof("POST", URL, iat=iat), "iat must be within")


@pytest.mark.parametrize("iat", ["1800000000", True, None, float("nan")])
async def test_iat_must_be_a_number(key, iat):
    claims = {"iat": iat} if iat is not None else {"iat": None}
    if isinstance(iat, float):
        head = {"typ": "dpop+jwt", "alg": "ES256", "jwk": key.public_jwk}
        body = b'{"jti": "j", "htm": "POST", "htu": "%s", "iat": NaN}' % URL.encode()
        await refused(jws.serialize_compact(head, body, key.key), "iat must be a number")
        return
    await refused(key.proof("POST", URL, iat=NOW, claims=claims), "iat must be a number")


@pytest.mark.parametrize("jti", [None, "", 12, "j" * 257])
async def test_jti_is_required(key, jti):
    claims = {"jti": jti} if jti is not None else {"jti": None}
    proof = key.proof("POST", URL, iat=NOW, claims=claims)
    if jti == "":
        proof = key.proof("POST", URL, iat=NOW, claims={"jti": ""})
    await refused(proof, "jti")


async def test_a_jti_is_used_once(key):
    check = verifier()
    proof = key.proof("POST", URL, iat=NOW, jti="once")
    await check.verify([proof], method="POST", url=URL)
    with pytest.raises(InvalidDPoPProof, match="already used"):
        await check.verify([proof], method="POST", url=URL)
    # The same jti from another key is another proof.
    await check.verify([DPoPKey().proof("POST", URL, iat=NOW, jti="once")], method="POST", url=URL)


async def test_the_jti_record_lives_until_iat_leaves_the_window(key):
    cache = MemoryCache()
    check = DPoPVerifier(cache, now=Clock(NOW))
    await check.verify([key.proof("POST", URL, iat=NOW - 10, jti="j1")], method="POST", url=URL)
    assert await cache.exists(f"dpop:jti:{key.jkt}:j1")


async def test_missing_or_wrong_ath(key):
    kwargs = {"method": "GET", "access_token": "the-token"}
    await refused(key.proof("GET", URL, iat=NOW), "ath must be", **kwargs)
    wrong = key.proof("GET", URL, iat=NOW, access_token="another-token")
    await refused(wrong, "ath must be", **kwargs)


# --- nonces ------------------------------------------------------------------------------


def nonces(clock: Clock) -> DPoPNonces:
    return DPoPNonces(b"k" * 32, period=120, now=clock)


async def test_missing_or_wrong_nonce_is_use_dpop_nonce(key):
    clock = Clock(NOW)
    source = nonces(clock)
    check = DPoPVerifier(MemoryCache(), nonces=source, now=clock)
    for proof in (key.proof("POST", URL, iat=NOW), key.proof("POST", URL, iat=NOW, nonce="x")):
        with pytest.raises(UseDPoPNonce) as caught:
            await check.verify([proof], method="POST", url=URL)
        assert caught.value.nonce == source.current()
        assert caught.value.headers() == {"DPoP-Nonce": source.current()}
        assert caught.value.body()["error"] == "use_dpop_nonce"
        assert caught.value.status_code == 400
    good = key.proof("POST", URL, iat=NOW, nonce=source.current())
    assert (await check.verify([good], method="POST", url=URL)).jkt == key.jkt


async def test_a_nonce_lasts_its_bucket_and_the_next():
    clock = Clock(NOW)
    source = nonces(clock)
    nonce = source.current()
    assert len(nonce) == 22
    clock.now += 120
    assert source.check(nonce)
    assert source.current() != nonce
    clock.now += 120
    assert not source.check(nonce)
    assert not source.check("")
    assert not source.check("x" * 100)


async def test_another_key_makes_other_nonces():
    clock = Clock(NOW)
    assert not DPoPNonces(b"a" * 32, now=clock).check(DPoPNonces(b"b" * 32, now=clock).current())


# --- concurrency and fuzzing -------------------------------------------------------------


async def test_of_two_concurrent_identical_proofs_exactly_one_passes(key):
    cache = GatedCache()
    check = DPoPVerifier(cache, now=Clock(NOW))
    proof = key.proof("POST", URL, iat=NOW)

    async def use() -> None:
        await check.verify([proof], method="POST", url=URL)

    outcomes = await race_two(cache, use, InvalidDPoPProof)
    assert outcomes == ["The DPoP proof was already used (jti).", "ok"]


async def test_many_concurrent_copies_let_one_through(key):
    check = verifier()
    proof = key.proof("POST", URL, iat=NOW)
    passed: list[int] = []

    async def use(i: int) -> None:
        try:
            await check.verify([proof], method="POST", url=URL)
        except InvalidDPoPProof:
            return
        passed.append(i)

    async with trio.open_nursery() as nursery:
        for i in range(20):
            nursery.start_soon(use, i)
    assert len(passed) == 1


async def test_fuzzed_headers_are_only_ever_invalid_dpop_proof(key):
    rng = random.Random(9449)
    good = key.proof("POST", URL, iat=NOW)
    alphabet = 'abcXYZ019-_.=+/ "{}\\é\x00'
    samples = [
        "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 120))) for _ in range(200)
    ]
    for _ in range(200):  # a good proof with one character changed, cut or doubled
        i = rng.randrange(len(good))
        samples.append(good[:i] + rng.choice(alphabet) + good[i + 1 :])
        samples.append(good[:i])
        samples.append(good + good[i:])
    header = base64.urlsafe_b64encode(b'{"typ":"dpop+jwt","alg":"ES256","jwk":[]}').decode()
    samples += [f"{header}.e30.AA", f"{header.rstrip('=')}.e30.AA"]
    check = verifier()
    for sample in samples:
        try:
            await check.verify([sample], method="POST", url=URL)
        except InvalidDPoPProof:
            continue


def test_normalize_url():
    assert normalize_url("HTTPS://Ex.COM:443") == "https://ex.com/"
    assert normalize_url("http://ex.com:80/a?b#c") == "http://ex.com/a"
    assert normalize_url("http://[::1]:8000/a") == "http://[::1]:8000/a"
    assert normalize_url("ftp://ex.com/") is None
    assert normalize_url("https://ex.com:bad/") is None
    assert normalize_url("https:///path") is None


ODD_VALUES = [None, True, 0, -1.5, 1e308, "", "x", [], ["ES256"], {}, {"a": [1]}, "é" * 3]


async def test_odd_json_types_in_every_member_are_invalid_dpop_proof(key):
    rng = random.Random(4)
    check = DPoPVerifier(MemoryCache(), nonces=DPoPNonces(b"k" * 32), now=Clock(NOW))
    good_header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": key.public_jwk}
    for _ in range(300):
        header = dict(good_header)
        claims = {"jti": "j", "htm": "POST", "htu": URL, "iat": NOW, "ath": "a", "nonce": "n"}
        target = rng.choice(["header", "jwk", "claims"])
        if target == "header":
            header[rng.choice(["typ", "alg", "jwk", "crit", "kid"])] = rng.choice(ODD_VALUES)
            proof = unsigned(header, claims, b"sig")
        elif target == "jwk":
            jwk = dict(key.public_jwk)
            jwk[rng.choice(["kty", "crv", "x", "y", "kid", "d"])] = rng.choice(ODD_VALUES)
            proof = unsigned({**header, "jwk": jwk}, claims, b"sig")
        else:
            claims[rng.choice(list(claims))] = rng.choice(ODD_VALUES)
            payload = json.dumps(claims).encode()
            proof = jws.serialize_compact(good_header, payload, key.key)
        with pytest.raises((InvalidDPoPProof, UseDPoPNonce)):
            await check.verify([proof], method="POST", url=URL, access_token="t")
