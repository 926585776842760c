"""The pure scope -> claims mapping (OIDC Core §5.4) and the claims parameter (§5.5)."""

from __future__ import annotations

import json

import pytest

from authly.errors import InvalidRequest
from authly.oidc.claims import (
    SCOPE_CLAIMS,
    ClaimSpec,
    extra_claims,
    parse_claims_request,
    release,
    scope_claims,
)

FULL = {
    "sub": "u-1",
    "name": "Ada Lovelace",
    "given_name": "Ada",
    "family_name": "Lovelace",
    "middle_name": "King",
    "nickname": "ada",
    "preferred_username": "ada",
    "profile": "https://example.com/ada",
    "picture": "https://example.com/ada.png",
    "website": "https://ada.example",
    "gender": "female",
    "birthdate": "1815-12-10",
    "zoneinfo": "Europe/London",
    "locale": "en-GB",
    "updated_at": 1700000000,
    "email": "ada@example.com",
    "email_verified": True,
    "address": {"locality": "London", "country": "UK"},
    "phone_number": "+44 20 7946 0000",
    "phone_number_verified": False,
}


@pytest.mark.parametrize("scope", sorted(SCOPE_CLAIMS))
def test_each_scope_releases_exactly_its_claims(scope):
    released = release(FULL, [scope])
    assert set(released) == {"sub", *SCOPE_CLAIMS[scope]}
    for name in SCOPE_CLAIMS[scope]:
        assert released[name] == FULL[name]


def test_the_profile_scope_claims_are_those_of_core_5_4():
    assert set(SCOPE_CLAIMS["profile"]) == {
        "name", "family_name", "given_name", "middle_name", "nickname",
        "preferred_username", "profile", "picture", "website", "gender", "birthdate",
        "zoneinfo", "locale", "updated_at",
    }  # fmt: skip
    assert SCOPE_CLAIMS["email"] == ("email", "email_verified")
    assert SCOPE_CLAIMS["address"] == ("address",)
    assert SCOPE_CLAIMS["phone"] == ("phone_number", "phone_number_verified")


def test_sub_always_and_nothing_else_without_claim_scopes():
    assert release(FULL, []) == {"sub": "u-1"}
    assert release(FULL, ["openid", "offline_access", "admin"]) == {"sub": "u-1"}
    assert scope_claims(["openid"]) == {"sub"}


def test_absent_claims_are_omitted_never_null():
    sparse = {"sub": "u-2", "preferred_username": "bob", "updated_at": 1, "email": None}
    released = release(sparse, ["profile", "email", "address", "phone"])
    assert released == {"sub": "u-2", "preferred_username": "bob", "updated_at": 1}
    assert None not in released.values()


def test_individually_requested_standard_claims_are_released_without_their_scope():
    released = release(FULL, ["openid"], ["email", "picture", "not_a_claim"])
    assert released == {"sub": "u-1", "email": FULL["email"], "picture": FULL["picture"]}


def test_parse_claims_request():
    text = json.dumps(
        {
            "userinfo": {"email": None, "picture": {"essential": True}},
            "id_token": {"auth_time": {"essential": True}, "acr": {"values": ["a", "b"]}},
            "other": {"ignored": True},
        }
    )
    parsed = parse_claims_request(text)
    assert parsed is not None
    assert parsed.names("userinfo") == {"email", "picture"}
    assert parsed.names("id_token") == {"auth_time", "acr"}
    assert parsed.userinfo["email"] == ClaimSpec()
    assert parsed.userinfo["picture"].essential is True
    assert parsed.id_token["acr"].values == ("a", "b")
    assert parse_claims_request(None) is None
    assert parse_claims_request("") is None
    only_id_token = parse_claims_request('{"id_token": {"email": {"value": "x"}}}')
    assert only_id_token is not None
    assert only_id_token.names("userinfo") == frozenset()
    assert only_id_token.id_token["email"].value == "x"


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[]",
        '"userinfo"',
        '{"userinfo": []}',
        '{"userinfo": {"email": true}}',
        '{"userinfo": {"email": {"essential": "yes"}}}',
        '{"id_token": {"acr": {"values": "a"}}}',
        '{"userinfo": {"": null}}',
        json.dumps({"userinfo": {"x" * 5000: None}}),
    ],
)
def test_invalid_claims_requests_are_invalid_request(text):
    with pytest.raises(InvalidRequest):
        parse_claims_request(text)


def test_extra_claims_only_standard_claims_the_user_has():
    parsed = parse_claims_request(
        json.dumps(
            {
                "userinfo": {"email": None, "website": None, "custom": None},
                "id_token": {"phone_number": None, "gender": None},
            }
        )
    )
    user = {"sub": "u", "email": "e@example.com", "phone_number": "+1 555 0100"}
    assert extra_claims(parsed, "userinfo", user) == {"email"}
    assert extra_claims(parsed, "id_token", user) == {"phone_number"}
    assert extra_claims(None, "userinfo", user) == frozenset()
