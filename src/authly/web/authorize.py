"""The authorization endpoint and its HTML pages (login, consent, errors).

    GET|POST /api/v1/oauth/authorize            validate; then login page, consent page
                                                or straight back to the client
    POST     /api/v1/oauth/authorize/login      the login form
    GET      /api/v1/oauth/authorize/continue   where login / sign-out land (POST-redirect-GET)
    POST     /api/v1/oauth/authorize/consent    Allow / Deny
    POST     /api/v1/oauth/authorize/logout     "not you?": end the session, show the login

Errors about the client or redirect URI are HTML pages and never redirect
(UnsafeAuthorizationError); every other answer goes back to the client's redirect URI
(oauth/consent.py). Redirects after a POST use 303 (RFC 9700 §4.12).

A pushed request (RFC 9126: ``client_id`` + ``request_uri``, oauth/par.py) becomes a
pending request on its first use, and the browser is sent on to ``/authorize/continue``
for it, so the spent request_uri is never needed again.
"""

from __future__ import annotations

import logging
import time
from functools import partial

from quart import Blueprint, Response, request, url_for

from authly.errors import RateLimitExceeded
from authly.oauth.authorization import RedirectableError, UnsafeAuthorizationError
from authly.oauth.consent import Answer, check_user_may_grant, denied
from authly.oauth.consent import describe_scopes as describe
from authly.oauth.par import resolve_authorization_request
from authly.oauth.pending import Pending, new_token
from authly.oauth.resources import describe_resources
from authly.services import Services
from authly.store.codes import LoginEvent
from authly.store.users import User
from authly.users.browser_sessions import BrowserSession
from authly.web import static_files
from authly.web.context import client_ip, services
from authly.web.page_errors import register_page_errors
from authly.web.pages import (
    BINDING_COOKIE,
    BINDING_PATH,
    FORM_POST_HEADERS,
    error_page,
    page,
    redirect,
    set_cookie,
)
from authly.web.par import pushed_requests
from authly.web.parsing import read_form, read_form_pairs
from authly.web.sign_in import sign_in, sign_out, signed_in, token_cookie

log = logging.getLogger("authly.web")

bp = Blueprint(
    "authorize",
    __name__,
    url_prefix="/api/v1/oauth",
    template_folder="templates",
)


@bp.get("/static/<path:filename>", endpoint="static")
async def static_file(filename: str) -> Response:
    """The stylesheet (web/static_files.py: a fixed table, so any other name is 404)."""
    return await static_files.send(filename)


def _after_post() -> int:
    return 303 if request.method == "POST" else 302


def _binding_cookie() -> str | None:
    return token_cookie(BINDING_COOKIE)


@bp.route("/authorize", methods=["GET", "POST"])
async def authorize() -> Response:
    """RFC 6749 §4.1.1 (GET, or POST with a form body: §3.1), or RFC 9126 §4
    (``client_id`` + ``request_uri`` of a pushed request)."""
    if request.method == "POST":
        pairs = await read_form_pairs()
    else:
        pairs = list(request.args.items(multi=True))
    s = services()
    try:
        resolved = await resolve_authorization_request(
            s.db, pushed_requests(s), pairs, require_pushed=s.settings.require_par
        )
    except RedirectableError as exc:
        return await _send(s.consents.error_answer(exc), _after_post())
    auth_request = resolved.request
    current = await signed_in(s)
    if current is None:
        await _limit_anonymous(s)
    binding = _binding_cookie()
    fresh_binding = binding is None
    if binding is None:
        binding = new_token()
    pending = await s.pending.create(auth_request, binding)
    if resolved.pushed:
        # The request_uri is spent: carry on at the pending request's own URL, which a
        # reload of the login or consent page comes back to (oauth/par.py).
        response = redirect(_continue_url(pending), _after_post())
    else:
        response = await _proceed(s, pending, current)
    if fresh_binding:
        set_cookie(response, s.settings, BINDING_COOKIE, binding, max_age=None, path=BINDING_PATH)
    return response


@bp.get("/authorize/continue")
async def resume() -> Response:
    s = services()
    pending = await s.pending.for_browser(request.args.get("request"), _binding_cookie())
    return await _proceed(s, pending, await signed_in(s))


async def _limit_anonymous(s: Services) -> None:
    """Requests from browsers without a login session store a pending request each:
    at most AUTHLY_AUTHORIZE_RATE_LIMIT per window per client IP (RateLimitExceeded,
    shown as a 429 page with Retry-After)."""
    settings = s.settings
    decision = await s.rate_limit.check_rate_limit(
        f"authorize:ip:{client_ip()}",
        settings.authorize_rate_limit,
        settings.authorize_rate_window,
    )
    if not decision.allowed:
        raise RateLimitExceeded(
            decision.retry_after,
            "Too many sign-in requests from your network. Try again in a little while.",
        )


