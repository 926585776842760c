"""Client assertions (RFC 7523 §2.2 / OIDC Core §9): the claim checks, parsing and the
verifier, without HTTP (the keys and the jwks_uri fetcher: test_client_keys.py)."""

from __future__ import annotations

import base64

import pytest

from authly.backends.memory import MemoryCache
from authly.errors import InvalidClient, InvalidRequest
from authly.oauth.assertions import (
    LEEWAY,
    MAX_LIFETIME,
    ClientAssertions,
    check_claims,
    claimed_client_id,
    peek,
)
from authly.oauth.clients import credentials_from
from authly.oauth.jwks_fetch import RemoteJwks
from authly.store.clients import ClientRow
from tests.support.assertions import (
    ASSERTION_TYPE,
    URI,
    Fetcher,
    ec_key,
    jwks_text,
    rsa_key,
    sign,
)
from tests.support.fakes import GatedCache, race_two

ISSUER = "https://as.example"
TOKEN = f"{ISSUER}/api/v1/oauth/token"
AUDIENCES = {ISSUER, TOKEN}
NOW = 1_800_000_000.0
SECRET = "s" * 43


def claims(**changes):
    base = {"iss": "app", "sub": "app", "aud": TOKEN, "exp": NOW + 60, "iat": NOW, "jti": "j1"}
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def check(**changes):
    return check_claims(claims(**changes), client_id="app", audiences=AUDIENCES, now=NOW)


# --- claims -----------------------------------------------------------------------------


def test_good_claims_are_remembered_until_they_could_no_longer_be_accepted():
    checked = check()
    assert checked.jti == "j1"
    assert checked.remember_until == NOW + 60 + LEEWAY


@pytest.mark.parametrize("aud", [ISSUER, TOKEN, ["https://other.example", TOKEN]])
def test_aud_may_name_the_issuer_or_the_token_endpoint(aud):
    check(aud=aud)


def test_a_long_exp_with_a_recent_iat_is_accepted_for_max_lifetime_only():
    # Authlib signs for an hour by default: accepted, but only within MAX_LIFETIME of iat.
    checked = check(exp=NOW + 3600, iat=NOW - 10)
    assert checked.remember_until == NOW - 10 + MAX_LIFETIME + LEEWAY


def test_exp_within_the_leeway_is_still_accepted():
    check(exp=NOW - LEEWAY + 1, iat=NOW - 100)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"iss": "other"}, "iss and sub"),
        ({"sub": "other"}, "iss and sub"),
        ({"iss": None}, "iss and sub"),
        ({"aud": None}, "aud"),
        ({"aud": "https://evil.example/token"}, "aud"),
        ({"aud": [1, 2]}, "aud"),
        ({"aud": {"x": TOKEN}}, "aud"),
        ({"exp": None}, "no exp"),
        ({"exp": NOW - LEEWAY - 1, "iat": NOW - 100}, "expired"),
        ({"exp": "soon"}, "must be a number"),
        ({"exp": True}, "must be a number"),
        ({"exp": float("nan")}, "must be a number"),
        ({"iat": NOW + LEEWAY + 5}, "iat is in the future"),
        ({"nbf": NOW + LEEWAY + 5}, "not valid yet"),
        ({"iat": None, "exp": NOW + MAX_LIFETIME + LEEWAY + 5}, "lives too long"),
        ({"iat": NOW - MAX_LIFETIME - LEEWAY - 5, "exp": NOW + 60}, "too old"),
        ({"jti": None}, "jti"),
        ({"jti": ""}, "jti"),
        ({"jti": 7}, "jti"),
        ({"jti": "x" * 257}, "jti"),
    ],
)
def test_bad_claims_are_invalid_client(changes, message):
    with pytest.raises(InvalidClient, match=message):
        check(**changes)


def test_without_iat_a_short_exp_is_enough():
    assert check(iat=None, exp=NOW + 120).remember_until == NOW + 120 + LEEWAY


# --- parsing ----------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not-a-jwt",
        "a.b",
        "a.b.c.d.e",  # a JWE's shape
        "!!!.@@@.###",
        _b64(b'{"alg":"RS256"}') + "." + _b64(b"[1, 2]") + ".sig",
        _b64(b'{"alg":"RS256"}') + "." + _b64(b"\xff\xfe") + ".sig",
        _b64(b"[]") + "." + _b64(b"{}") + ".sig",
        _b64(b'{"alg": 5}') + "." + _b64(b"{}") + ".sig",
        "é.é.é",
        "x" * 9000,
    ],
)
def test_what_is_not_a_signed_jwt_is_invalid_client(text):
    with pytest.raises(InvalidClient):
        peek(text)


