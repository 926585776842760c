import pytest

from authly.errors import InvalidGrant, InvalidRequest
from authly.oauth import pkce

# RFC 7636 Appendix B.
VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_s256_matches_rfc_7636_appendix_b():
    assert pkce.s256(VERIFIER) == CHALLENGE
    pkce.verify(VERIFIER, CHALLENGE)


@pytest.mark.parametrize(
    ("challenge", "method"),
    [
        (None, "S256"),
        ("", "S256"),
        (CHALLENGE, "plain"),
        (CHALLENGE, None),
        ("short", "S256"),
        (CHALLENGE + "x", "S256"),
        ("+" * 43, "S256"),
    ],
)
def test_authorization_request_needs_an_s256_challenge(challenge, method):
    with pytest.raises(InvalidRequest):
        pkce.check_challenge(challenge, method)


@pytest.mark.parametrize(
    "verifier", [None, "", "a" * 42, "a" * 129, VERIFIER[:-1] + "!", VERIFIER[:-1] + "Y"]
)
def test_wrong_or_malformed_verifier_is_invalid_grant(verifier):
    with pytest.raises(InvalidGrant):
        pkce.verify(verifier, CHALLENGE)