async def _proceed(
    s: Services, pending: Pending, current: tuple[BrowserSession, User] | None
) -> Response:
    """Login page, consent page, or the answer: whatever this request needs next.

    OpenID Connect (Core §3.1.2.1): ``prompt=login`` and an exceeded ``max_age`` ask
    for the password again; ``prompt=consent`` shows the consent page even if consent
    was remembered; ``prompt=none`` never shows a page: it answers ``login_required`` or
    ``consent_required`` instead.
    """
    auth = pending.request
    if current is not None and _must_sign_in_again(s, pending, current[0]):
        current = None
    if current is None:
        if auth.prompts("none"):
            return await _fail(s, pending, "login_required", "The user is not signed in.")
        return await _login_page(pending)
    session, user = current
    try:
        check_user_may_grant(auth, user)
    except RedirectableError as exc:
        await s.pending.claim(pending)
        return await _send(s.consents.error_answer(exc), _after_post())
    ask = auth.prompts("consent") and not auth.first_party
    if not ask and not await s.consents.needed(auth, user.id):
        return await _approve(s, pending, session, user)
    if auth.prompts("none"):
        return await _fail(s, pending, "consent_required", "The user has not consented.")
    pending = await s.pending.shown_to(pending, user.id)
    return await _consent_page(s, pending, user)


def _must_sign_in_again(s: Services, pending: Pending, session: BrowserSession) -> bool:
    auth = pending.request
    started = pending.expires_at - s.pending.ttl  # when this request was made
    if session.created_at >= started:
        return False  # signed in for this very request
    if auth.prompts("login"):
        return True
    return auth.max_age is not None and time.time() - session.created_at > auth.max_age


async def _fail(s: Services, pending: Pending, error: str, description: str) -> Response:
    await s.pending.claim(pending)
    return await _send(
        s.consents.error_answer(pending.request.error(error, description)), _after_post()
    )


async def _approve(s: Services, pending: Pending, session: BrowserSession, user: User) -> Response:
    # Take it first: of concurrent submissions exactly one goes on to get a code.
    await s.pending.claim(pending)
    try:
        check_user_may_grant(pending.request, user)  # again: the consent form may be old
    except RedirectableError as exc:
        return await _send(s.consents.error_answer(exc), _after_post())
    login = LoginEvent(session.created_at, session.sid)
    answer = await s.consents.approve(pending.request, user.id, remember=True, login=login)
    return await _send(answer, _after_post())


async def _send(answer: Answer, status: int) -> Response:
    """The answer to the client: a redirect with the parameters in the query, or, for
    ``response_mode=form_post``, a page whose form POSTs them to the redirect URI."""
    if answer.response_mode != "form_post":
        return redirect(answer.url(), status)
    return await page(
        "form_post.html",
        headers=FORM_POST_HEADERS,
        action=answer.redirect_uri,
        fields=answer.params,
    )


async def _login_page(
    pending: Pending,
    *,
    error: str | None = None,
    username: str = "",
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    return await page(
        "login.html",
        status,
        headers,
        client_name=pending.request.client_name,
        request_id=pending.id,
        csrf=pending.csrf,
        error=error,
        username=username or pending.request.login_hint,
    )


async def _consent_page(s: Services, pending: Pending, user: User) -> Response:
    return await page(
        "consent.html",
        client_name=pending.request.client_name,
        scopes=await describe(s.db, pending.request.scope),
        resources=await describe_resources(s.db, pending.request.resources),
        username=user.username,
        request_id=pending.id,
        csrf=pending.csrf,
    )


def _continue_url(pending: Pending) -> str:
    return url_for("authorize.resume", request=pending.id)


@bp.post("/authorize/login")
async def login() -> Response:
    form = await read_form()
    s = services()
    pending = await s.pending.for_form(form.get("request_id"), form.get("csrf"), _binding_cookie())
    done = redirect(_continue_url(pending), 303)
    return await sign_in(s, form, partial(_login_page, pending), done)


@bp.post("/authorize/consent")
async def consent() -> Response:
    form = await read_form()
    s = services()
    pending = await s.pending.for_form(form.get("request_id"), form.get("csrf"), _binding_cookie())
    decision = form.get("decision")
    if decision not in ("approve", "deny"):
        return await error_page("Choose Allow or Deny.", 400)
    current = await signed_in(s)
    if current is None or current[1].id != pending.user_id:
        # Signed out (or in as someone else) since the page was shown: ask again.
        return redirect(_continue_url(pending), 303)
    session, user = current
    if decision == "deny":
        await s.pending.claim(pending)
        error = denied(pending.request, "The user denied the request.")
        return await _send(s.consents.error_answer(error), 303)
    return await _approve(s, pending, session, user)


@bp.post("/authorize/logout")
async def logout() -> Response:
    form = await read_form()
    s = services()
    pending = await s.pending.for_form(form.get("request_id"), form.get("csrf"), _binding_cookie())
    return await sign_out(s, redirect(_continue_url(pending), 303))


# -- errors: HTML pages for everything raised by this blueprint's views -----------------


@bp.errorhandler(UnsafeAuthorizationError)
async def _unsafe(exc: UnsafeAuthorizationError) -> Response:
    return await error_page(exc.description, 400, title="This request cannot be completed")


register_page_errors(bp, "an authorization page")
