"""oauth/registration.py: the client and scope rules, without a store or an app."""

from __future__ import annotations

import pytest

from authly.errors import InvalidRequest
from authly.oauth.registration import (
    ClientValues,
    check_client,
    check_redirect_uri,
    check_scope_name,
    new_client_id,
    parse_changes,
    parse_new_client,
)
from authly.store.clients import ClientRow

REGISTERED = frozenset({"profile", "email", "admin", "reports"})
DEFAULTS = ("email", "profile")


def _row(**changes) -> ClientRow:
    row = ClientRow(
        client_id="c1",
        name="App",
        secret_hash="h",
        auth_method="client_secret_basic",
        redirect_uris=("https://app.example/cb",),
        grant_types=("authorization_code", "refresh_token"),
        scopes=("profile",),
        first_party=False,
        created_at=1.0,
        updated_at=1.0,
    )
    return row.with_changes(**changes)


def test_new_client_defaults():
    values = parse_new_client(
        {"name": "  App  ", "client_type": "confidential", "redirect_uris": ["https://a.example/"]},
        DEFAULTS,
    )
    assert values == ClientValues(
        name="App",
        confidential=True,
        auth_method="client_secret_basic",
        redirect_uris=("https://a.example/",),
        grant_types=("authorization_code", "refresh_token"),
        scopes=DEFAULTS,
        first_party=False,
    )
    check_client(values, REGISTERED)


def test_public_client_defaults_to_none():
    values = parse_new_client({"name": "SPA", "client_type": "public"}, DEFAULTS)
    assert values.auth_method == "none"
    assert not values.confidential


def test_changes_keep_what_they_do_not_name():
    values = parse_changes(_row(), {"name": "New"})
    assert values == ClientValues.of(_row(name="New"))


def test_type_cannot_change_but_may_be_repeated():
    with pytest.raises(InvalidRequest, match="cannot change"):
        parse_changes(_row(), {"client_type": "public"})
    assert parse_changes(_row(), {"client_type": "confidential"}).confidential


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"grant_types": ()}, "at least one grant"),
        ({"grant_types": ("implicit",)}, "Unsupported grant"),
        ({"grant_types": ("refresh_token",)}, "refresh_token needs"),
        ({"redirect_uris": ()}, "needs at least one redirect URI"),
        ({"grant_types": ("password",)}, "first-party"),
        ({"scopes": ("admin",)}, "first-party"),
        ({"scopes": ("unknown",)}, "Unknown scope"),
        ({"confidential": False, "auth_method": "none", "grant_types": ("client_credentials",)},
         "confidential clients only"),
    ],
)  # fmt: skip
def test_rules(changes, message):
    values = ClientValues.of(_row())
    values = ClientValues(**{**values.__dict__, **changes})
    with pytest.raises(InvalidRequest, match=message):
        check_client(values, REGISTERED)


def test_first_party_may_have_password_and_admin():
    values = ClientValues.of(
        _row(first_party=True, grant_types=("password", "refresh_token"), scopes=("admin",))
    )
    check_client(values, REGISTERED)


@pytest.mark.parametrize(
    "uri",
    [
        "https://app.example/cb",
        "http://127.0.0.1:8080/cb",
        "http://localhost/cb",
        "com.example.app:/oauth2redirect",
    ],
)
def test_good_redirect_uris(uri):
    assert check_redirect_uri(uri) == uri


@pytest.mark.parametrize(
    "uri",
    [
        "https://app.example/cb#x",
        "http://app.example/cb",
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        "data:text/html,hi",
        "https://app.example/a b",
        "https://app.example/\u00e9",
        "relative/path",
    ],
)
def test_bad_redirect_uris(uri):
    with pytest.raises(InvalidRequest):
        check_redirect_uri(uri)


@pytest.mark.parametrize("name", ["read", "reports:read", "api/v1.write", "!#$%&'()*+,-./"])
def test_good_scope_names(name):
    assert check_scope_name(name) == name


@pytest.mark.parametrize("name", ["", "a b", 'a"b', "a\\b", "\u00e9", "x" * 65, None, 3])
def test_bad_scope_names(name):
    with pytest.raises(InvalidRequest):
        check_scope_name(name)


def test_client_ids_are_alphanumeric_and_distinct():
    ids = {new_client_id() for _ in range(2000)}
    assert len(ids) == 2000
    assert all(len(i) == 22 and i.isascii() and i.isalnum() for i in ids)
