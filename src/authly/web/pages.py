"""HTML responses for the browser pages: templates, security headers, cookies, redirects.

Pages are server-rendered (Jinja autoescaping on), need no JavaScript (the form_post
answer page runs one script, allowed by its hash, and works without it), are never
cached, and may not be framed (the consent page must not be clickjackable).
"""

from __future__ import annotations

import base64
import hashlib

from quart import Response, render_template

from authly.config import Settings

SESSION_COOKIE = "authly_session"
BINDING_COOKIE = "authly_browser"
BINDING_PATH = "/api/v1/oauth/authorize"

PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    # No form-action: browsers apply it to the redirect a form submission ends in, and
    # the consent form must be able to end at the client's redirect URI.
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    # Request ids are in some URLs, codes in redirects: do not leak them as Referer.
    "Referrer-Policy": "no-referrer",
}


# The one script Authly serves: it submits a form_post answer (OAuth 2.0 Form Post
# Response Mode). Allowed by its hash alone; the page has a button for browsers without
# JavaScript.
FORM_POST_SCRIPT = "document.forms[0].submit();"
_SCRIPT_HASH = base64.b64encode(hashlib.sha256(FORM_POST_SCRIPT.encode()).digest()).decode()
FORM_POST_HEADERS = {
    "Content-Security-Policy": (
        f"default-src 'none'; style-src 'self'; img-src 'self'; "
        f"script-src 'sha256-{_SCRIPT_HASH}'; frame-ancestors 'none'; base-uri 'none'"
    )
}


async def page(
    template: str, status: int = 200, headers: dict[str, str] | None = None, **context: object
) -> Response:
    body = await render_template(template, script=FORM_POST_SCRIPT, **context)
    response = Response(body, status=status, content_type="text/html; charset=utf-8")
    response.headers.update(PAGE_HEADERS)
    if headers:
        response.headers.update(headers)
    return response


async def error_page(
    message: str,
    status: int = 400,
    *,
    title: str = "Something went wrong",
    headers: dict[str, str] | None = None,
) -> Response:
    return await page("error.html", status, headers, title=title, message=message)


def redirect(location: str, status: int) -> Response:
    response = Response("", status=status)
    response.headers["Location"] = location
    response.headers.update(
        {k: v for k, v in PAGE_HEADERS.items() if k in ("Cache-Control", "Pragma")}
    )
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def set_cookie(
    response: Response,
    settings: Settings,
    name: str,
    value: str,
    *,
    max_age: int | None,
    path: str = "/",
) -> None:
    """HttpOnly, SameSite=Lax; Secure when the issuer is https."""
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=path,
        secure=settings.issuer.startswith("https://"),
        httponly=True,
        samesite="Lax",
    )


def clear_cookie(response: Response, settings: Settings, name: str, *, path: str = "/") -> None:
    response.delete_cookie(
        name,
        path=path,
        secure=settings.issuer.startswith("https://"),
        httponly=True,
        samesite="Lax",
    )
