"""POST /api/v1/oauth/par and the authorization endpoint's request_uri (RFC 9126)."""

from __future__ import annotations

import pytest

from tests.conftest import ISSUER, services_of
from tests.web.browser import (
    REDIRECT,
    Browser,
    answer,
    auth_params,
    exchange,
    html_of,
    pkce_pair,
    with_web_client_and_alice,
)
from tests.web.helpers import basic, error_body, json_of, me, register_client, running_app
from tests.web.par_support import (
    PAR,
    SECRET,
    answer_via_par,
    push,
    pushed_uri,
    refused_page,
    session_key,
    use_request_uri,
    web_confidential,
)

# ---- the whole flow ----------------------------------------------------------------------


async def test_push_then_authorize_login_consent_code_and_tokens(app, browser, alice):
    verifier, challenge = pkce_pair()
    response = await push(browser.client, auth_params(challenge, state="pushed-state"))
    body = await json_of(response, 201)
    assert response.headers["Cache-Control"] == "no-store"
    assert set(body) == {"request_uri", "expires_in"}
    assert body["expires_in"] == 60
    # The authorization request carries only client_id and request_uri.
    continued = await use_request_uri(browser, body["request_uri"])
    login = await browser.follow(continued)
    html = await html_of(login)
    assert "Sign in" in html
    consent = await browser.sign_in(login)
    assert "Allow access?" in await html_of(consent)
    result = answer(await browser.consent(consent))
    assert set(result) == {"code", "state", "iss"}
    assert result["state"] == "pushed-state"
    assert result["iss"] == ISSUER
    tokens = await exchange(browser.client, result["code"], verifier)
    assert tokens["scope"] == "email profile"
    profile = await (await me(browser.client, f"Bearer {tokens['access_token']}")).get_json()
    assert profile["id"] == alice.id


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
async def test_a_confidential_client_pushes_with_its_credentials(app, browser, alice, method):
    await web_confidential(app, auth_method=method)
    verifier, challenge = pkce_pair()
    params = auth_params(challenge, client_id="web")
    if method == "client_secret_basic":
        del params["client_id"]  # the Basic credentials name the client
        request_uri = await pushed_uri(browser.client, params, basic("web", SECRET))
    else:
        request_uri = await pushed_uri(browser.client, params | {"client_secret": SECRET})
    result = answer(await answer_via_par(browser, request_uri, "web"))
    if method == "client_secret_basic":
        headers = basic("web", SECRET)
        tokens = await exchange(
            browser.client, result["code"], verifier, client_id="", headers=headers
        )
    else:
        tokens = await _post_exchange(browser, result["code"], verifier)
    assert tokens["token_type"] == "Bearer"


async def _post_exchange(browser, code, verifier):
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "code_verifier": verifier,
        "redirect_uri": REDIRECT,
        "client_id": "web",
        "client_secret": SECRET,
    }
    return await json_of(await browser.client.post("/api/v1/oauth/token", form=form))


async def test_only_the_pushed_parameters_count(app, browser, alice):
    _, challenge = pkce_pair()
    request_uri = await pushed_uri(browser.client, auth_params(challenge, scope="profile"))
    extra = {
        "state": "not-this-one",
        "scope": "profile email admin",
        "redirect_uri": "https://evil.example/cb",
        "response_type": "token",
        "code_challenge": "x",
    }
    continued = await use_request_uri(browser, request_uri, **extra)
    consent = await browser.sign_in(await browser.follow(continued))
    html = await html_of(consent)
    assert "Your username and account details" in html
    assert "Your email address" not in html
    result = answer(await browser.consent(consent))  # to the pushed redirect_uri
    assert result["state"] == "st-123"
    assert "code" in result


async def test_a_signed_in_browser_with_consent_goes_straight_back(app, browser, alice):
    _, challenge = pkce_pair()
    await browser.code_for(auth_params(challenge))  # signs in, remembers consent
    request_uri = await pushed_uri(browser.client, auth_params(challenge, state="again"))
    back = await browser.follow(await use_request_uri(browser, request_uri))
    assert back.status_code == 302
    assert answer(back)["state"] == "again"


async def test_openid_parameters_are_pushed_too(app, browser, alice):
    _, challenge = pkce_pair()
    request_uri = await pushed_uri(browser.client, auth_params(challenge, prompt="none"))
    result = answer(await browser.follow(await use_request_uri(browser, request_uri)))
    assert result["error"] == "login_required"
    assert result["state"] == "st-123"


