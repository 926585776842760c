"""OpenID Connect core: discovery, ID tokens from the code flow and on refresh, and the
authentication request parameters (prompt, max_age, login_hint, nonce).

ID tokens are checked against the published JWK Set with two JOSE libraries: joserfc
(which Authly signs with) and Authlib's ``authlib.jose`` (an independent one)."""

from __future__ import annotations

import base64
import hashlib
import json
import warnings
from typing import Any

# Authlib's own deprecation module forces its warnings to "always": import it first, then
# silence exactly the authlib.jose notice around that import (an independent checker).
import authlib.deprecate  # noqa: F401
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.conftest import ISSUER

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="authlib.jose module is deprecated")
    from authlib.jose import JsonWebKey, JsonWebToken
from tests.web.browser import (
    PASSWORD,
    USER,
    Browser,
    answer,
    auth_params,
    exchange,
    html_of,
    pkce_pair,
    web_client,
)
from tests.web.helpers import create_user, json_of, refresh

RP_SCOPES = ("openid", "profile", "email", "offline_access")


@pytest.fixture
async def rp(app: Any) -> Any:
    await web_client(app, client_id="rp", scopes=RP_SCOPES)
    return await create_user(app, USER, PASSWORD)


def oidc_params(challenge: str, **overrides: str | None) -> dict[str, str]:
    params: dict[str, str | None] = {
        "client_id": "rp",
        "scope": "openid profile email offline_access",
        "nonce": "n-0S6_WzA2Mj",
    }
    params.update(overrides)
    return auth_params(challenge, **params)  # type: ignore[arg-type]


async def _jwks(browser: Browser) -> dict[str, Any]:
    return await json_of(await browser.client.get("/.well-known/jwks.json"))  # type: ignore[no-any-return]


async def verify_id_token(browser: Browser, token: str) -> dict[str, Any]:
    """The claims, after checking the signature with both libraries."""
    jwks = await _jwks(browser)
    decoded = jwt.decode(token, KeySet.import_key_set(jwks))
    other = JsonWebToken(["RS256", "ES256", "EdDSA"]).decode(token, JsonWebKey.import_key_set(jwks))
    assert dict(other) == decoded.claims
    assert decoded.header["typ"] == "JWT"
    return decoded.claims


def expected_at_hash(access_token: str) -> str:
    digest = hashlib.sha256(access_token.encode("ascii")).digest()[:16]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


async def _code(browser: Browser, **overrides: str | None) -> tuple[dict[str, str], str]:
    verifier, challenge = pkce_pair()
    return await browser.code_for(oidc_params(challenge, **overrides)), verifier


async def _tokens(browser: Browser, **overrides: str | None) -> dict[str, Any]:
    result, verifier = await _code(browser, **overrides)
    return await exchange(browser.client, result["code"], verifier, client_id="rp")


# ---- discovery ---------------------------------------------------------------------------


async def test_discovery_matches_the_oauth_metadata(client: Any) -> None:
    response = await client.get("/.well-known/openid-configuration")
    oidc = await json_of(response)
    assert response.headers["Cache-Control"].startswith("public")
    oauth = await json_of(await client.get("/.well-known/oauth-authorization-server"))
    for member, value in oauth.items():
        assert oidc[member] == value, member  # same issuer and endpoints
    assert oidc["issuer"] == ISSUER
    assert oidc["userinfo_endpoint"] == f"{ISSUER}/oidc/userinfo"
    assert oidc["jwks_uri"] == f"{ISSUER}/.well-known/jwks.json"
    assert oidc["response_types_supported"] == ["code"]
    assert oidc["subject_types_supported"] == ["public"]
    assert "RS256" in oidc["id_token_signing_alg_values_supported"]
    for scope in ("openid", "profile", "email", "address", "phone", "offline_access"):
        assert scope in oidc["scopes_supported"]
    assert set(oidc["prompt_values_supported"]) == {"none", "login", "consent"}
    assert oidc["claims_parameter_supported"] is True
    assert {"sub", "auth_time", "nonce", "email", "email_verified"} <= set(oidc["claims_supported"])


