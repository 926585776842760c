"""oauth/client_metadata.py: RFC 7591 metadata mapped onto Authly's client rules, without
a store or an app."""

from __future__ import annotations

import json
from typing import Any

import pytest
from joserfc.jwk import ECKey

from authly.oauth.client_metadata import (
    InvalidClientMetadata,
    InvalidRedirectURI,
    check_outbound_uri,
    metadata_of,
    parse_metadata,
)
from authly.store.clients import ClientRow
from authly.store.scopes import Scope

REGISTRY = [
    Scope("profile", "Profile", True),
    Scope("email", "Email", True),
    Scope("openid", "Sign in", False),
    Scope("offline_access", "Refresh", False),
    Scope("admin", "Administer", False),
    Scope("reports:read", "Reports", False),
]
WEB = {"redirect_uris": ["https://app.example/cb"]}


def parse(body: dict[str, Any], *, open_registration: bool = True) -> Any:
    return parse_metadata(
        body, registry=REGISTRY, client_id="cid", open_registration=open_registration
    )


def refused(body: dict[str, Any], error: type[Exception] = InvalidClientMetadata, **kw: Any) -> str:
    with pytest.raises(error) as caught:
        parse(body, **kw)
    return str(caught.value)


def public_jwks() -> dict[str, Any]:
    key = ECKey.generate_key("P-256")
    return {"keys": [{**key.as_dict(private=False), "kid": "k1", "alg": "ES256"}]}


# --- defaults and mapping ---------------------------------------------------------------


def test_rfc_7591_defaults():
    values = parse(WEB)
    assert values.confidential
    assert values.auth_method == "client_secret_basic"
    assert values.grant_types == ("authorization_code",)
    assert values.scopes == ("profile", "email")  # the registry's defaults
    assert values.name == "Client cid"
    assert values.first_party is False


def test_every_supported_member_is_mapped():
    values = parse(
        {
            "redirect_uris": ["https://app.example/cb", "http://127.0.0.1/cb"],
            "token_endpoint_auth_method": "client_secret_post",
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "client_name": "  Report Viewer ",
            "scope": "openid profile reports:read",
            "post_logout_redirect_uris": ["https://app.example/bye"],
            "backchannel_logout_uri": "https://app.example/logout",
            "backchannel_logout_session_required": True,
            "id_token_signed_response_alg": "ES256",
            "require_pushed_authorization_requests": True,
            "dpop_bound_access_tokens": True,
        }
    )
    assert values.name == "Report Viewer"
    assert values.auth_method == "client_secret_post"
    assert values.redirect_uris == ("https://app.example/cb", "http://127.0.0.1/cb")
    assert values.scopes == ("openid", "profile", "reports:read")
    assert values.post_logout_redirect_uris == ("https://app.example/bye",)
    assert values.backchannel_logout_uri == "https://app.example/logout"
    assert values.backchannel_logout_session_required
    assert values.id_token_alg == "ES256"
    assert values.require_pushed_authorization_requests
    assert values.dpop_bound_access_tokens


def test_unknown_and_null_members_are_ignored():
    values = parse(
        {
            **WEB,
            "client_uri": "https://app.example",
            "logo_uri": "https://app.example/logo.png",
            "contacts": ["ops@app.example"],
            "software_statement": "eyJ...",
            "first_party": True,  # not RFC 7591 metadata: never honoured
            "client_type": "public",
            "jwks_uri": None,
            "scope": None,
        }
    )
    assert values.first_party is False
    assert values.confidential
    assert values.scopes == ("profile", "email")


def test_public_client_with_none():
    values = parse({**WEB, "token_endpoint_auth_method": "none"})
    assert not values.confidential
    assert values.auth_method == "none"


def test_empty_scope_registers_no_scope():
    assert parse({**WEB, "scope": ""}).scopes == ()


