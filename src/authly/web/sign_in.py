"""The browser session behind the sign-in forms of the authorization pages
(web/authorize.py) and the device verification page (web/device_pages.py): one sign-in
serves both.

Each page has its own form and its own way to show it again; what the form does is the
same: check the username and password, start a fresh session (ending the one the
browser had), or end it ("not you?").
"""

from __future__ import annotations

from typing import Protocol

from quart import Response, request

from authly.errors import InvalidGrant, RateLimitExceeded
from authly.oauth.pending import well_formed
from authly.services import Services
from authly.store.users import User
from authly.users.browser_sessions import BrowserSession
from authly.users.login import MAX_PASSWORD, MAX_USERNAME
from authly.web.context import client_ip
from authly.web.pages import SESSION_COOKIE, clear_cookie, set_cookie

INVALID = "Invalid username or password."


class SignInPage(Protocol):
    """Shows a page's sign-in form again, with why the last attempt failed."""

    async def __call__(
        self, *, error: str, username: str, status: int, headers: dict[str, str] | None
    ) -> Response: ...


def token_cookie(name: str) -> str | None:
    """The browser's cookie ``name`` when it holds a well-formed token (oauth/pending.py)."""
    value = request.cookies.get(name)
    return value if well_formed(value) else None


async def signed_in(s: Services) -> tuple[BrowserSession, User] | None:
    """The browser's session and its user; None when it is not signed in."""
    return await s.browser_sessions.resume(request.cookies.get(SESSION_COOKIE))


async def sign_in(
    s: Services, form: dict[str, str], show_again: SignInPage, done: Response
) -> Response:
    """Checks the form's username and password. Right: a new session, whose cookie is
    set on ``done``, and ``done``; wrong: the form again, from ``show_again``."""
    username = form.get("username", "")
    password = form.get("password", "")
    if not username.strip() or not password:
        return await show_again(
            error="Enter your username and password.", username=username, status=400, headers=None
        )
    if len(username) > MAX_USERNAME or len(password) > MAX_PASSWORD:
        return await show_again(error=INVALID, username="", status=400, headers=None)
    try:
        user = await s.login.authenticate(username, password, client_ip())
    except RateLimitExceeded as exc:
        return await show_again(
            error=f"Too many sign-in attempts. Try again in {exc.retry_after} seconds.",
            username=username,
            status=429,
            headers=exc.headers(),
        )
    except InvalidGrant:
        return await show_again(error=INVALID, username=username, status=401, headers=None)
    await s.browser_sessions.end(request.cookies.get(SESSION_COOKIE))
    session = await s.browser_sessions.start(user.id)
    set_cookie(done, s.settings, SESSION_COOKIE, session.id, max_age=int(s.browser_sessions.ttl))
    return done


async def sign_out(s: Services, done: Response) -> Response:
    """Ends the browser's session and clears its cookie on ``done``."""
    await s.browser_sessions.end(request.cookies.get(SESSION_COOKIE))
    clear_cookie(done, s.settings, SESSION_COOKIE)
    return done