async def test_the_oidc_scopes_are_built_in(app: Any) -> None:
    from tests.web.admin_client import SCOPES, AdminClient
    from tests.web.admin_client import admin_access_token as token

    admin = AdminClient(app.test_client(), await token(app.test_client()))
    for scope in ("openid", "address", "phone"):
        response = await admin.delete(f"{SCOPES}/{scope}")
        assert response.status_code == 409, scope


# ---- ID tokens ---------------------------------------------------------------------------


async def test_code_flow_returns_a_valid_id_token(browser: Browser, rp: Any) -> None:
    tokens = await _tokens(browser)
    claims = await verify_id_token(browser, tokens["id_token"])
    assert claims["iss"] == ISSUER
    assert claims["sub"] == rp.id
    assert claims["aud"] == "rp"
    assert claims["nonce"] == "n-0S6_WzA2Mj"
    assert claims["at_hash"] == expected_at_hash(tokens["access_token"])
    assert claims["amr"] == ["pwd"]
    assert claims["iat"] <= claims["exp"]
    assert claims["auth_time"] <= claims["iat"]
    assert claims["sid"]
    assert "azp" not in claims  # one audience: the client itself


async def test_refresh_returns_a_new_id_token_about_the_same_sign_in(
    browser: Browser, rp: Any
) -> None:
    first = await _tokens(browser)
    before = await verify_id_token(browser, first["id_token"])
    refreshed = await json_of(await refresh(browser.client, first["refresh_token"], client_id="rp"))
    after = await verify_id_token(browser, refreshed["id_token"])
    assert after["sub"] == before["sub"]
    assert after["auth_time"] == before["auth_time"]  # the original authentication
    assert after["sid"] == before["sid"]
    assert "nonce" not in after
    assert after["at_hash"] == expected_at_hash(refreshed["access_token"])


async def test_no_openid_scope_no_id_token(browser: Browser, rp: Any) -> None:
    tokens = await _tokens(browser, scope="profile email", nonce=None)
    assert "id_token" not in tokens


async def test_nonce_is_echoed_exactly(browser: Browser, rp: Any) -> None:
    nonce = "é ü/+=?&" * 4
    tokens = await _tokens(browser, nonce=nonce)
    assert (await verify_id_token(browser, tokens["id_token"]))["nonce"] == nonce


async def test_a_long_nonce_is_invalid_request(browser: Browser, rp: Any) -> None:
    _, challenge = pkce_pair()
    result = answer(await browser.authorize(oidc_params(challenge, nonce="n" * 513)))
    assert result["error"] == "invalid_request"


# ---- prompt, max_age, login_hint -------------------------------------------------------


async def test_prompt_none_without_a_session_is_login_required(browser: Browser, rp: Any) -> None:
    _, challenge = pkce_pair()
    result = answer(await browser.authorize(oidc_params(challenge, prompt="none")))
    assert result["error"] == "login_required"
    assert result["state"] == "st-123"


async def test_prompt_none_without_consent_is_consent_required(browser: Browser, rp: Any) -> None:
    _, challenge = pkce_pair()
    await browser.sign_in(await browser.authorize(oidc_params(challenge)))  # consent not given
    _, challenge = pkce_pair()
    result = answer(await browser.authorize(oidc_params(challenge, prompt="none")))
    assert result["error"] == "consent_required"


async def test_prompt_none_with_session_and_consent_answers_silently(
    browser: Browser, rp: Any
) -> None:
    await _tokens(browser)  # signs in and consents
    result, _ = await _code(browser, prompt="none")
    assert "code" in result


async def test_prompt_login_asks_for_the_password_again(browser: Browser, rp: Any) -> None:
    first = await verify_id_token(browser, (await _tokens(browser))["id_token"])
    verifier, challenge = pkce_pair()
    response = await browser.authorize(oidc_params(challenge, prompt="login"))
    assert "/authorize/login" in await html_of(response)  # signed in, yet asked again
    result = answer(await browser.sign_in(response))  # consent remembered: straight back
    tokens = await exchange(browser.client, result["code"], verifier, client_id="rp")
    second = await verify_id_token(browser, tokens["id_token"])
    assert second["auth_time"] >= first["auth_time"]
    assert second["sid"] != first["sid"]  # a new browser session


