import base64

import pytest

from authly.oauth.clients import (
    authenticate,
    credentials_from,
    hash_secret,
    redirect_uri_matches,
    validate_redirect_uri,
)
from authly.oauth.errors import InvalidClient, InvalidRequest
from authly.store.clients import ClientRow


def client(**changes) -> ClientRow:
    base = ClientRow(
        client_id="app",
        name="App",
        secret_hash=hash_secret("s3cret"),
        auth_method="client_secret_basic",
        redirect_uris=("https://app.example/cb", "http://127.0.0.1/native"),
        grant_types=("authorization_code",),
        scopes=("profile",),
        first_party=False,
        created_at=0,
        updated_at=0,
    )
    return base.with_changes(**changes)


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.parametrize(
    "uri",
    [
        "https://app.example/cb/",
        "https://app.example/cb?x=1",
        "https://app.example/cb#f",
        "https://APP.example/cb",
        "https://app.example:443/cb",
        "https://app.example/cb.evil.example",
        "https://app.example/cb/../x",
        "https://evil.example/cb",
        "https://app.example.evil.example/cb",
        "http://app.example/cb",
    ],
)
def test_redirect_uris_match_exactly(uri):
    assert redirect_uri_matches(client(), "https://app.example/cb")
    assert not redirect_uri_matches(client(), uri)


def test_loopback_port_may_vary_for_public_native_clients_only():
    public = client(auth_method="none", secret_hash=None)
    assert redirect_uri_matches(public, "http://127.0.0.1:51234/native")
    assert not redirect_uri_matches(public, "http://127.0.0.1:51234/other")
    assert not redirect_uri_matches(public, "http://localhost:51234/native")
    assert not redirect_uri_matches(client(), "http://127.0.0.1:51234/native")


@pytest.mark.parametrize(
    "uri", ["app/cb", "https://app.example/cb#frag", "http://example.com/cb", "https:///cb"]
)
def test_unregistrable_redirect_uris(uri):
    with pytest.raises(InvalidRequest):
        validate_redirect_uri(uri)


def test_basic_and_post_credentials():
    creds = credentials_from(basic("app", "s3cret"), {})
    assert (creds.client_id, creds.secret, creds.method) == ("app", "s3cret", "client_secret_basic")
    assert authenticate(client(), creds).client_id == "app"
    post = credentials_from(None, {"client_id": "app", "client_secret": "s3cret"})
    assert post.method == "client_secret_post"
    with pytest.raises(InvalidClient):  # registered for basic, presented post
        authenticate(client(), post)
    assert authenticate(client(auth_method="client_secret_post"), post).client_id == "app"


def test_basic_credentials_are_form_urlencoded_per_rfc_6749_2_3_1():
    creds = credentials_from(basic("app%3Ax", "p%40ss"), {})
    assert (creds.client_id, creds.secret) == ("app:x", "p@ss")


@pytest.mark.parametrize(
    "creds",
    [
        credentials_from(basic("app", "wrong"), {}),
        credentials_from(None, {"client_id": "app"}),
        credentials_from(basic("app", ""), {}),
    ],
)
def test_bad_secrets_are_invalid_client(creds):
    with pytest.raises(InvalidClient):
        authenticate(client(), creds)


def test_unknown_client_is_invalid_client():
    with pytest.raises(InvalidClient):
        authenticate(None, credentials_from(basic("x", "y"), {}))


def test_two_methods_at_once_are_refused():
    with pytest.raises(InvalidRequest):
        credentials_from(basic("app", "s3cret"), {"client_secret": "s3cret"})


@pytest.mark.parametrize("header", ["Basic !!!", "Basic " + base64.b64encode(b"nocolon").decode()])
def test_malformed_basic_is_invalid_client(header):
    with pytest.raises(InvalidClient):
        credentials_from(header, {})


def test_public_client_must_not_send_a_secret():
    public = client(auth_method="none", secret_hash=None)
    assert authenticate(public, credentials_from(None, {"client_id": "app"})).client_id == "app"
    with pytest.raises(InvalidClient):
        authenticate(public, credentials_from(basic("app", "x"), {}))
