"""Resource indicators (RFC 8707), the pure rules: identifiers, the form, the scope a
resource allows, registration, and the access token's audience."""

from __future__ import annotations

import pytest

from authly.errors import InvalidRequest, InvalidScope
from authly.oauth.resource_registry import check_identifier
from authly.oauth.resources import (
    MAX_REQUESTED,
    InvalidTarget,
    Targets,
    check_requested,
    consent_key,
    identifier_problem,
    split_form,
)
from authly.tokens.access import AccessTokens

ISSUER = "https://auth.example.com"


@pytest.mark.parametrize(
    "text",
    [
        "https://api.example.com",
        "https://api.example.com/v1/",
        "https://api.example.com:8443/x?tenant=a",
        "http://127.0.0.1:9000/mcp",
        "urn:example:resource",  # any absolute URI may be *requested* (RFC 8707 §2)
    ],
)
def test_well_formed_identifiers(text: str) -> None:
    assert identifier_problem(text) is None


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "empty"),
        ("/api/v1", "absolute"),
        ("api.example.com/v1", "absolute"),
        ("https://api.example.com/v1#part", "fragment"),
        ("https://api.example.com/#", "fragment"),
        ("https://api.example.com/a b", "printable ASCII"),
        ('https://api.example.com/"x"', "printable ASCII"),
        ("https://api.example.com/%zz", "printable ASCII"),
        ("https://api.example.com/é", "printable ASCII"),
        ("https:", "absolute"),
        ("https://x/" + "a" * 2000, "longer than"),
    ],
)
def test_malformed_identifiers(text: str, problem: str) -> None:
    found = identifier_problem(text)
    assert found is not None
    assert problem in found


def test_check_requested_dedupes_and_bounds() -> None:
    assert check_requested(["https://a.example", "https://b.example", "https://a.example"]) == (
        "https://a.example",
        "https://b.example",
    )
    assert check_requested([]) == ()
    with pytest.raises(InvalidTarget) as too_many:
        check_requested([f"https://a.example/{i}" for i in range(MAX_REQUESTED + 1)])
    assert too_many.value.error == "invalid_target"
    assert too_many.value.status_code == 400
    with pytest.raises(InvalidTarget, match="fragment"):
        check_requested(["https://a.example/#x"])


def test_split_form_lets_only_resource_repeat() -> None:
    pairs = [("grant_type", "x"), ("resource", "https://a"), ("resource", "https://b")]
    assert split_form(pairs) == ({"grant_type": "x"}, ("https://a", "https://b"))
    with pytest.raises(InvalidRequest, match="repeated"):
        split_form([("scope", "a"), ("scope", "b")])


def test_targets_allow_their_scopes_and_authlys_own() -> None:
    targets = Targets(("https://api.example.com",), frozenset({"api:read"}))
    assert targets.allows(frozenset({"api:read", "offline_access"})) == {
        "api:read",
        "offline_access",
    }
    # The userinfo scopes come with openid only (the token is then for userinfo too).
    assert targets.allows(frozenset({"api:read", "profile"})) == {"api:read"}
    with_openid = frozenset({"openid", "profile", "email", "api:read"})
    assert targets.allows(with_openid) == with_openid
    # An explicit scope the resource does not allow is an error; a default one is dropped.
    with pytest.raises(InvalidScope, match="api:write"):
        targets.check(frozenset({"api:read", "api:write"}), explicit=True)
    assert targets.check(frozenset({"api:read", "api:write"}), explicit=False) == {"api:read"}
    # No resource named: no restriction.
    assert Targets().check(frozenset({"anything"}), explicit=True) == {"anything"}


def test_consent_key_separates_resources() -> None:
    assert consent_key("a b", ()) == "a b"
    assert consent_key("a b", ("https://x",)) != consent_key("a b", ("https://y",))
    assert "\n" in consent_key("a", ("https://x",))


@pytest.mark.parametrize(
    "identifier",
    [
        "https://api.example.com",
        "https://api.example.com/v1/",
        "https://api.example.com:8443/v1?tenant=a",
        "http://127.0.0.1:9000/mcp",
        "http://localhost:3000",
        "http://[::1]:8080/x",
    ],
)
def test_registrable_identifiers(identifier: str) -> None:
    assert check_identifier(identifier) == identifier


@pytest.mark.parametrize(
    ("identifier", "problem"),
    [
        ("https://api.example.com/#frag", "fragment"),
        ("/v1", "absolute"),
        ("urn:example:api", "https URL"),
        ("ftp://files.example.com/", "https URL"),
        ("https:/api.example.com", "https URL"),
        ("http://api.example.com/", "loopback"),
        ("https://API.example.com/", "lower case"),
        ("https://user@api.example.com/", "user information"),
        ("https://api.example.com:99999/", "port"),
        ("https:///x", "host"),
        (42, "string"),
    ],
)
def test_unregistrable_identifiers(identifier: object, problem: str) -> None:
    with pytest.raises(InvalidRequest, match=problem):
        check_identifier(identifier)


def test_audience_of_access_tokens() -> None:
    tokens = AccessTokens(None, issuer=ISSUER, audience=ISSUER, ttl=60)  # type: ignore[arg-type]
    assert tokens.audience_for((), "profile") == ISSUER
    assert tokens.audience_for(("https://a",), "x") == "https://a"
    assert tokens.audience_for(("https://a", "https://b"), "x") == ["https://a", "https://b"]
    # openid: the token is for userinfo too.
    assert tokens.audience_for(("https://a",), "openid x") == ["https://a", ISSUER]
    assert tokens.audience_for((ISSUER,), "openid") == ISSUER