# --- redirect URIs ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "uri",
    [
        "http://app.example/cb",  # http off loopback
        "https://app.example/cb#frag",
        "https://app.example/a b",
        "javascript:alert(1)",
        "data:text/html,hi",
        "https://user@app.example/cb",
        "HTTPS://app.example/cb",
        "/relative/cb",
        "com.example.app:/cb",  # private-use scheme: public clients only
    ],
)
def test_refused_redirect_uris(uri: str):
    message = refused({"redirect_uris": [uri]}, InvalidRedirectURI)
    assert message


@pytest.mark.parametrize(
    "uri",
    [
        "https://app.example/cb",
        "http://127.0.0.1/cb",
        "http://[::1]:8080/cb",
        "http://localhost:3000/cb",
        "com.example.app:/oauth2redirect",
        "io.github.someone.tool:/cb",
    ],
)
def test_native_redirect_uris_for_public_clients(uri: str):
    values = parse({"redirect_uris": [uri], "token_endpoint_auth_method": "none"})
    assert values.redirect_uris == (uri,)


@pytest.mark.parametrize("uri", ["myapp:/cb", "my+app.example:/cb", "com.example.app://host/cb"])
def test_private_use_schemes_must_be_reverse_domain_names(uri: str):
    refused({"redirect_uris": [uri], "token_endpoint_auth_method": "none"}, InvalidRedirectURI)


def test_redirect_uris_shape_and_presence():
    assert "array" in refused({"redirect_uris": "https://app.example/cb"}, InvalidRedirectURI)
    assert "array" in refused({"redirect_uris": [""]}, InvalidRedirectURI)
    many = [f"https://app.example/{i}" for i in range(21)]
    assert "at most 20" in refused({"redirect_uris": many}, InvalidRedirectURI)
    assert "required" in refused({}, InvalidRedirectURI)  # authorization_code by default
    # A client without authorization_code needs none.
    values = parse(
        {"grant_types": ["client_credentials"], "response_types": []}, open_registration=False
    )
    assert values.redirect_uris == ()


def test_post_logout_redirect_uris_follow_the_same_rules():
    message = refused({**WEB, "post_logout_redirect_uris": ["http://app.example/bye"]})
    assert "post_logout_redirect_uris" in message


# --- grant and response types -----------------------------------------------------------


def test_response_types_must_match_grant_types():
    assert "disagree" in refused({**WEB, "response_types": []})
    assert "disagree" in refused(
        {"grant_types": ["client_credentials"], "response_types": ["code"]},
        open_registration=False,
    )
    assert "only code" in refused({**WEB, "response_types": ["code", "token"]})
    assert "only code" in refused({**WEB, "response_types": ["id_token"]})


def test_grant_types_dynamic_clients_cannot_have():
    assert "Unsupported grant type" in refused({**WEB, "grant_types": ["password"]})
    assert "Unsupported grant type" in refused({**WEB, "grant_types": ["implicit"]})
    assert "at least one grant" in refused({**WEB, "grant_types": []})
    assert "refresh_token needs" in refused({"grant_types": ["refresh_token"]})


def test_client_credentials_only_with_an_initial_access_token():
    service = {"grant_types": ["client_credentials"]}
    assert "initial access token" in refused(service, open_registration=True)
    assert parse(service, open_registration=False).grant_types == ("client_credentials",)
    public = {**service, "token_endpoint_auth_method": "none"}
    assert "confidential clients only" in refused(public, open_registration=False)


def test_device_code_grant_needs_no_redirect_uri():
    device = "urn:ietf:params:oauth:grant-type:device_code"
    values = parse({"grant_types": [device], "token_endpoint_auth_method": "none"})
    assert values.grant_types == (device,)


# --- scopes, names, methods -------------------------------------------------------------


