"""The device authorization grant (RFC 8628) end to end: a real ``python -m authly serve``
(hypercorn) process, a device client (Authlib's OAuth 2 client, and plain httpx for the
error cases) that requests codes and polls, and a user who answers in a real headless
Chromium (Playwright driving Debian's /usr/bin/chromium).
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# Authlib warns at import that it would rather drive "httpx2" (see test_authlib_client).
import authlib.deprecate  # noqa: F401
import httpx
import pytest

from tests.e2e.oauth_support import ME, TOKEN, Spawn, start_server
from tests.e2e.server import ADMIN_PASSWORD
from tests.e2e.test_browser_flow import CHROMIUM, chromium  # noqa: F401 (fixture)
from tests.support.processes import ServerProcess
from tests.support.store import register_client

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="The httpx module is deprecated")
    from authlib.integrations.httpx_client import OAuth2Client, OAuthError

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(),
        reason=f"{CHROMIUM} is missing (Debian package 'chromium'; .ci/run installs it)",
    ),
]

DEVICE_AUTHORIZATION = "/api/v1/oauth/device_authorization"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
SCOPE = "openid profile email offline_access"
SECRET = "box-secret-value-0123456789"


@pytest.fixture
def server(spawn: Spawn, tmp_path: Path) -> ServerProcess:
    db = tmp_path / "authly.db"
    register_client(
        db,
        "tv",
        name="Living-room TV",
        grant_types=(DEVICE_GRANT, "refresh_token"),
        scopes=tuple(SCOPE.split()),
    )
    register_client(
        db, "box", grant_types=(DEVICE_GRANT,), secret=SECRET, auth_method="client_secret_basic"
    )
    return start_server(spawn, tmp_path)


@pytest.fixture
def page(chromium: Any) -> Iterator[Any]:  # noqa: F811
    context = chromium.new_context()
    try:
        browser_page = context.new_page()
        browser_page.set_default_timeout(15_000)
        yield browser_page
    finally:
        context.close()


def sign_in(page: Any) -> None:
    assert page.title() == "Sign in · Authly"
    page.fill("#username", "admin")
    page.fill("#password", ADMIN_PASSWORD)
    page.click("button[type=submit]")


def test_device_flow_with_authlib_and_a_real_browser(server: ServerProcess, page: Any) -> None:
    metadata = httpx.get(server.url("/.well-known/openid-configuration"), timeout=10).json()
    assert metadata["device_authorization_endpoint"] == server.url(DEVICE_AUTHORIZATION)
    token_url = metadata["token_endpoint"]
    with OAuth2Client(client_id="tv", token_endpoint_auth_method="none", timeout=10.0) as device:
        response = device.request(
            "POST",
            metadata["device_authorization_endpoint"],
            withhold_token=True,  # no token yet: this request is how the device gets one
            data={"client_id": "tv", "scope": SCOPE},
        )
        assert response.status_code == 200, response.text
        codes = response.json()
        assert codes["verification_uri"] == server.url("/device")

        # The device polls before the user has done anything.
        with pytest.raises(OAuthError) as waiting:
            device.fetch_token(token_url, grant_type=DEVICE_GRANT, device_code=codes["device_code"])
        assert waiting.value.error == "authorization_pending"

        # The user opens verification_uri_complete (the QR code), signs in, compares the
        # code and allows.
        page.goto(codes["verification_uri_complete"])
        sign_in(page)
        page.wait_for_selector("text=Connect a device?")
        assert page.inner_text(".user-code code") == codes["user_code"]
        assert "Living-room TV" in page.inner_text("main")
        background = page.eval_on_selector(
            "button.primary", "b => getComputedStyle(b).backgroundColor"
        )
        assert background == "rgb(37, 99, 235)"  # the stylesheet was applied (CSP allows it)
        page.click("button[value=approve]")
        page.wait_for_selector("text=Device connected")

        time.sleep(codes["interval"])  # the device keeps to its polling interval
        token = device.fetch_token(
            token_url, grant_type=DEVICE_GRANT, device_code=codes["device_code"]
        )
        assert token["token_type"] == "Bearer"
        assert token["scope"] == "email offline_access openid profile"
        assert {"refresh_token", "id_token"} <= set(token)
        me = device.get(server.url(ME))
        assert me.status_code == 200, me.text
        assert me.json()["username"] == "admin"

        # Tokens are issued once; the refresh token works through the library.
        with pytest.raises(OAuthError) as again:
            device.fetch_token(token_url, grant_type=DEVICE_GRANT, device_code=codes["device_code"])
        assert again.value.error == "invalid_grant"
        renewed = device.refresh_token(token_url)
        assert renewed["refresh_token"] != token["refresh_token"]


def _poll(
    http: httpx.Client,
    server: ServerProcess,
    device_code: str,
    client_id: str | None = "tv",
    auth: tuple[str, str] | None = None,
) -> httpx.Response:
    data = {"grant_type": DEVICE_GRANT, "device_code": device_code}
    if client_id:
        data["client_id"] = client_id
    return http.post(server.url(TOKEN), data=data, auth=auth)


def _error(response: httpx.Response) -> str:
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["error_description"]
    return str(body["error"])


def test_the_errors_a_polling_device_sees(server: ServerProcess, page: Any, tmp_path: Path) -> None:
    with httpx.Client(timeout=10.0) as http:

        def start() -> dict[str, Any]:
            response = http.post(server.url(DEVICE_AUTHORIZATION), data={"client_id": "tv"})
            assert response.status_code == 200, response.text
            return response.json()  # type: ignore[no-any-return]

        first, second, third = start(), start(), start()
        # authorization_pending, then slow_down for polling again at once (RFC 8628 §3.5).
        assert _error(_poll(http, server, first["device_code"])) == "authorization_pending"
        assert _error(_poll(http, server, first["device_code"])) == "slow_down"
        # Another (authenticated) client, and an unknown code: invalid_grant.
        foreign = _poll(http, server, first["device_code"], None, auth=("box", SECRET))
        assert _error(foreign) == "invalid_grant"
        assert _error(_poll(http, server, "x" * 43)) == "invalid_grant"

        # The user types the second code by hand on the verification page and denies.
        page.goto(second["verification_uri"])
        sign_in(page)
        page.wait_for_selector("text=Enter the code shown on your device.")
        page.fill("#user_code", second["user_code"].lower().replace("-", " "))
        page.click("button[type=submit]")
        page.wait_for_selector("text=Connect a device?")
        page.click("button[value=deny]")
        page.wait_for_selector("text=Access denied")
        assert _error(_poll(http, server, second["device_code"])) == "access_denied"

        # A wrong code on the page: a clear message, nothing else happens.
        page.goto(second["verification_uri"] + "?user_code=" + second["user_code"])
        assert "That code is not valid or has expired." in page.inner_text(".alert")

        # The third code expires (its deadline moved into the past in the server's store).
        _expire(tmp_path / "authly.db", third["device_code"])
        assert _error(_poll(http, server, third["device_code"])) == "expired_token"


def _expire(db: Path, device_code: str) -> None:
    """Move a pending grant's deadline into the past, in the store the server's sessions
    live in (the database session backend: no Redis here)."""
    key = "device:" + hashlib.sha256(device_code.encode("ascii")).hexdigest()
    with sqlite3.connect(db) as conn:
        cursor = conn.execute(
            "UPDATE sessions SET data = json_set(data, '$.expires_at', ?) WHERE id = ?",
            (repr(time.time() - 1), key),
        )
        assert cursor.rowcount == 1
