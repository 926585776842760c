import base64

import pytest

from authly.errors import InvalidClient, InvalidRequest
from authly.oauth.clients import (
    authenticate,
    credentials_from,
    hash_secret,
    redirect_uri_matches,
)
from authly.oauth.redirect_uris import check_registrable, parse
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
        check_registrable(uri)


PUBLIC = client(
    auth_method="none",
    secret_hash=None,
    redirect_uris=("http://127.0.0.1/callback", "http://[::1]/cb?x=1"),
)


@pytest.mark.parametrize(
    "uri",
    [
        # the review's attack: a browser reads "\" as "/" and goes to evil.example
        "http://evil.example:9999\\@127.0.0.1/callback",
        "http://evil.example:9999\\@127.0.0.1:5000/callback",
        "http://evil.example@127.0.0.1/callback",
        "http://evil.example:9999@127.0.0.1:5000/callback",
        "http://:@127.0.0.1:5000/callback",
        "http://127.0.0.1:5000\\@evil.example/callback",
        "http://127.0.0.1:5000/callback#frag",
        "http://127.0.0.1:5000/callback#",
        "http://127.0.0.1:99999/callback",
        "http://127.0.0.1:65536/callback",
        "http://127.0.0.1:-1/callback",
        "http://127.0.0.1:abc/callback",
        "http://127.0.0.1:/callback",
        "http://127.0.0.1:0/callback",
        "http://127.0.0.1:05000/callback",
        "http://127.0.0.1:5000:6000/callback",
        "http://127.0.0.1 :5000/callback",
        "http://127.0.0.1:5000/call back",
        "http://127.0.0.1:5000/callback\t",
        "http://127.0.0.1:5000/\u0441allback",
        "http://127.0.0.1:5000/x/../callback",
        "http://127.0.0.1:5000/%2e%2e/callback",
        "http://127.0.0.1:5000/callback%zz",
        "http://127.1:5000/callback",
        "http://0x7f.0.0.1:5000/callback",
        "http://2130706433:5000/callback",
        "http://127.0.0.1.:5000/callback",
        "HTTP://127.0.0.1:5000/callback",
        "http:127.0.0.1:5000/callback",
        "http:/127.0.0.1:5000/callback",
        "http:///127.0.0.1:5000/callback",
        "https://127.0.0.1:5000/callback",
        "http://127.0.0.2:5000/callback",
        "http://127.0.0.1:5000",
        "http://127.0.0.1:5000?x",
        "http://127.0.0.1:5000/callback?",
        "http://[::1]:5000/cb",
        "http://[0:0:0:0:0:0:0:1]:5000/cb?x=1",
        "http://[::1]x:5000/cb?x=1",
        "http://[::1:5000/cb?x=1",
    ],
)
def test_loopback_exception_allows_only_the_port_to_differ(uri):
    assert not redirect_uri_matches(PUBLIC, uri)


@pytest.mark.parametrize(
    "uri",
    [
        "http://127.0.0.1/callback",
        "http://127.0.0.1:5000/callback",
        "http://127.0.0.1:65535/callback",
        "http://[::1]:5000/cb?x=1",
        "http://[::1]/cb?x=1",
    ],
)
def test_loopback_uris_that_match(uri):
    assert redirect_uri_matches(PUBLIC, uri)


def test_parse_rebuilds_the_presented_text():
    for uri in (
        "https://app.example/cb",
        "https://app.example:8443/a/b?x=1&y=%20",
        "http://[::1]:80/cb",
        "com.example.app:/oauth2redirect",
    ):
        assert parse(uri).text() == uri


@pytest.mark.parametrize(
    "uri",
    [
        "https://user@app.example/cb",
        "https://app.example\\@evil.example/cb",
        "https://app.example/cb#",
        "https://APP.example/cb",
        "https://app..example/cb",
        "https://app.example:0/cb",
        "https://app.example/%2E%2E/cb",
        "http://localhost.evil.example/cb",
        "com.example.app://evil.example/cb",
        "javascript:alert(1)",
        "blob:https://app.example/x",
    ],
)
def test_strict_registration(uri):
    with pytest.raises(InvalidRequest):
        check_registrable(uri)


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
