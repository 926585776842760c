"""Resource indicators (RFC 8707) through the authorization endpoint and the grants
that redeem it: the code, narrowing at the token endpoint (§2.2), refresh tokens that
remember the granted resources and downscope, consent per resource, pushed requests
and the device grant."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import pytest

from tests.conftest import ISSUER
from tests.web.browser import (
    AUTHORIZE,
    PASSWORD,
    REDIRECT,
    USER,
    Browser,
    answer,
    auth_params,
    html_of,
    pkce_pair,
    web_client,
)
from tests.web.device_support import (
    DEVICE_AUTHORIZATION,
    DEVICE_GRANT,
    DeviceBrowser,
    device_client,
)
from tests.web.helpers import create_user, error_body, json_of
from tests.web.resource_support import (
    API,
    BILLING,
    add_resource,
    api_and_billing,
    claims,
    post_pairs,
    token_pairs,
    with_resources,
)

SCOPE = "api:read billing:read offline_access"


@pytest.fixture
async def resources(app: Any) -> None:
    await api_and_billing(app)
    # The usual web client ("app") and user, the client given the resources' scopes too.
    await web_client(
        app,
        scopes=("profile", "email", "offline_access", "openid", "api:read", "billing:read"),
    )
    await create_user(app, USER, PASSWORD)


async def _authorize(browser: Browser, pairs: list[tuple[str, str]]) -> Any:
    return await browser.client.get(f"{AUTHORIZE}?{urlencode(pairs)}")


async def _code(
    browser: Browser, *resources: str, scope: str = SCOPE, consent: bool = True
) -> tuple[str, str, str]:
    """A code for ``resources``; (code, verifier, the consent page's HTML or "")."""
    verifier, challenge = pkce_pair()
    pairs = with_resources(auth_params(challenge, scope=scope), *resources)
    response = await _authorize(browser, pairs)
    page = ""
    if response.status_code == 200 and "/authorize/login" in await html_of(response):
        response = await browser.sign_in(response)
    if response.status_code == 200:
        page = await html_of(response)
        assert consent, page
        response = await browser.consent(response)
    return answer(response)["code"], verifier, page


async def _exchange(browser: Browser, code: str, verifier: str, *resources: str) -> Any:
    params = {
        "grant_type": "authorization_code",
        "code": code,
        "code_verifier": verifier,
        "client_id": "app",
        "redirect_uri": REDIRECT,
    }
    return await token_pairs(browser.client, with_resources(params, *resources))


async def _refresh(browser: Browser, token: str, *resources: str, scope: str = "") -> Any:
    params = {"grant_type": "refresh_token", "refresh_token": token, "client_id": "app"}
    if scope:
        params["scope"] = scope
    return await token_pairs(browser.client, with_resources(params, *resources))


async def _error(response: Any, error: str) -> str:
    body = await error_body(response, 400)
    assert body["error"] == error, body
    return str(body["error_description"])


async def test_code_for_one_resource(browser: Browser, resources: None) -> None:
    code, verifier, page = await _code(browser, API, scope="api:read offline_access")
    assert "Reports API" in page
    assert API in page
    body = await json_of(await _exchange(browser, code, verifier))
    assert body["scope"] == "api:read offline_access"
    assert claims(body["access_token"])["aud"] == API


async def test_several_resources_then_narrowing_and_downscoping(
    browser: Browser, resources: None
) -> None:
    code, verifier, _ = await _code(browser, API, BILLING)
    # The token endpoint narrows to one of the granted resources (RFC 8707 §2.2).
    body = await json_of(await _exchange(browser, code, verifier, API))
    assert claims(body["access_token"])["aud"] == API
    assert body["scope"] == "api:read offline_access"
    # The refresh token remembers both: each refresh picks any subset.
    billing = await json_of(await _refresh(browser, body["refresh_token"], BILLING))
    assert claims(billing["access_token"])["aud"] == BILLING
    assert billing["scope"] == "billing:read offline_access"
    both = await json_of(await _refresh(browser, billing["refresh_token"]))
    assert claims(both["access_token"])["aud"] == [API, BILLING]
    assert both["scope"] == SCOPE
    # Downscoping by scope too, within what the named resource allows.
    narrow = await json_of(await _refresh(browser, both["refresh_token"], API, scope="api:read"))
    assert narrow["scope"] == "api:read"
    assert claims(narrow["access_token"])["aud"] == API
    # A scope the named resource does not allow: refused, and the token is not spent.
    refused = await _refresh(browser, narrow["refresh_token"], API, scope="billing:read")
    assert "billing:read" in await _error(refused, "invalid_scope")
    # A resource that was never granted: refused, and the token is still not spent.
    await add_resource(browser.app, "https://other.example.com", ["api:read"])
    refused = await _refresh(browser, narrow["refresh_token"], "https://other.example.com")
    assert "not granted" in await _error(refused, "invalid_target")
    refused = await _refresh(browser, narrow["refresh_token"], "https://unknown.example.com")
    await _error(refused, "invalid_target")
    last = await json_of(await _refresh(browser, narrow["refresh_token"]))
    assert claims(last["access_token"])["aud"] == [API, BILLING]


async def test_exchange_with_a_resource_not_granted(browser: Browser, resources: None) -> None:
    code, verifier, _ = await _code(browser, API, scope="api:read")
    response = await _exchange(browser, code, verifier, BILLING)
    assert "not granted" in await _error(response, "invalid_target")


async def test_grant_without_resource_cannot_name_one_later(
    browser: Browser, resources: None
) -> None:
    code, verifier, _ = await _code(browser, scope="api:read offline_access")
    body = await json_of(await _exchange(browser, code, verifier))
    assert claims(body["access_token"])["aud"] == ISSUER
    await _error(await _refresh(browser, body["refresh_token"], API), "invalid_target")
    again = await json_of(await _refresh(browser, body["refresh_token"]))
    assert claims(again["access_token"])["aud"] == ISSUER


async def test_malformed_resource_at_exchange_keeps_the_code(
    browser: Browser, resources: None
) -> None:
    code, verifier, _ = await _code(browser, API, scope="api:read")
    assert "fragment" in await _error(
        await _exchange(browser, code, verifier, API + "#x"), "invalid_target"
    )
    body = await json_of(await _exchange(browser, code, verifier))
    assert claims(body["access_token"])["aud"] == API


@pytest.mark.parametrize(
    ("resource", "scope", "error"),
    [
        ("https://unknown.example.com", "api:read", "invalid_target"),
        (API + "#frag", "api:read", "invalid_target"),
        ("relative/path", "api:read", "invalid_target"),
        (API, "api:read billing:read", "invalid_scope"),
    ],
)
async def test_authorization_errors_go_back_to_the_client(
    browser: Browser, resources: None, resource: str, scope: str, error: str
) -> None:
    _, challenge = pkce_pair()
    pairs = with_resources(auth_params(challenge, scope=scope), resource)
    sent = answer(await _authorize(browser, pairs))
    assert sent["error"] == error
    assert sent["state"] == "st-123"
    assert sent["iss"] == ISSUER


async def test_consent_is_remembered_per_resource(browser: Browser, resources: None) -> None:
    _, _, first = await _code(browser, API, scope="api:read")
    assert first  # asked
    _, _, again = await _code(browser, API, scope="api:read", consent=False)
    assert again == ""  # remembered
    _, _, other = await _code(browser, API, BILLING, scope="api:read")
    assert other
    assert "Billing" in other


async def test_openid_adds_the_issuer_for_userinfo(browser: Browser, resources: None) -> None:
    code, verifier, _ = await _code(browser, API, scope="openid profile api:read")
    body = await json_of(await _exchange(browser, code, verifier))
    assert claims(body["access_token"])["aud"] == [API, ISSUER]
    userinfo = await browser.client.get(
        "/oidc/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert (await json_of(userinfo))["sub"]


async def test_pushed_request_carries_resources(browser: Browser, resources: None) -> None:
    verifier, challenge = pkce_pair()
    pairs = with_resources(auth_params(challenge, scope="api:read"), API, BILLING)
    pushed = await json_of(await post_pairs(browser.client, "/api/v1/oauth/par", pairs), 201)
    refused = with_resources(auth_params(challenge, scope="api:read"), "https://x.example")
    body = await error_body(await post_pairs(browser.client, "/api/v1/oauth/par", refused), 400)
    assert body["error"] == "invalid_target"
    query = {"client_id": "app", "request_uri": pushed["request_uri"]}
    response = await browser.follow(await browser.client.get(AUTHORIZE, query_string=query))
    response = await browser.consent(await browser.sign_in(response))
    tokens = await json_of(await _exchange(browser, answer(response)["code"], verifier))
    assert claims(tokens["access_token"])["aud"] == [API, BILLING]


async def test_device_grant_with_resources(app: Any, resources: None) -> None:
    await device_client(app, scopes=("api:read", "billing:read", "offline_access"))
    client = app.test_client()
    both = [("client_id", "tv"), ("scope", "api:read billing:read"), ("resource", API)]
    refused = await post_pairs(client, DEVICE_AUTHORIZATION, both)
    assert (await error_body(refused, 400))["error"] == "invalid_scope"
    pairs = [("client_id", "tv"), ("scope", "api:read")]
    started = await json_of(
        await post_pairs(client, DEVICE_AUTHORIZATION, [*pairs, ("resource", API)])
    )
    browser = DeviceBrowser(app)
    await browser.approve(started["user_code"])
    poll = [
        ("grant_type", DEVICE_GRANT),
        ("device_code", started["device_code"]),
        ("client_id", "tv"),
    ]
    body = await json_of(await token_pairs(client, [*poll, ("resource", API)]))
    assert claims(body["access_token"])["aud"] == API
    assert body["scope"] == "api:read"
    # A resource the user did not allow: refused (and, as a failed code exchange
    # burns the code, the approval is spent).
    second = await json_of(
        await post_pairs(client, DEVICE_AUTHORIZATION, [*pairs, ("resource", API)])
    )
    await browser.approve(second["user_code"])
    poll = [
        ("grant_type", DEVICE_GRANT),
        ("device_code", second["device_code"]),
        ("client_id", "tv"),
    ]
    not_granted = await token_pairs(client, [*poll, ("resource", BILLING)])
    assert (await error_body(not_granted, 400))["error"] == "invalid_target"
    assert (await error_body(await token_pairs(client, poll), 400))["error"] == "invalid_grant"
