"""RP-initiated logout: the OpenID Provider's ``end_session_endpoint``.

    GET|POST /oidc/logout            check the request; sign out at once (a hint naming
                                     this browser's session), else ask on a page
    POST     /oidc/logout/confirm    the confirmation form

The rules are in oidc/logout.py. Refusals are HTML pages, never redirects; a redirect
goes only to the client's registered ``post_logout_redirect_uri`` (with ``state``),
otherwise the "You are signed out" page is shown. Redirects after a POST use 303.
"""

from __future__ import annotations

import logging

from quart import Blueprint, Response, request

from authly.oidc.logout import LogoutRejected, LogoutRequest
from authly.services import Services
from authly.store import users as user_repo
from authly.users.browser_sessions import BrowserSession
from authly.web.context import services
from authly.web.page_errors import register_page_errors
from authly.web.pages import SESSION_COOKIE, clear_cookie, error_page, page, redirect
from authly.web.parsing import read_form, read_form_pairs

log = logging.getLogger("authly.web")

bp = Blueprint("logout", __name__, template_folder="templates")


async def _session(s: Services) -> BrowserSession | None:
    return await s.browser_sessions.get(request.cookies.get(SESSION_COOKIE))


async def _finish(s: Services, logout: LogoutRequest, ended: bool) -> Response:
    url = logout.return_url()
    if url is not None:
        response = redirect(url, 303 if request.method == "POST" else 302)
    else:
        response = await page("logged_out.html")
    if ended or request.cookies.get(SESSION_COOKIE) is not None:
        clear_cookie(response, s.settings, SESSION_COOKIE)
    return response


@bp.route("/oidc/logout", methods=["GET", "POST"])
async def end_session() -> Response:
    """RP-Initiated Logout 1.0 §2 (GET query or POST form)."""
    if request.method == "POST":
        pairs = await read_form_pairs()
    else:
        pairs = list(request.args.items(multi=True))
    s = services()
    logout = await s.logouts.check(pairs)
    session = await _session(s)
    if session is None:
        return await _finish(s, logout, ended=False)  # nothing to end here
    if logout.names(session):
        await s.logouts.end(session)
        return await _finish(s, logout, ended=True)
    user = await s.db.run(user_repo.get_by_id, session.user_id)
    return await page(
        "logout.html",
        client_name=logout.client_name,
        username=user.username if user else "",
        csrf=await s.logouts.ask(logout, session),
    )


@bp.post("/oidc/logout/confirm")
async def confirm() -> Response:
    form = await read_form()
    s = services()
    session = await _session(s)
    if session is None:
        # Signed out already (or a forged post without the cookie): nothing to end.
        return await page("logged_out.html")
    logout = await s.logouts.confirmed(form.get("csrf"), session)
    await s.logouts.end(session)
    return await _finish(s, logout, ended=True)


# -- errors: HTML pages, never redirects ----------------------------------------------------


@bp.errorhandler(LogoutRejected)
async def _rejected(exc: LogoutRejected) -> Response:
    return await error_page(exc.description, 400, title="This sign-out request cannot be completed")


register_page_errors(bp, "the sign-out pages")
