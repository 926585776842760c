"""Requiring pushed authorization requests (AUTHLY_REQUIRE_PAR, and a client's own
``require_pushed_authorization_requests``), the flag in the admin API, and a pushed
request completed on another instance sharing the store (RFC 9126 §5, §6)."""

from __future__ import annotations

from tests.conftest import ISSUER, services_of
from tests.web.admin_client import CLIENTS, AdminClient, session_handle
from tests.web.browser import (
    REDIRECT,
    Browser,
    answer,
    auth_params,
    exchange,
    pkce_pair,
    with_web_client_and_alice,
)
from tests.web.helpers import error_body, json_of, running_app
from tests.web.par_support import answer_via_par, push, pushed_uri, refused_page

DISCOVERY = ("/.well-known/oauth-authorization-server", "/.well-known/openid-configuration")


async def _admin(test_app) -> AdminClient:
    client = test_app.test_client()
    return AdminClient(client, await session_handle(client))


# ---- AUTHLY_REQUIRE_PAR ------------------------------------------------------------------


async def test_the_global_setting_refuses_unpushed_requests(settings_factory):
    async with running_app(settings_factory(require_par=True)) as app:
        await with_web_client_and_alice(app)
        browser = Browser(app)
        verifier, challenge = pkce_pair()
        refused = answer(await browser.authorize(auth_params(challenge)))
        assert refused["error"] == "invalid_request"
        assert "pushed" in refused["error_description"]
        assert refused["state"] == "st-123"
        assert refused["iss"] == ISSUER
        # Unsafe requests still get a page, never a redirect.
        await refused_page(await browser.authorize(auth_params(challenge, client_id="nobody")))
        # Pushed, the same request goes through.
        result = answer(
            await answer_via_par(browser, await pushed_uri(browser.client, auth_params(challenge)))
        )
        tokens = await exchange(browser.client, result["code"], verifier)
        assert tokens["token_type"] == "Bearer"
        client = app.test_client()
        for path in DISCOVERY:
            body = await json_of(await client.get(path))
            assert body["require_pushed_authorization_requests"] is True


# ---- a client's own flag -------------------------------------------------------------------


async def test_a_client_can_require_pushed_requests_for_itself(app, browser, alice):
    admin = await _admin(app)
    other = await json_of(
        await admin.post(
            CLIENTS,
            json={"name": "Other", "client_type": "public", "redirect_uris": [REDIRECT]},
        ),
        201,
    )
    assert other["require_pushed_authorization_requests"] is False
    shown = await json_of(
        await admin.patch(
            f"{CLIENTS}/app",
            json={"require_pushed_authorization_requests": True, "scopes": ["profile", "email"]},
        )
    )
    assert shown["require_pushed_authorization_requests"] is True
    assert (await json_of(await admin.get(f"{CLIENTS}/app")))[
        "require_pushed_authorization_requests"
    ] is True
    verifier, challenge = pkce_pair()
    refused = answer(await browser.authorize(auth_params(challenge)))
    assert refused["error"] == "invalid_request"
    # Another client is not concerned (and the server-wide setting stays false).
    page = await browser.authorize(auth_params(challenge, client_id=other["client_id"]))
    assert page.status_code == 200
    metadata = await json_of(await app.test_client().get(DISCOVERY[0]))
    assert metadata["require_pushed_authorization_requests"] is False
    # The flagged client pushes, and gets its code.
    result = answer(
        await answer_via_par(browser, await pushed_uri(browser.client, auth_params(challenge)))
    )
    assert (await exchange(browser.client, result["code"], verifier))["token_type"] == "Bearer"
    # And the flag can be cleared again.
    await json_of(
        await admin.patch(f"{CLIENTS}/app", json={"require_pushed_authorization_requests": False})
    )
    assert "code" in answer(await browser.authorize(auth_params(challenge)))


async def test_the_flag_is_checked_when_registering(app):
    admin = await _admin(app)
    response = await admin.post(
        CLIENTS,
        json={
            "name": "Service",
            "client_type": "confidential",
            "grant_types": ["client_credentials"],
            "require_pushed_authorization_requests": True,
        },
    )
    body = await error_body(response, 400)
    assert "needs authorization_code" in body["error_description"]
    response = await admin.post(
        CLIENTS,
        json={
            "name": "Web",
            "client_type": "confidential",
            "redirect_uris": [REDIRECT],
            "require_pushed_authorization_requests": "yes",
        },
    )
    assert "true or false" in (await error_body(response, 400))["error_description"]
    created = await json_of(
        await admin.post(
            CLIENTS,
            json={
                "name": "Web",
                "client_type": "confidential",
                "redirect_uris": [REDIRECT],
                "require_pushed_authorization_requests": True,
            },
        ),
        201,
    )
    assert created["require_pushed_authorization_requests"] is True
    stored = await services_of(app).registry.get_client(created["client_id"])
    assert stored.require_pushed_authorization_requests is True


# ---- another instance --------------------------------------------------------------------


async def test_a_request_pushed_to_one_instance_is_completed_on_another(settings):
    # Two apps on one SQLite file, no Redis: sessions (pushed and pending requests) live
    # in the store, as with `--workers N` or instances behind a load balancer.
    async with running_app(settings) as first, running_app(settings) as second:
        await with_web_client_and_alice(first)
        verifier, challenge = pkce_pair()
        request_uri = await pushed_uri(first.test_client(), auth_params(challenge, state="far"))
        browser = Browser(second)
        result = answer(await answer_via_par(browser, request_uri))
        assert result["state"] == "far"
        tokens = await exchange(first.test_client(), result["code"], verifier)
        assert tokens["scope"] == "email profile"
        # Spent for every instance.
        for app in (first, second):
            response = await Browser(app).authorize(
                {"client_id": "app", "request_uri": request_uri}
            )
            await refused_page(response)


async def test_pushing_needs_no_session_on_the_pushing_instance(settings):
    # The PAR endpoint is a back-channel call: it sets no cookie.
    async with running_app(settings) as app:
        await with_web_client_and_alice(app)
        _, challenge = pkce_pair()
        response = await push(app.test_client(), auth_params(challenge))
        await json_of(response, 201)
        assert "Set-Cookie" not in response.headers


async def test_pushed_requests_on_every_session_backend(backend_settings):
    # Memory/store sessions, and Redis sessions (AUTHLY_REDIS_SESSION): the pool, the
    # atomic take and the hop to the pending request work the same on both.
    async with running_app(backend_settings) as app:
        await with_web_client_and_alice(app)
        sessions = services_of(app).sessions
        verifier, challenge = pkce_pair()
        browser = Browser(app)
        request_uri = await pushed_uri(browser.client, auth_params(challenge))
        assert sessions.backend_name == ("redis" if backend_settings.redis.session else "database")
        result = answer(await answer_via_par(browser, request_uri))
        assert (await exchange(browser.client, result["code"], verifier))["token_type"] == "Bearer"
        await refused_page(
            await browser.authorize({"client_id": "app", "request_uri": request_uri})
        )