async def test_max_age_zero_forces_a_new_sign_in(browser: Browser, rp: Any) -> None:
    await _tokens(browser)
    verifier, challenge = pkce_pair()
    response = await browser.authorize(oidc_params(challenge, max_age="0"))
    assert "/authorize/login" in await html_of(response)
    result = answer(await browser.sign_in(response))
    tokens = await exchange(browser.client, result["code"], verifier, client_id="rp")
    assert "auth_time" in await verify_id_token(browser, tokens["id_token"])


async def test_a_generous_max_age_keeps_the_session(browser: Browser, rp: Any) -> None:
    await _tokens(browser)
    result, _ = await _code(browser, max_age="3600")
    assert "code" in result


async def test_prompt_consent_shows_the_page_again(browser: Browser, rp: Any) -> None:
    await _tokens(browser)
    _, challenge = pkce_pair()
    response = await browser.authorize(oidc_params(challenge, prompt="consent"))
    assert "Allow access?" in await html_of(response)


@pytest.mark.parametrize(
    "overrides",
    [{"prompt": "select_account"}, {"prompt": "none login"}, {"max_age": "-1"}, {"max_age": "x"}],
)
async def test_bad_authentication_parameters(browser: Browser, rp: Any, overrides: Any) -> None:
    _, challenge = pkce_pair()
    result = answer(await browser.authorize(oidc_params(challenge, **overrides)))
    assert result["error"] == "invalid_request"


async def test_login_hint_prefills_the_username(browser: Browser, rp: Any) -> None:
    _, challenge = pkce_pair()
    html = await html_of(await browser.authorize(oidc_params(challenge, login_hint="alice")))
    assert 'value="alice"' in html


def test_at_hash_matches_the_spec_example() -> None:
    """OIDC Core §A.3 style: the left half of SHA-256, base64url without padding."""
    from authly.oidc.id_tokens import at_hash

    token = "jHkWEdUXMU1BwAsC4vtUsZwnNZnPhZ7Cb8i9rSf5VpY"
    assert at_hash(token, "RS256") == expected_at_hash(token)
    assert len(json.dumps(at_hash(token, "EdDSA"))) > len(json.dumps(at_hash(token, "RS256")))


# ---- the claims parameter (Core §5.5) ----------------------------------------------------


async def test_claims_parameter_releases_single_claims_without_their_scope(
    app: Any, browser: Browser, rp: Any
) -> None:
    from tests.conftest import services_of

    await services_of(app).accounts.update(
        rp.id, {"name": "Alice Liddell", "email": "alice@example.com", "phone_number": "+1 555"}
    )
    claims = json.dumps({"id_token": {"name": None}, "userinfo": {"email": {"essential": True}}})
    tokens = await _tokens(browser, scope="openid", claims=claims)
    id_claims = await verify_id_token(browser, tokens["id_token"])
    assert id_claims["name"] == "Alice Liddell"
    assert "email" not in id_claims
    assert "phone_number" not in id_claims
    userinfo = await json_of(
        await browser.client.get(
            "/oidc/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
        )
    )
    assert userinfo == {"sub": rp.id, "email": "alice@example.com"}


class CountingSessions:
    """A session store that records every call before passing it on."""

    METHODS = ("get", "set", "add", "delete", "take", "touch")

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if name not in self.METHODS:
            return attr

        async def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            return await attr(*args, **kwargs)

        return counted


def count_session_calls(app: Any, monkeypatch: pytest.MonkeyPatch) -> CountingSessions:
    """Route every call of the app's session slot through a counter (memory or the
    store, whichever serves sessions: both the slot's current and fallback target)."""
    from tests.conftest import services_of

    slot = services_of(app).sessions
    counter = CountingSessions(slot.current)
    monkeypatch.setattr(slot, "current", counter)
    monkeypatch.setattr(slot, "memory", counter)
    return counter


