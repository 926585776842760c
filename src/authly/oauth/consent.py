"""Answering an authorization request: consent, the code, and the redirect back.

- Consent is remembered per user, client and exact scope set (store/consents.py);
  clients flagged ``first_party`` skip the page.
- Every answer, success or error, goes back to the verified redirect URI with
  ``state`` echoed and ``iss`` (RFC 9207), keeping any query the URI already has
  (RFC 6749 §3.1.2).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit, urlunsplit

from authly.oauth.authorization import (
    AuthorizationCodes,
    AuthorizationRequest,
    RedirectableError,
    UnsafeAuthorizationError,
    validate_authorization_request,
)
from authly.oauth.clients import redirect_uri_matches
from authly.oauth.resources import PARAMETER as RESOURCE
from authly.oauth.resources import consent_key
from authly.store import clients as client_repo
from authly.store import consents as consent_repo
from authly.store import scopes as scope_repo
from authly.store.codes import LoginEvent
from authly.store.db import Database
from authly.store.users import User
from authly.users.roles import ADMIN_SCOPE

# Parameters whose repetition makes the redirect target itself doubtful.
_TARGETING = ("client_id", "redirect_uri")


async def validate_pairs(
    db: Database, pairs: Iterable[tuple[str, str]], *, require_pushed: bool = False
) -> AuthorizationRequest:
    """Validate an authorization request given as (name, value) pairs (refused when
    ``require_pushed``: see ``validate_authorization_request``).

    RFC 6749 §3.1: parameters MUST NOT be repeated. A repeated ``client_id`` or
    ``redirect_uri`` is an unsafe error (no redirect); any other repeat is
    ``invalid_request`` sent back to the client, once the target is known good.
    ``resource`` may repeat (RFC 8707 §2).
    """
    params: dict[str, str] = {}
    repeated: list[str] = []
    resources: list[str] = []
    for name, value in pairs:
        if name == RESOURCE:
            resources.append(value)
            continue
        if name in params:
            if name not in repeated:
                repeated.append(name)
            continue
        params[name] = value
    for name in _TARGETING:
        if name in repeated:
            raise UnsafeAuthorizationError(f"The parameter {name} is repeated.")
    request = await validate_authorization_request(
        db, params, require_pushed=require_pushed, resources=resources
    )
    if repeated:
        names = ", ".join(n[:64] for n in repeated[:5])
        raise request.error("invalid_request", f"Parameters must not be repeated: {names}.")
    return request


def with_query(uri: str, params: dict[str, str]) -> str:
    """``uri`` with ``params`` added to whatever query it already has."""
    parts = urlsplit(uri)
    extra = urlencode(params)
    query = f"{parts.query}&{extra}" if parts.query else extra
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


@dataclass(frozen=True)
class Answer:
    """The authorization response (RFC 6749 §4.1.2 / §4.1.2.1, RFC 9207): its
    parameters, where they go, and how (``query`` redirect or ``form_post``)."""

    redirect_uri: str
    params: dict[str, str]
    response_mode: str = "query"

    def url(self) -> str:
        return with_query(self.redirect_uri, self.params)


def answer(
    redirect_uri: str, state: str | None, issuer: str, response_mode: str, **params: str
) -> Answer:
    values = dict(params)
    if state:
        values["state"] = state
    values["iss"] = issuer
    return Answer(redirect_uri, values, response_mode)


def error_answer(error: RedirectableError, issuer: str) -> Answer:
    return answer(
        error.redirect_uri,
        error.state,
        issuer,
        error.response_mode,
        error=error.error,
        error_description=error.description,
    )


def denied(request: AuthorizationRequest, description: str) -> RedirectableError:
    return request.error("access_denied", description)


def check_user_may_grant(request: AuthorizationRequest, user: User) -> None:
    """The admin scope is for admin users only (as on the password grant)."""
    if ADMIN_SCOPE in request.scope.split(" ") and not user.is_admin:
        raise request.error(
            "invalid_scope", "The admin scope can only be granted by an administrator."
        )


async def recheck_client(db: Database, request: AuthorizationRequest) -> None:
    """The client may have been deleted, or its redirect URIs changed, since the
    request was made: never answer to a URI that is no longer registered."""
    client = await db.run(client_repo.get, request.client_id)
    if client is None or not redirect_uri_matches(client, request.redirect_uri):
        raise UnsafeAuthorizationError(
            "The application's registration changed while you were signing in. "
            "Go back to the application and start again."
        )


@dataclass(frozen=True)
class ScopeLine:
    name: str
    description: str


async def describe_scopes(db: Database, scope: str) -> list[ScopeLine]:
    """The requested scopes with their descriptions from the scope registry."""
    registry = {s.name: s.description for s in await db.run(scope_repo.list_all)}
    names = [n for n in scope.split(" ") if n]
    return [ScopeLine(n, registry.get(n) or n) for n in names]


class Consents:
    def __init__(
        self,
        db: Database,
        codes: AuthorizationCodes,
        issuer: str,
        *,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._db = db
        self._codes = codes
        self._issuer = issuer
        self._now = now

    async def needed(self, request: AuthorizationRequest, user_id: str) -> bool:
        if request.first_party:
            return False
        key = consent_key(request.scope, tuple(request.resources.split()))
        return not await self._db.run(consent_repo.has, user_id, request.client_id, key)

    async def approve(
        self,
        request: AuthorizationRequest,
        user_id: str,
        *,
        remember: bool,
        login: LoginEvent | None = None,
    ) -> Answer:
        """Issue a code for ``request`` approved by ``user_id`` (signed in as ``login``
        says); return the answer to send back."""
        await recheck_client(self._db, request)
        if remember and not request.first_party:
            key = consent_key(request.scope, tuple(request.resources.split()))
            await self._db.run(consent_repo.remember, user_id, request.client_id, key, self._now())
        code = await self._codes.create(request, user_id, login)
        return answer(
            request.redirect_uri,
            request.state or None,
            self._issuer,
            request.response_mode,
            code=code,
        )

    def error_answer(self, error: RedirectableError) -> Answer:
        return error_answer(error, self._issuer)
