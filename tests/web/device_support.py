"""Helpers for the device authorization grant tests (RFC 8628): a registered device
client, the device's requests, and an in-process browser for the verification page."""

from __future__ import annotations

from typing import Any

from tests.html_forms import Form, form_posting_to
from tests.web.browser import PASSWORD, USER, html_of
from tests.web.helpers import TOKEN, json_of, register_client

DEVICE_AUTHORIZATION = "/api/v1/oauth/device_authorization"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
VERIFY = "/device"
TV_SCOPES = ("openid", "profile", "email", "offline_access", "admin")


async def device_client(app: Any, client_id: str = "tv", **fields: Any) -> Any:
    """A public client registered for the device code and refresh token grants."""
    fields.setdefault("grant_types", (DEVICE_GRANT, "refresh_token"))
    fields.setdefault("scopes", TV_SCOPES)
    fields.setdefault("name", "Living-room TV")
    return await register_client(app, client_id, **fields)


async def start(client: Any, client_id: str = "tv", **params: str) -> dict[str, Any]:
    """A device authorization request that succeeds; its response body."""
    response = await client.post(DEVICE_AUTHORIZATION, form={"client_id": client_id, **params})
    body: dict[str, Any] = await json_of(response)
    return body


async def poll(
    client: Any, device_code: str, client_id: str = "tv", headers: dict[str, str] | None = None
) -> Any:
    form = {"grant_type": DEVICE_GRANT, "device_code": device_code}
    if client_id:
        form["client_id"] = client_id
    return await client.post(TOKEN, form=form, headers=headers or {})


class DeviceBrowser:
    """A cookie-keeping browser on the verification page, submitting its real forms."""

    def __init__(self, app: Any) -> None:
        self.client = app.test_client()

    async def open(self, user_code: str | None = None) -> Any:
        query = {} if user_code is None else {"user_code": user_code}
        return await self.client.get(VERIFY, query_string=query)

    async def form(self, response: Any, suffix: str, status: int = 200) -> Form:
        return form_posting_to(await html_of(response, status), suffix)

    async def submit(self, form: Form, button: str | None = None, **overrides: str) -> Any:
        if form.method == "get":
            return await self.client.get(form.action, query_string=form.values(button, **overrides))
        return await self.client.post(form.action, form=form.values(button, **overrides))

    async def follow(self, response: Any) -> Any:
        assert response.status_code in (302, 303), response.status_code
        return await self.client.get(response.headers["Location"])

    async def sign_in(self, response: Any, username: str = USER, password: str = PASSWORD) -> Any:
        """Fill in the sign-in form ``response``; return the page the browser lands on."""
        login = await self.form(response, "/device/login")
        after = await self.submit(login, username=username, password=password)
        assert after.status_code == 303, await after.get_data(as_text=True)
        return await self.follow(after)

    async def decide(self, response: Any, decision: str = "approve") -> Any:
        return await self.submit(await self.form(response, "/device/decision"), decision)

    async def approve(self, user_code: str, decision: str = "approve", **login: str) -> str:
        """Open the page for ``user_code`` (signing in if asked), answer; the result page."""
        response = await self.open(user_code)
        if "/device/login" in await html_of(response):
            response = await self.sign_in(response, **login)
        return await html_of(await self.decide(response, decision))
