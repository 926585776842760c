"""The device verification page (RFC 8628 §3.3), where the user approves a device:

    GET  /device                  sign-in form, or the form to enter the code
    GET  /device?user_code=...    (verification_uri_complete, or that form) the code's
                                  confirmation page: the code to compare, the client,
                                  the scopes, Deny / Allow
    POST /device/login            the sign-in form (the authorization pages' browser
                                  session: one sign-in serves both)
    POST /device/decision         Allow / Deny
    POST /device/logout           "not you?": end the session, back to the sign-in form

Every POST carries the token derived from the browser's ``authly_device`` cookie
(oauth/device_requests.py); looking a code up is limited per client IP
(failed guesses only). Every error raised here is an HTML page.
"""

from __future__ import annotations

from functools import partial

from quart import Blueprint, Response, request, url_for

from authly.errors import RateLimitExceeded
from authly.oauth.consent import describe_scopes
from authly.oauth.device import (
    APPROVED,
    DeviceGrant,
    MalformedUserCode,
    UnknownUserCode,
    format_user_code,
)
from authly.oauth.device_requests import GuessLimits, Verification, check_form, form_token
from authly.oauth.pending import new_token
from authly.services import Services
from authly.store.users import User
from authly.web.context import client_ip, device_grants, services
from authly.web.page_errors import register_page_errors
from authly.web.pages import error_page, page, redirect, set_cookie
from authly.web.parsing import read_form
from authly.web.sign_in import sign_in, sign_out, signed_in, token_cookie

bp = Blueprint("device_pages", __name__, template_folder="templates")

DEVICE_COOKIE = "authly_device"
DEVICE_PATH = "/device"
MAX_SHOWN_CODE = 32  # what is put back into a form: never more than a code could be


def _cookie() -> str | None:
    return token_cookie(DEVICE_COOKIE)


def _typed(text: str | None) -> str:
    return (text or "")[:MAX_SHOWN_CODE]


def _verification(s: Services) -> Verification:
    limits = GuessLimits(s.settings.login_rate_limit, s.settings.login_rate_window)
    return Verification(device_grants(s), s.rate_limit, limits)


def _back_to(user_code: str) -> Response:
    """303 to the page for ``user_code`` (the entry form when there is none)."""
    if user_code:
        return redirect(url_for("device_pages.verify", user_code=user_code), 303)
    return redirect(url_for("device_pages.verify"), 303)


@bp.get(DEVICE_PATH)
async def verify() -> Response:
    s = services()
    cookie = _cookie()
    fresh = cookie is None
    if cookie is None:
        cookie = new_token()
    response = await _show(s, form_token(cookie), request.args.get("user_code"))
    if fresh:
        set_cookie(response, s.settings, DEVICE_COOKIE, cookie, max_age=None, path=DEVICE_PATH)
    return response


async def _show(s: Services, csrf: str, text: str | None) -> Response:
    current = await signed_in(s)
    if current is None:
        return await _login_page(csrf, _typed(text))
    _, user = current
    if not text:
        return await _entry_page(csrf, user)
    try:
        grant = await _verification(s).lookup(text, client_ip())
    except (MalformedUserCode, UnknownUserCode) as exc:
        return await _entry_page(csrf, user, _typed(text), exc.description, 400)
    except RateLimitExceeded as exc:
        return await _entry_page(csrf, user, _typed(text), exc.description, 429, exc.headers())
    return await _confirm_page(s, csrf, user, grant)


async def _login_page(
    csrf: str,
    user_code: str,
    *,
    error: str | None = None,
    username: str = "",
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    return await page(
        "device_login.html",
        status,
        headers,
        csrf=csrf,
        user_code=user_code,
        error=error,
        username=username,
    )


async def _entry_page(
    csrf: str,
    user: User,
    user_code: str = "",
    error: str | None = None,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    return await page(
        "device.html",
        status,
        headers,
        csrf=csrf,
        user_code=user_code,
        username=user.username,
        error=error,
    )


async def _confirm_page(s: Services, csrf: str, user: User, grant: DeviceGrant) -> Response:
    return await page(
        "device_confirm.html",
        csrf=csrf,
        user_code=format_user_code(grant.user_code),
        client_name=grant.client_name,
        scopes=await describe_scopes(s.db, grant.scope),
        username=user.username,
        user_id=user.id,
    )


async def _checked_form() -> tuple[dict[str, str], str, str]:
    """The POSTed form, once its token matches the browser's device cookie (CsrfFailure
    otherwise); with the token for the next form, and the code it carries."""
    form = await read_form()
    cookie = _cookie()
    check_form(cookie, form.get("csrf"))
    return form, form_token(cookie or ""), _typed(form.get("user_code"))


@bp.post(DEVICE_PATH + "/login")
async def login() -> Response:
    form, csrf, user_code = await _checked_form()
    show_again = partial(_login_page, csrf, user_code)
    return await sign_in(services(), form, show_again, _back_to(user_code))


@bp.post(DEVICE_PATH + "/decision")
async def decision() -> Response:
    form, csrf, user_code = await _checked_form()
    s = services()
    choice = form.get("decision")
    if choice not in ("approve", "deny"):
        return await error_page("Choose Allow or Deny.", 400)
    current = await signed_in(s)
    if current is None or current[1].id != form.get("user"):
        # Signed out (or in as someone else) since the page was shown: ask again.
        return _back_to(user_code)
    session, user = current
    verification = _verification(s)
    try:
        grant = await verification.lookup(user_code, client_ip())
        decided = await verification.answer(
            grant, user, session.created_at, approve=choice == "approve"
        )
    except (MalformedUserCode, UnknownUserCode) as exc:
        return await _entry_page(csrf, user, user_code, exc.description, 400)
    except RateLimitExceeded as exc:
        return await _entry_page(csrf, user, user_code, exc.description, 429, exc.headers())
    return await _done_page(decided)


async def _done_page(grant: DeviceGrant) -> Response:
    if grant.status == APPROVED:
        title = "Device connected"
        message = f"{grant.client_name} can now access your account."
    elif grant.error == "invalid_scope":
        title = "Access refused"
        message = (
            f"{grant.client_name} asked for administrator access, which your account "
            "does not have. The device was refused."
        )
    else:
        title = "Access denied"
        message = f"{grant.client_name} was refused access to your account."
    return await page("device_done.html", title=title, message=message)


@bp.post(DEVICE_PATH + "/logout")
async def logout() -> Response:
    _, _, user_code = await _checked_form()
    return await sign_out(services(), _back_to(user_code))


register_page_errors(bp, "the device verification page")
