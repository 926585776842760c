"""RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0) and what ending a
browser session does (Back-Channel Logout 1.0).

A logout request names its client by ``id_token_hint`` (an ID token Authly issued,
expired or not; its ``aud``) and/or ``client_id`` (they must agree). A
``post_logout_redirect_uri`` must be one the client registered, character for
character; without a known client it is refused. Refusals are ``LogoutRejected``
(shown as an HTML page: the browser is never sent to an unchecked URI).

The browser session is ended at once only when the hint's ``sid`` and ``sub`` name the
browser's current session; otherwise (no hint, a hint about another session) the user
confirms on a page. The page's form carries a random token whose record, in the session
backend under ``logout:<sha256(token)>`` for ``CONFIRM_TTL``, is bound to the SHA-256
of the browser's session cookie (``SameSite=Lax``: a cross-site POST does not carry
it) and taken once, so a forged POST changes nothing.

Ending a session: delete its record (the cookie is cleared by the web layer), revoke
every refresh-token family signed in through it (its ``sid``), and queue a logout token
for each of those families' clients that registered a ``backchannel_logout_uri``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlencode

from authly.backends.protocols import SessionStore
from authly.errors import InvalidRequest
from authly.oidc.backchannel import LogoutNotifier
from authly.oidc.id_tokens import IdTokenHint, IdTokens, InvalidIdTokenHint
from authly.store import clients as client_repo
from authly.store.clients import ClientRow
from authly.store.db import Database
from authly.tokens.service import TokenService
from authly.users.accounts import EndedSession
from authly.users.browser_sessions import BrowserSession, BrowserSessions

CONFIRM_TTL = 600.0
MAX_CLIENT_ID = 128
MAX_STATE = 2000
MAX_URI = 2000
PARAMETERS = (
    "id_token_hint",
    "client_id",
    "post_logout_redirect_uri",
    "state",
    "logout_hint",
    "ui_locales",
)


class LogoutRejected(InvalidRequest):
    """Raised when a logout request cannot be honoured as sent (bad hint, unknown
    client, unregistered post-logout URI): nothing is ended, nobody is redirected."""


class LogoutConfirmationFailed(InvalidRequest):
    """Raised when a confirmation form's token is missing, used, expired, or belongs to
    another browser."""

    default_description = (
        "The sign-out form could not be verified (it has expired or does not belong to "
        "this browser). You have not been signed out."
    )


@dataclass(frozen=True)
class LogoutRequest:
    """A checked logout request."""

    client_id: str | None = None
    client_name: str | None = None
    hint: IdTokenHint | None = None
    redirect_uri: str | None = None
    state: str | None = None

    def return_url(self) -> str | None:
        """Where to send the browser afterwards (with ``state``), or None for a page."""
        if self.redirect_uri is None:
            return None
        if not self.state:
            return self.redirect_uri
        separator = "&" if "?" in self.redirect_uri else "?"
        return self.redirect_uri + separator + urlencode({"state": self.state})

    def names(self, session: BrowserSession) -> bool:
        """Whether the hint speaks of this very session (same ``sid`` and ``sub``)."""
        hint = self.hint
        return (
            hint is not None
            and hint.sid is not None
            and hmac.compare_digest(hint.sid, session.sid)
            and hint.subject == session.user_id
        )


def _single(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    params: dict[str, str] = {}
    for name, value in pairs:
        if name in PARAMETERS:
            if name in params:
                raise LogoutRejected(f"The parameter {name} was sent more than once.")
            params[name] = value
    return params


def _binding(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("ascii")).hexdigest()


def _key(token: str) -> str:
    return "logout:" + hashlib.sha256(token.encode("ascii")).hexdigest()


class Logouts:
    def __init__(
        self,
        db: Database,
        id_tokens: IdTokens,
        browser_sessions: BrowserSessions,
        tokens: TokenService,
        store: SessionStore,
        notifier: LogoutNotifier,
        *,
        confirm_ttl: float = CONFIRM_TTL,
    ) -> None:
        self._db = db
        self._id_tokens = id_tokens
        self._browser_sessions = browser_sessions
        self._tokens = tokens
        self._store = store
        self._notifier = notifier
        self._confirm_ttl = confirm_ttl

    async def check(self, pairs: Iterable[tuple[str, str]]) -> LogoutRequest:
        """The request's client, hint and return URI, checked (LogoutRejected if not)."""
        params = _single(pairs)
        hint = None
        if params.get("id_token_hint"):
            try:
                hint = await self._id_tokens.verify_hint(params["id_token_hint"])
            except InvalidIdTokenHint as exc:
                raise LogoutRejected(exc.description) from None
        client_id = params.get("client_id") or None
        if client_id is not None and hint is not None and client_id != hint.client_id:
            raise LogoutRejected("client_id does not match the id_token_hint's audience.")
        client_id = client_id or (hint.client_id if hint else None)
        client: ClientRow | None = None
        if client_id is not None:
            if len(client_id) <= MAX_CLIENT_ID:
                client = await self._db.run(client_repo.get, client_id)
            if client is None:
                raise LogoutRejected("The client of this sign-out request is not registered.")
        uri = params.get("post_logout_redirect_uri") or None
        if uri is not None:
            if client is None:
                raise LogoutRejected(
                    "post_logout_redirect_uri needs id_token_hint or client_id to name the client."
                )
            if len(uri) > MAX_URI or uri not in client.post_logout_redirect_uris:
                raise LogoutRejected("post_logout_redirect_uri is not registered for this client.")
        state = params.get("state") or None
        if state is not None and len(state) > MAX_STATE:
            raise LogoutRejected(f"state may be at most {MAX_STATE} characters.")
        return LogoutRequest(
            client_id=client.client_id if client else None,
            client_name=client.name if client else None,
            hint=hint,
            redirect_uri=uri,
            state=state,
        )

    async def ask(self, request: LogoutRequest, session: BrowserSession) -> str:
        """Store a confirmation for ``session``'s browser; return the form's token."""
        token = secrets.token_urlsafe(32)
        record = {
            "binding": _binding(session.id),
            "client_id": request.client_id or "",
            "client_name": request.client_name or "",
            "redirect_uri": request.redirect_uri or "",
            "state": request.state or "",
        }
        await self._store.set(_key(token), record, self._confirm_ttl)
        return token

    async def confirmed(self, token: str | None, session: BrowserSession) -> LogoutRequest:
        """The request a confirmation form belongs to, taken once, if ``session``'s
        browser was shown it; LogoutConfirmationFailed otherwise."""
        if not token or len(token) != 43:
            raise LogoutConfirmationFailed()
        record = await self._store.take(_key(token))
        if not record or not hmac.compare_digest(record.get("binding", ""), _binding(session.id)):
            raise LogoutConfirmationFailed()
        return LogoutRequest(
            client_id=record.get("client_id") or None,
            client_name=record.get("client_name") or None,
            redirect_uri=record.get("redirect_uri") or None,
            state=record.get("state") or None,
        )

    async def end(self, session: BrowserSession) -> int:
        """End ``session``: its record, its refresh-token families, and a back-channel
        notice to each of their clients that asked for one. Returns the notices queued."""
        await self._browser_sessions.end(session.id)
        families = await self._tokens.revoke_session(session.sid)
        ended = [EndedSession(f.client_id, session.sid) for f in families]
        return await self._notifier.sessions_ended(session.user_id, ended)