async def test_form_post_is_pushed_too(app, browser, alice):
    _, challenge = pkce_pair()
    params = auth_params(challenge, response_mode="form_post")
    response = await answer_via_par(browser, await pushed_uri(browser.client, params))
    html = await html_of(response)
    assert f'action="{REDIRECT}"' in html
    assert 'name="code"' in html


# ---- single use, reloads, expiry, ownership ----------------------------------------------


async def test_a_request_uri_is_single_use_but_its_pages_reload(app, browser, alice):
    _, challenge = pkce_pair()
    request_uri = await pushed_uri(browser.client, auth_params(challenge))
    continued = await use_request_uri(browser, request_uri)
    assert "/authorize/login" in await html_of(await browser.follow(continued))
    # Reloading the login page (the continue URL) keeps working ...
    login = await browser.follow(continued)
    assert "/authorize/login" in await html_of(login)
    # ... while the request_uri itself is spent.
    again = await browser.authorize({"client_id": "app", "request_uri": request_uri})
    assert "already used" in await refused_page(again)
    assert await services_of(app).sessions.get(session_key(request_uri)) is None
    consent = await browser.sign_in(login)
    assert "code" in answer(await browser.consent(consent))


async def test_an_expired_request_uri_is_refused_with_a_page(app, browser, alice):
    _, challenge = pkce_pair()
    request_uri = await pushed_uri(browser.client, auth_params(challenge))
    sessions = services_of(app).sessions
    stored = await sessions.get(session_key(request_uri))
    assert stored is not None
    assert stored["state"] == "st-123"
    # Time passes: its own deadline is behind us (the backend may not have dropped it yet).
    await sessions.set(session_key(request_uri), stored | {"expires_at": "1.0"}, 60)
    response = await browser.authorize({"client_id": "app", "request_uri": request_uri})
    assert "has expired" in await refused_page(response)
    # And once the backend's 60 s are over, it is simply gone.
    other = await pushed_uri(browser.client, auth_params(challenge))
    await sessions.delete(session_key(other))
    response = await browser.authorize({"client_id": "app", "request_uri": other})
    await refused_page(response)


@pytest.mark.parametrize(
    "request_uri",
    ["", "urn:ietf:params:oauth:request_uri:" + "A" * 43, "https://app.example/req", "x" * 5000],
)
async def test_unknown_request_uris_are_pages(browser, alice, request_uri):
    response = await browser.authorize({"client_id": "app", "request_uri": request_uri})
    await refused_page(response)


async def test_a_request_uri_belongs_to_the_client_that_pushed_it(app, browser, alice):
    await register_client(
        app,
        "other",
        redirect_uris=("https://other.example/cb",),
        grant_types=("authorization_code",),
    )
    _, challenge = pkce_pair()
    request_uri = await pushed_uri(browser.client, auth_params(challenge))
    for client_id in ("other", "nobody", ""):
        response = await browser.authorize({"client_id": client_id, "request_uri": request_uri})
        await refused_page(response)
    response = await browser.authorize({"request_uri": request_uri})
    await refused_page(response)
    # Refusing a foreign use does not spend it.
    assert "code" in answer(await answer_via_par(browser, request_uri))


async def test_repeated_client_id_or_request_uri_is_a_page(browser, alice):
    _, challenge = pkce_pair()
    request_uri = await pushed_uri(browser.client, auth_params(challenge))
    query = f"client_id=app&request_uri={request_uri}&request_uri={request_uri}"
    response = await browser.client.get(f"/api/v1/oauth/authorize?{query}")
    assert "repeated" in await refused_page(response)


async def test_a_client_deleted_since_the_push_gets_a_page(app, browser, alice):
    _, challenge = pkce_pair()
    request_uri = await pushed_uri(browser.client, auth_params(challenge))
    await services_of(app).registry.delete_client("app")
    response = await browser.authorize({"client_id": "app", "request_uri": request_uri})
    assert "registration changed" in await refused_page(response)


# ---- the PAR endpoint's errors: JSON, never a redirect ------------------------------------


async def test_request_uri_cannot_be_pushed(browser, alice):
    _, challenge = pkce_pair()
    params = auth_params(challenge, request_uri="urn:ietf:params:oauth:request_uri:abc")
    body = await error_body(await push(browser.client, params), 400)
    assert body["error"] == "invalid_request"
    assert "request_uri" in body["error_description"]


