"""Access token verification, including the verified-token cache."""

import pytest

from authly.errors import InvalidToken
from authly.store.keys import SigningKeyRow
from authly.tokens.access import USERINFO_CLAIMS, VERIFIED_CACHE_SIZE, AccessTokens
from authly.tokens.keys import SigningKeys, generate_rsa_key


@pytest.fixture(scope="module")
def keys() -> SigningKeys:
    kid, alg, pem = generate_rsa_key()
    return SigningKeys([SigningKeyRow(kid, alg, pem, 0.0)])


def tokens(keys: SigningKeys, clock: list[float]) -> AccessTokens:
    return AccessTokens(keys, issuer="http://i", audience="http://i", ttl=60, now=lambda: clock[0])


def test_a_remembered_token_still_expires(keys):
    clock = [1_000_000.0]
    access = tokens(keys, clock)
    token = access.issue(subject="u", client_id="c", scope="profile")
    assert access.verify(token).subject == "u"
    assert access.verify(token).subject == "u"  # the remembered path
    clock[0] += 60 + 30  # ttl + leeway
    with pytest.raises(InvalidToken):
        access.verify(token)
    with pytest.raises(InvalidToken):  # and stays refused once forgotten
        access.verify(token)


def test_a_tampered_token_is_never_remembered_as_valid(keys):
    clock = [1_000_000.0]
    access = tokens(keys, clock)
    token = access.issue(subject="u", client_id="c", scope="profile")
    header, payload, signature = token.split(".")
    forged = f"{header}.{payload}.{signature[:-4]}AAAA"
    for _ in range(2):
        with pytest.raises(InvalidToken):
            access.verify(forged)


def test_the_cache_is_bounded(keys):
    clock = [1_000_000.0]
    access = tokens(keys, clock)
    first = access.issue(subject="u0", client_id="c", scope="")
    access.verify(first)
    for i in range(VERIFIED_CACHE_SIZE):
        access.verify(access.issue(subject=f"u{i}", client_id="c", scope=""))
    assert len(access._verified) == VERIFIED_CACHE_SIZE
    assert first not in access._verified
    assert access.verify(first).subject == "u0"  # verified again from scratch


def test_userinfo_claim_names_ride_in_a_private_claim_only_when_there_are_any(keys):
    access = tokens(keys, [1_000_000.0])
    with_names = access.verify(
        access.issue(subject="u", client_id="c", scope="openid", userinfo_claims="email name")
    )
    assert with_names.userinfo_claims == "email name"
    assert with_names.raw[USERINFO_CLAIMS] == "email name"
    without = access.verify(access.issue(subject="u", client_id="c", scope="openid"))
    assert without.userinfo_claims == ""
    assert USERINFO_CLAIMS not in without.raw