async def _userinfo(browser: Browser, access_token: str) -> Any:
    response = await browser.client.get(
        "/oidc/userinfo", headers={"Authorization": f"Bearer {access_token}"}
    )
    assert response.status_code == 200
    return await json_of(response)


async def test_userinfo_reads_requested_claims_from_the_token_not_the_session_store(
    app: Any, browser: Browser, rp: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.conftest import services_of

    await services_of(app).accounts.update(
        rp.id, {"email": "alice@example.com", "phone_number": "+1 555"}
    )
    claims = json.dumps({"userinfo": {"email": None, "phone_number": None}})
    tokens = await _tokens(browser, scope="openid", claims=claims)
    access = jwt.decode(tokens["access_token"], KeySet.import_key_set(await _jwks(browser)))
    assert access.claims["authly_userinfo_claims"] == "email phone_number"
    counter = count_session_calls(app, monkeypatch)
    expected = {"sub": rp.id, "email": "alice@example.com", "phone_number": "+1 555"}
    for _ in range(20):
        assert await _userinfo(browser, tokens["access_token"]) == expected
    assert counter.calls == []


async def test_requested_userinfo_claims_survive_a_refresh(
    app: Any, browser: Browser, rp: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.conftest import services_of

    await services_of(app).accounts.update(rp.id, {"email": "alice@example.com"})
    claims = json.dumps({"userinfo": {"email": None}})
    first = await _tokens(browser, scope="openid offline_access", claims=claims)
    token = first["refresh_token"]
    for _ in range(2):  # every later access token of the family carries them on
        refreshed = await json_of(await refresh(browser.client, token, client_id="rp"))
        token = refreshed["refresh_token"]
        counter = count_session_calls(app, monkeypatch)
        assert await _userinfo(browser, refreshed["access_token"]) == {
            "sub": rp.id,
            "email": "alice@example.com",
        }
        assert counter.calls == []
        monkeypatch.undo()
    # Without the claims parameter, a refreshed token carries no private claim.
    plain = await _tokens(browser, scope="openid offline_access")
    refreshed = await json_of(await refresh(browser.client, plain["refresh_token"], client_id="rp"))
    decoded = jwt.decode(refreshed["access_token"], KeySet.import_key_set(await _jwks(browser)))
    assert "authly_userinfo_claims" not in decoded.claims
    assert await _userinfo(browser, refreshed["access_token"]) == {"sub": rp.id}


async def test_a_malformed_claims_parameter_is_invalid_request(browser: Browser, rp: Any) -> None:
    _, challenge = pkce_pair()
    result = answer(await browser.authorize(oidc_params(challenge, claims="{not json")))
    assert result["error"] == "invalid_request"


# ---- response_mode=form_post -----------------------------------------------------------


async def test_form_post_answers_with_a_self_submitting_form(browser: Browser, rp: Any) -> None:
    verifier, challenge = pkce_pair()
    response = await browser.authorize(oidc_params(challenge, response_mode="form_post"))
    response = await browser.consent(await browser.sign_in(response))
    assert response.status_code == 200
    assert "Location" not in response.headers
    form = await browser.form(response, "/cb")
    assert form.action == "https://app.example/cb"
    fields = form.values()
    assert set(fields) == {"code", "state", "iss"}
    assert fields["state"] == "st-123"
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'sha256-" in csp
    assert "'unsafe-inline'" not in csp
    tokens = await exchange(browser.client, fields["code"], verifier, client_id="rp")
    assert "id_token" in tokens


async def test_form_post_errors_are_posted_too(browser: Browser, rp: Any) -> None:
    _, challenge = pkce_pair()
    response = await browser.authorize(oidc_params(challenge, response_mode="form_post"))
    response = await browser.consent(await browser.sign_in(response), "deny")
    fields = (await browser.form(response, "/cb")).values()
    assert fields["error"] == "access_denied"
    assert fields["state"] == "st-123"


async def test_an_unknown_response_mode_is_invalid_request(browser: Browser, rp: Any) -> None:
    _, challenge = pkce_pair()
    result = answer(await browser.authorize(oidc_params(challenge, response_mode="fragment")))
    assert result["error"] == "invalid_request"
