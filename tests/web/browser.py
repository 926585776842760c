"""An in-process "browser" for the authorization pages: a test client with its own
cookie jar that reads and submits the pages' real forms."""

from __future__ import annotations

import base64
import hashlib
import secrets
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.html_forms import Form, form_posting_to
from tests.web.helpers import create_user, json_of, register_client

AUTHORIZE = "/api/v1/oauth/authorize"
TOKEN = "/api/v1/oauth/token"
REDIRECT = "https://app.example/cb"
USER = "alice"
PASSWORD = "alice-password-1"


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def auth_params(
    challenge: str, *, client_id: str = "app", **overrides: str | None
) -> dict[str, str]:
    """A valid authorization request; an override of None drops that parameter."""
    params: dict[str, str | None] = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT,
        "scope": "profile email",
        "state": "st-123",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    params.update(overrides)
    return {k: v for k, v in params.items() if v is not None}


def answer(response: Any, redirect_uri: str = REDIRECT) -> dict[str, str]:
    """The authorization response sent back to the client (single-valued query)."""
    assert response.status_code in (302, 303), response.status_code
    location = response.headers["Location"]
    sent, expected = urlsplit(location), urlsplit(redirect_uri)
    assert sent[:3] == expected[:3], location  # scheme, host and path as registered
    assert sent.query.startswith(expected.query), location  # its own query kept first
    assert not sent.fragment, location
    query = parse_qs(urlsplit(location).query, keep_blank_values=True, strict_parsing=True)
    assert all(len(v) == 1 for v in query.values()), query
    return {k: v[0] for k, v in query.items()}


async def html_of(response: Any, status: int = 200) -> str:
    text = await response.get_data(as_text=True)
    assert response.status_code == status, text
    assert response.mimetype == "text/html"
    return text  # type: ignore[no-any-return]


async def web_client(app: Any, **kw: Any) -> Any:
    """The usual public web-app client for these tests."""
    kw.setdefault("redirect_uris", (REDIRECT,))
    kw.setdefault("grant_types", ("authorization_code", "refresh_token"))
    kw.setdefault("scopes", ("profile", "email", "offline_access", "admin"))
    return await register_client(app, kw.pop("client_id", "app"), **kw)


async def with_web_client_and_alice(test_app: Any) -> Any:
    """The usual web client and user, in an app the test started itself."""
    await web_client(test_app)
    await create_user(test_app, USER, PASSWORD)
    return test_app


class Browser:
    def __init__(self, app: Any) -> None:
        self.app = app
        self.client = app.test_client()

    async def authorize(self, params: dict[str, str], *, method: str = "GET") -> Any:
        if method == "POST":
            return await self.client.post(AUTHORIZE, form=params)
        return await self.client.get(AUTHORIZE, query_string=params)

    async def form(self, response: Any, suffix: str, status: int = 200) -> Form:
        return form_posting_to(await html_of(response, status), suffix)

    async def submit(self, form: Form, button: str | None = None, **overrides: str) -> Any:
        return await self.client.post(form.action, form=form.values(button, **overrides))

    async def follow(self, response: Any) -> Any:
        assert response.status_code in (302, 303), response.status_code
        return await self.client.get(response.headers["Location"])

    async def sign_in(self, response: Any, username: str = USER, password: str = PASSWORD) -> Any:
        """Fill in the login page ``response``; return what the browser lands on."""
        login = await self.form(response, "/authorize/login")
        after = await self.submit(login, username=username, password=password)
        assert after.status_code == 303, await after.get_data(as_text=True)
        return await self.follow(after)

    async def consent(self, response: Any, decision: str = "approve") -> Any:
        return await self.submit(await self.form(response, "/authorize/consent"), decision)

    async def code_for(self, params: dict[str, str], **login: str) -> dict[str, str]:
        """Go through login (if asked) and consent (if asked); return the answer."""
        response = await self.authorize(params)
        if response.status_code == 200 and "/authorize/login" in await html_of(response):
            response = await self.sign_in(response, **login)
        if response.status_code == 200:
            response = await self.consent(response)
        return answer(response, params.get("redirect_uri", REDIRECT))


async def exchange(
    client: Any,
    code: str,
    verifier: str,
    *,
    client_id: str = "app",
    redirect_uri: str | None = REDIRECT,
    headers: dict[str, str] | None = None,
    status: int = 200,
) -> dict[str, Any]:
    data = {"grant_type": "authorization_code", "code": code, "code_verifier": verifier}
    if client_id:
        data["client_id"] = client_id
    if redirect_uri is not None:
        data["redirect_uri"] = redirect_uri
    response = await client.post(TOKEN, form=data, headers=headers or {})
    return await json_of(response, status)  # type: ignore[no-any-return]


def no_redirect(response: Any) -> None:
    """The answer must not send the browser anywhere (no open redirector)."""
    assert "Location" not in response.headers