def test_the_client_is_read_from_sub():
    assert claimed_client_id(sign(rsa_key(), "app", TOKEN)) == "app"
    with pytest.raises(InvalidClient, match="sub"):
        claimed_client_id(sign(rsa_key(), "app", TOKEN, sub=None))


def test_credentials_name_the_assertion():
    creds = credentials_from(
        None, {"client_assertion_type": ASSERTION_TYPE, "client_assertion": "x"}
    )
    assert (creds.method, creds.assertion, creds.client_id) == ("client_assertion", "x", None)


@pytest.mark.parametrize(
    ("authorization", "params", "error"),
    [
        ("Basic YXBwOnM=", {"client_assertion_type": ASSERTION_TYPE, "client_assertion": "x"},
         InvalidRequest),
        (None, {"client_assertion_type": ASSERTION_TYPE, "client_assertion": "x",
                "client_secret": "s"}, InvalidRequest),
        (None, {"client_assertion_type": ASSERTION_TYPE}, InvalidRequest),
        (None, {"client_assertion": "x"}, InvalidRequest),
        (None, {"client_assertion_type": "urn:other", "client_assertion": "x"}, InvalidClient),
    ],
)  # fmt: skip
def test_malformed_assertion_requests(authorization, params, error):
    with pytest.raises(error):
        credentials_from(authorization, params)


# --- the verifier -----------------------------------------------------------------------


def row(method: str, **changes) -> ClientRow:
    base = ClientRow(
        client_id="app",
        name="App",
        secret_hash=None,
        auth_method=method,
        redirect_uris=(),
        grant_types=("client_credentials",),
        scopes=(),
        first_party=False,
        created_at=0,
        updated_at=0,
    )
    return base.with_changes(**changes)


def verifier(*documents: str) -> tuple[ClientAssertions, Fetcher]:
    fetch = Fetcher(*documents) if documents else Fetcher("fail")
    cache = MemoryCache()
    return ClientAssertions(cache, RemoteJwks(cache, fetch=fetch), issuer=ISSUER), fetch


async def test_private_key_jwt_with_inline_keys_and_single_use():
    key = rsa_key("k")
    client = row("private_key_jwt", jwks=jwks_text(key))
    assertions, _ = verifier()
    for alg in ("RS256", "PS256"):
        jwt_text = sign(key, "app", TOKEN, alg=alg)
        await assertions.verify(client, jwt_text, endpoint=None)
        with pytest.raises(InvalidClient, match="already used"):
            await assertions.verify(client, jwt_text, endpoint=None)
    ec = ec_key("e")
    ec_client = row("private_key_jwt", jwks=jwks_text(ec))
    await assertions.verify(ec_client, sign(ec, "app", ISSUER, alg="ES256"), endpoint=None)


async def test_the_endpoint_called_is_an_accepted_audience():
    key = rsa_key("k")
    client = row("private_key_jwt", jwks=jwks_text(key))
    assertions, _ = verifier()
    introspect = f"{ISSUER}/api/v1/oauth/introspect"
    with pytest.raises(InvalidClient, match="aud"):
        await assertions.verify(client, sign(key, "app", introspect), endpoint=None)
    await assertions.verify(client, sign(key, "app", introspect), endpoint=introspect)


async def test_algorithms_must_fit_the_method():
    key = rsa_key("k")
    pkjwt = row("private_key_jwt", jwks=jwks_text(key))
    secret_client = row("client_secret_jwt", jwt_secret=SECRET)
    assertions, _ = verifier()
    with pytest.raises(InvalidClient, match="private_key_jwt assertion is signed with"):
        await assertions.verify(pkjwt, sign(SECRET, "app", TOKEN, alg="HS256"), endpoint=None)
    with pytest.raises(InvalidClient, match="client_secret_jwt assertion is signed with"):
        await assertions.verify(secret_client, sign(key, "app", TOKEN), endpoint=None)
    unsigned = sign(key, "app", TOKEN).rsplit(".", 2)
    none_header = _b64(b'{"alg":"none"}')
    with pytest.raises(InvalidClient, match="signed with"):
        await assertions.verify(pkjwt, f"{none_header}.{unsigned[1]}.", endpoint=None)
    with pytest.raises(InvalidClient, match="must authenticate with client_secret_basic"):
        await assertions.verify(row("client_secret_basic"), sign(key, "app", TOKEN), endpoint=None)


