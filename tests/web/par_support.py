"""Helpers for the pushed authorization request tests (RFC 9126)."""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import parse_qs, urlsplit

from authly.oauth.par import REQUEST_URI_PREFIX
from tests.web.browser import AUTHORIZE, REDIRECT, Browser, html_of
from tests.web.helpers import json_of, register_client

PAR = "/api/v1/oauth/par"
SECRET = "web-client-secret-value"


async def push(client: Any, params: dict[str, str], headers: dict[str, str] | None = None) -> Any:
    return await client.post(PAR, form=params, headers=headers or {})


async def pushed_uri(
    client: Any, params: dict[str, str], headers: dict[str, str] | None = None
) -> str:
    """Push ``params``; the request_uri of the 201 answer."""
    body = await json_of(await push(client, params, headers), 201)
    assert set(body) == {"request_uri", "expires_in"}
    assert body["expires_in"] == 60
    assert body["request_uri"].startswith(REQUEST_URI_PREFIX)
    return str(body["request_uri"])


def session_key(request_uri: str) -> str:
    """Where the session backend keeps a pushed request."""
    reference = request_uri.removeprefix(REQUEST_URI_PREFIX)
    return "par:" + hashlib.sha256(reference.encode("ascii")).hexdigest()


async def web_confidential(app: Any, client_id: str = "web", **fields: Any) -> Any:
    """A confidential web client (client_secret_basic unless ``auth_method`` says)."""
    fields.setdefault("auth_method", "client_secret_basic")
    return await register_client(
        app,
        client_id,
        secret=SECRET,
        redirect_uris=(REDIRECT,),
        grant_types=("authorization_code", "refresh_token"),
        scopes=("profile", "email", "offline_access"),
        **fields,
    )


async def use_request_uri(
    browser: Browser, request_uri: str, client_id: str = "app", **extra: str
) -> Any:
    """The authorization request naming a pushed request: the browser is sent on to
    the pending request's page (asserted); return that redirect."""
    response = await browser.authorize(
        {"client_id": client_id, "request_uri": request_uri, **extra}
    )
    assert response.status_code == 302, await response.get_data(as_text=True)
    location = urlsplit(response.headers["Location"])
    assert location.path == f"{AUTHORIZE}/continue", location
    assert list(parse_qs(location.query)) == ["request"]
    return response


async def refused_page(response: Any) -> str:
    """An HTML error page, never a redirect."""
    assert "Location" not in response.headers
    return await html_of(response, 400)


async def answer_via_par(browser: Browser, request_uri: str, client_id: str = "app") -> Any:
    """Use the request_uri, then sign in and consent when the pages ask; return the
    response that sends the browser back to the client."""
    response = await browser.follow(await use_request_uri(browser, request_uri, client_id))
    if response.status_code == 200 and "/authorize/login" in await html_of(response):
        response = await browser.sign_in(response)
    if response.status_code == 200:
        response = await browser.consent(response)
    return response