async def test_a_confidential_client_must_authenticate(app, browser, alice):
    await web_confidential(app)
    _, challenge = pkce_pair()
    params = auth_params(challenge, client_id="web")
    for headers, form in (
        ({}, params),  # client_id alone
        (basic("web", "wrong-secret"), params),
        ({}, params | {"client_secret": "wrong-secret"}),
    ):
        response = await push(browser.client, form, headers)
        assert (await error_body(response, 401))["error"] == "invalid_client"
        assert response.headers["WWW-Authenticate"] == 'Basic realm="authly"'
    no_client = {k: v for k, v in params.items() if k != "client_id"}
    assert (await error_body(await push(browser.client, no_client), 401))["error"] == (
        "invalid_client"
    )
    # Unknown client: the same 401.
    unknown = auth_params(challenge, client_id="nobody")
    assert (await error_body(await push(browser.client, unknown), 401))["error"] == (
        "invalid_client"
    )


async def test_the_body_client_id_must_be_the_authenticated_one(app, browser, alice):
    await web_confidential(app)
    _, challenge = pkce_pair()
    response = await push(browser.client, auth_params(challenge), basic("web", SECRET))
    assert (await error_body(response, 400))["error"] == "invalid_request"


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"redirect_uri": "https://evil.example/cb"}, "invalid_request"),
        ({"code_challenge": None}, "invalid_request"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge": "too-short"}, "invalid_request"),
        ({"response_type": None}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"scope": "profile nope"}, "invalid_scope"),
        ({"state": "s" * 1025}, "invalid_request"),
        ({"prompt": "select_account"}, "invalid_request"),
        ({"max_age": "soon"}, "invalid_request"),
        ({"nonce": "n" * 513}, "invalid_request"),
        ({"response_mode": "fragment"}, "invalid_request"),
    ],
)
async def test_pushed_parameters_are_validated_like_the_authorization_endpoints(
    browser, alice, overrides, error
):
    _, challenge = pkce_pair()
    response = await push(browser.client, auth_params(challenge, **overrides))
    assert (await error_body(response, 400))["error"] == error
    assert "Location" not in response.headers


async def test_a_client_without_the_code_grant_is_unauthorized(app, browser, alice):
    await register_client(
        app,
        "svc",
        secret=SECRET,
        auth_method="client_secret_basic",
        redirect_uris=(REDIRECT,),
        grant_types=("client_credentials",),
    )
    _, challenge = pkce_pair()
    response = await push(
        browser.client, auth_params(challenge, client_id="svc"), basic("svc", SECRET)
    )
    assert (await error_body(response, 400))["error"] == "unauthorized_client"


async def test_repeated_parameters_and_wrong_bodies_are_refused(browser, alice):
    _, challenge = pkce_pair()
    query = "&".join(f"{k}={v}" for k, v in auth_params(challenge).items()) + "&scope=email"
    response = await browser.client.post(
        PAR, data=query, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert (await error_body(response, 400))["error"] == "invalid_request"
    response = await browser.client.post(PAR, json=auth_params(challenge))
    await error_body(response, 415)
    response = await browser.client.get(PAR)
    await error_body(response, 405)


async def test_pushing_counts_against_the_token_endpoint_budget(settings_factory):
    async with running_app(settings_factory(token_rate_limit=2)) as app:
        await with_web_client_and_alice(app)
        client = app.test_client()
        _, challenge = pkce_pair()
        for _ in range(2):
            await json_of(await push(client, auth_params(challenge)), 201)
        response = await push(client, auth_params(challenge))
        assert (await error_body(response, 429))["error"] == "too_many_requests"
        assert "Retry-After" in response.headers


# ---- discovery ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"]
)
async def test_both_documents_advertise_the_endpoint(client, path):
    body = await json_of(await client.get(path))
    assert body["pushed_authorization_request_endpoint"] == f"{ISSUER}{PAR}"
    assert body["require_pushed_authorization_requests"] is False
    # Served where it says (POST only).
    assert (await client.post(PAR, form={})).status_code == 401


async def test_the_browser_keeps_its_binding_cookie_across_the_hop(app, alice):
    browser = Browser(app)
    _, challenge = pkce_pair()
    request_uri = await pushed_uri(browser.client, auth_params(challenge))
    continued = await use_request_uri(browser, request_uri)
    assert "authly_browser=" in continued.headers["Set-Cookie"]
    # Another browser cannot pick up the pending request it was turned into.
    stranger = Browser(app)
    response = await stranger.follow(continued)
    await html_of(response, 400)