async def test_client_secret_jwt_uses_the_kept_secret():
    assertions, _ = verifier()
    client = row("client_secret_jwt", jwt_secret=SECRET)
    for alg in ("HS256", "HS384", "HS512"):
        await assertions.verify(client, sign(SECRET, "app", TOKEN, alg=alg), endpoint=None)
    with pytest.raises(InvalidClient, match="does not verify"):
        await assertions.verify(client, sign("t" * 43, "app", TOKEN, alg="HS256"), endpoint=None)
    with pytest.raises(InvalidClient, match="rotate its secret"):
        await assertions.verify(
            row("client_secret_jwt"), sign(SECRET, "app", TOKEN, alg="HS256"), endpoint=None
        )


async def test_a_wrong_key_or_an_unknown_kid_is_refused():
    key = rsa_key("k")
    client = row("private_key_jwt", jwks=jwks_text(key))
    assertions, _ = verifier()
    with pytest.raises(InvalidClient, match="does not verify"):
        await assertions.verify(client, sign(rsa_key("k"), "app", TOKEN), endpoint=None)
    with pytest.raises(InvalidClient, match="No key registered"):
        await assertions.verify(client, sign(rsa_key("other"), "app", TOKEN), endpoint=None)
    _, body, signature = sign(key, "app", TOKEN).split(".")
    odd_kid = _b64(b'{"alg":"RS256","kid":5}')
    with pytest.raises(InvalidClient):
        await assertions.verify(client, f"{odd_kid}.{body}.{signature}", endpoint=None)


async def test_an_unknown_kid_fetches_the_jwks_uri_again_once():
    old, new = rsa_key("old"), rsa_key("new")
    assertions, fetch = verifier(jwks_text(old), jwks_text(old, new))
    assertions.remote = RemoteJwks(assertions.cache, fetch=fetch, cooldown=0)
    client = row("private_key_jwt", jwks_uri=URI)
    await assertions.verify(client, sign(old, "app", TOKEN), endpoint=None)
    assert fetch.calls == 1
    await assertions.verify(client, sign(new, "app", TOKEN), endpoint=None)  # rotated
    assert fetch.calls == 2
    with pytest.raises(InvalidClient, match="No key registered"):
        await assertions.verify(client, sign(rsa_key("never"), "app", TOKEN), endpoint=None)
    assert fetch.calls == 3  # once for that request, not more
    # A known kid whose signature fails is not a rotation: no fetch.
    with pytest.raises(InvalidClient, match="does not verify"):
        await assertions.verify(client, sign(rsa_key("old"), "app", TOKEN), endpoint=None)
    assert fetch.calls == 3


async def test_without_kid_a_key_that_does_not_verify_fetches_again_once():
    old, new = rsa_key(None), rsa_key(None)
    assertions, fetch = verifier(jwks_text(old), jwks_text(old, new))
    client = row("private_key_jwt", jwks_uri=URI)
    await assertions.verify(client, sign(old, "app", TOKEN), endpoint=None)
    await assertions.verify(client, sign(new, "app", TOKEN), endpoint=None)
    assert fetch.calls == 2
    with pytest.raises(InvalidClient, match="does not verify"):
        await assertions.verify(client, sign(rsa_key(None), "app", TOKEN), endpoint=None)
    assert fetch.calls == 2  # within the cooldown: the set just fetched


async def test_an_unreachable_jwks_uri_is_invalid_client():
    assertions, _ = verifier("fail")
    client = row("private_key_jwt", jwks_uri=URI)
    with pytest.raises(InvalidClient, match="jwks_uri could not be used: HTTP 500"):
        await assertions.verify(client, sign(rsa_key(), "app", TOKEN), endpoint=None)


async def test_one_process_lets_one_of_two_concurrent_uses_of_a_jti_through():
    key = rsa_key("k")
    client = row("private_key_jwt", jwks=jwks_text(key))
    assertions, _ = verifier()
    cache = GatedCache()
    assertions.cache = cache
    jwt_text = sign(key, "app", TOKEN)

    async def use() -> None:
        await assertions.verify(client, jwt_text, endpoint=None)

    outcomes = await race_two(cache, use, InvalidClient)
    assert outcomes == ["The client assertion was already used (jti).", "ok"]
