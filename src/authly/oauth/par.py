"""Pushed authorization requests (RFC 9126).

A client POSTs its authorization request to the PAR endpoint, authenticated exactly as
at the token endpoint (``push``); the parameters are checked by the authorization
endpoint's own validation (oauth/authorization.py), with every error answered as RFC
6749 §5.2 JSON, never a redirect. A valid request is kept in the session backend for
``PUSHED_TTL`` seconds (so any instance sharing Redis or the store can complete it) in
a bounded pool of its own (``POOL``: public clients can push), under
``par:<sha256(reference)>``; the client gets ``urn:ietf:params:oauth:request_uri:<reference>``
(256 random bits).

The authorization endpoint then accepts ``client_id`` + ``request_uri``
(``resolve_authorization_request``): only the pushed parameters count (RFC 9126 §4:
any other parameter is ignored), the request_uri must have been pushed by that client and
not have expired, and it is single use: its first use *takes* it (atomically: of two
concurrent uses exactly one succeeds) and the web layer turns it into an ordinary
pending request (oauth/pending.py), which the login and consent pages then carry, so a
reload of those pages keeps working while the request_uri is spent. An unknown,
expired, used or foreign request_uri is ``UnsafeAuthorizationError``: an HTML page,
never a redirect.

With ``require_pushed_authorization_requests`` (AUTHLY_REQUIRE_PAR for every client, or
the client's own flag) an authorization request without ``request_uri`` is refused with
``invalid_request`` (oauth/authorization.py).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from authly.backends.protocols import SessionStore
from authly.errors import InvalidRequest, OAuthError
from authly.oauth.authorization import (
    AuthorizationRequest,
    RedirectableError,
    UnsafeAuthorizationError,
    validate_authorization_request,
)
from authly.oauth.clients import redirect_uri_matches
from authly.oauth.consent import validate_pairs
from authly.oauth.grants import TokenContext, authenticate_client, limit_client, limit_ip
from authly.oauth.pending import new_token, well_formed
from authly.store import clients as client_repo
from authly.store.db import Database

REQUEST_URI_PREFIX = "urn:ietf:params:oauth:request_uri:"
PUSHED_TTL = 60  # seconds (RFC 9126 §2.2: "a short period"; its examples use 60)
POOL = "par"
DEFAULT_MAX_ENTRIES = 50_000
ENDPOINT = "par"  # the path under /api/v1/oauth (client assertions may name its URL)


class UnknownRequestUri(UnsafeAuthorizationError):
    """Raised when a request_uri is malformed, unknown, expired or already used."""

    def __init__(self) -> None:
        super().__init__(
            "This sign-in request (request_uri) is unknown, has expired or was already "
            "used. Go back to the application and start again."
        )


class PushRefused(OAuthError):
    """An authorization request refused at the PAR endpoint: the error the
    authorization endpoint would have redirected (invalid_scope, unauthorized_client,
    unsupported_response_type, ...), as RFC 6749 §5.2 JSON with status 400."""

    status_code = 400

    def __init__(self, error: str, description: str) -> None:
        self.error = error
        super().__init__(description)


@dataclass(frozen=True)
class Pushed:
    request_uri: str
    expires_in: int


@dataclass(frozen=True)
class Resolved:
    """An authorization request ready for the pages, and whether it was pushed."""

    request: AuthorizationRequest
    pushed: bool


def _key(reference: str) -> str:
    return "par:" + hashlib.sha256(reference.encode("ascii")).hexdigest()


def _reference(request_uri: str | None) -> str | None:
    if request_uri is None or not request_uri.startswith(REQUEST_URI_PREFIX):
        return None
    reference = request_uri[len(REQUEST_URI_PREFIX) :]
    return reference if well_formed(reference) else None


class PushedRequests:
    """Pushed requests in the session backend: ``push`` one, ``take`` it once."""

    def __init__(
        self,
        store: SessionStore,
        *,
        ttl: int = PUSHED_TTL,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self.ttl = ttl
        self.max_entries = max_entries
        self._now = now

    async def push(self, request: AuthorizationRequest) -> Pushed:
        reference = new_token()
        data = {**request.to_session(), "expires_at": repr(self._now() + self.ttl)}
        await self._store.add(
            _key(reference), data, self.ttl, pool=POOL, max_entries=self.max_entries
        )
        return Pushed(REQUEST_URI_PREFIX + reference, self.ttl)

    async def take(self, request_uri: str | None, client_id: str | None) -> AuthorizationRequest:
        """The pushed request behind ``request_uri``, if ``client_id`` pushed it and it
        is still live; it is gone afterwards. UnknownRequestUri otherwise (also for
        another client's request_uri, which is left alone for its owner)."""
        reference = _reference(request_uri)
        if reference is None:
            raise UnknownRequestUri()
        key = _key(reference)
        data = await self._store.get(key)
        if not data:
            raise UnknownRequestUri()
        try:
            request = AuthorizationRequest.from_session(data)
            expires_at = float(data["expires_at"])
        except (KeyError, ValueError):
            raise UnknownRequestUri() from None
        if expires_at <= self._now():
            raise UnknownRequestUri()
        if request.client_id != client_id:
            raise UnknownRequestUri()
        if await self._store.take(key, pool=POOL) is None:
            raise UnknownRequestUri()  # used meanwhile: exactly one taker wins
        return request


async def push(
    ctx: TokenContext,
    pushed: PushedRequests,
    params: Mapping[str, str],
    resources: Sequence[str] = (),
) -> dict[str, Any]:
    """The RFC 9126 §2.2 body (201) for a pushed authorization request ``params`` (and
    its ``resource`` values, RFC 8707, which may repeat)."""
    await limit_ip(ctx)
    client = await authenticate_client(
        ctx.client_auth or ctx.db, ctx.authorization, params, endpoint=ENDPOINT
    )
    await limit_client(ctx, client)
    if "request_uri" in params:
        raise InvalidRequest("request_uri cannot be pushed: it is what a push returns.")
    if params.get("client_id", client.client_id) != client.client_id:
        raise InvalidRequest("client_id differs from the authenticated client.")
    authorization = {**params, "client_id": client.client_id}
    try:
        request = await validate_authorization_request(
            ctx.db, authorization, pushed=True, resources=resources
        )
    except UnsafeAuthorizationError as exc:
        raise InvalidRequest(exc.description) from None
    except RedirectableError as exc:
        raise PushRefused(exc.error, exc.description) from None
    answer = await pushed.push(request)
    return {"request_uri": answer.request_uri, "expires_in": answer.expires_in}


async def resolve_authorization_request(
    db: Database,
    pushed: PushedRequests,
    pairs: Iterable[tuple[str, str]],
    *,
    require_pushed: bool = False,
) -> Resolved:
    """The authorization request a call to the authorization endpoint makes: the pushed
    one when it names a ``request_uri`` (taken: single use), else its own parameters,
    validated as ever (refused when pushed requests are required)."""
    pairs = list(pairs)
    if not any(name == "request_uri" for name, _ in pairs):
        request = await validate_pairs(db, pairs, require_pushed=require_pushed)
        return Resolved(request, pushed=False)
    given: dict[str, str] = {}
    for name, value in pairs:
        if name in ("client_id", "request_uri"):
            if name in given:
                raise UnsafeAuthorizationError(f"The parameter {name} is repeated.")
            given[name] = value
    client_id = given.get("client_id") or ""
    if not 0 < len(client_id) <= 128:
        raise UnsafeAuthorizationError("Unknown client.")
    request = await pushed.take(given["request_uri"], client_id)
    # The client may have been deleted, or the URI unregistered, since the push.
    client = await db.run(client_repo.get, client_id)
    if client is None or not redirect_uri_matches(client, request.redirect_uri):
        raise UnsafeAuthorizationError(
            "The application's registration changed since this request was made. "
            "Go back to the application and start again."
        )
    return Resolved(request, pushed=True)