def test_scopes():
    assert "Unknown scope(s): nope" in refused({**WEB, "scope": "profile nope"})
    assert "Not available" in refused({**WEB, "scope": "profile admin"})
    assert "string" in refused({**WEB, "scope": ["profile"]})
    assert "printable ASCII" in refused({**WEB, "scope": 'pro"file'})
    assert parse({**WEB, "scope": "profile  profile email"}).scopes == ("profile", "email")


def test_client_name():
    assert "client_name" in refused({**WEB, "client_name": ""})
    assert "client_name" in refused({**WEB, "client_name": 7})
    assert "client_name" in refused({**WEB, "client_name": "x" * 201})
    assert "control" in refused({**WEB, "client_name": "a\nb"})


def test_auth_methods():
    assert "token_endpoint_auth_method" in refused({**WEB, "token_endpoint_auth_method": "tls"})
    values = parse({**WEB, "token_endpoint_auth_method": "client_secret_jwt"})
    assert values.auth_method == "client_secret_jwt"


def test_private_key_jwt_needs_keys():
    body = {**WEB, "token_endpoint_auth_method": "private_key_jwt"}
    assert "jwks or jwks_uri" in refused(body)
    assert "one, not both" in refused(
        {**body, "jwks": public_jwks(), "jwks_uri": "https://app.example/jwks"}
    )
    values = parse({**body, "jwks": public_jwks()})
    assert values.jwks is not None
    assert json.loads(values.jwks)["keys"][0]["kid"] == "k1"
    assert parse({**body, "jwks_uri": "https://app.example/jwks"}).jwks_uri is not None


def test_private_keys_are_refused():
    key = ECKey.generate_key("P-256").as_dict(private=True)
    body = {**WEB, "token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": [key]}}
    assert "private or symmetric" in refused(body)


def test_keys_for_other_methods_are_refused():
    assert "private_key_jwt clients only" in refused({**WEB, "jwks": public_jwks()})


@pytest.mark.parametrize(
    "uri",
    [
        "http://app.example/jwks",
        "https://localhost/jwks",
        "https://auth.localhost/jwks",
        "https://127.0.0.1/jwks",
        "https://10.1.2.3/jwks",
        "https://192.168.0.1/jwks",
        "https://169.254.169.254/latest",
        "https://[::1]/jwks",
        "https://[fd00::1]/jwks",
        "https://0.0.0.0/jwks",
        "not a uri",
    ],
)
def test_urls_the_server_calls_must_be_public_https(uri: str):
    with pytest.raises(InvalidClientMetadata):
        check_outbound_uri("jwks_uri", uri)
    body = {**WEB, "token_endpoint_auth_method": "private_key_jwt", "jwks_uri": uri}
    refused(body)
    refused({**WEB, "backchannel_logout_uri": uri})


def test_public_https_urls_are_fine():
    assert check_outbound_uri("jwks_uri", "https://8.8.8.8/jwks") == "https://8.8.8.8/jwks"
    assert check_outbound_uri("jwks_uri", "https://keys.example/j") == "https://keys.example/j"


# --- the document -----------------------------------------------------------------------


def test_metadata_document():
    row = ClientRow(
        client_id="cid",
        name="App",
        secret_hash="h",
        auth_method="client_secret_basic",
        redirect_uris=("https://app.example/cb",),
        grant_types=("authorization_code", "refresh_token"),
        scopes=("openid", "profile"),
        first_party=False,
        created_at=1000.7,
        updated_at=1000.7,
    )
    document = metadata_of(row)
    assert document["client_id_issued_at"] == 1000
    assert document["client_secret_expires_at"] == 0
    assert document["response_types"] == ["code"]
    assert document["scope"] == "openid profile"
    assert "backchannel_logout_uri" not in document
    assert "jwks" not in document
    assert "jwks_uri" not in document
    public = metadata_of(row.with_changes(secret_hash=None, auth_method="none"))
    assert "client_secret_expires_at" not in public
    service = metadata_of(row.with_changes(grant_types=("client_credentials",)))
    assert service["response_types"] == []
