"""Dynamic client registration (RFC 7591) and its management protocol (RFC 7592).

``AUTHLY_REGISTRATION`` decides who may register: ``closed`` (the default: the
registration endpoint is NotFound and not advertised), ``token`` (a Bearer initial
access token an operator created, oauth/initial_tokens.py) or ``open`` (anyone).
Registrations are limited per client IP (``AUTHLY_REGISTRATION_RATE_LIMIT`` per
``AUTHLY_REGISTRATION_RATE_WINDOW``), counted before anything else is checked.

A registration runs as one write transaction: spend one use of the initial access
token, check the metadata (oauth/client_metadata.py, which applies every client rule of
oauth/registration.py), insert the client and the SHA-256 of its new registration access
token. A refused registration therefore spends nothing.

The registration access token (``reg_`` + 256 random bits, returned once) is the
client's credential at its client configuration endpoint (RFC 7592): read, replace,
delete. It is compared in constant time with the stored hash; a wrong token, an unknown
client and a client an operator created (it has no token) are the same 401
``invalid_token``. Management works whatever the registration mode, so closing
registration does not strand the clients that registered; its requests count against
the token endpoint's per-IP budget.

Secrets: a confidential client gets a secret (256 bits, SHA-256 stored; shown once),
except ``private_key_jwt`` clients. A replace (PUT) never lets the client choose its
secret: a ``client_secret`` in the body must be the current one. When the new method
needs a secret the server does not hold (from ``private_key_jwt``, or into
``client_secret_jwt``, whose secret must be kept), a new one is issued and returned
(RFC 7592 §2.2 allows it); moving to ``private_key_jwt`` drops the secret.
"""

from __future__ import annotations

import hmac
import logging
import math
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from authly.backends.protocols import RateLimiter
from authly.errors import Conflict, InvalidToken, NotFound, RateLimitExceeded
from authly.oauth import initial_tokens
from authly.oauth.client_keys import CLIENT_SECRET_JWT, PRIVATE_KEY_JWT
from authly.oauth.client_metadata import InvalidClientMetadata, parse_metadata
from authly.oauth.clients import SECRET_METHODS, hash_secret, new_client_secret
from authly.oauth.grants import TokenLimits, limit
from authly.oauth.registration import MAX_CLIENT_ID, ClientValues, new_client_id
from authly.store import clients as client_repo
from authly.store import registrations as repo
from authly.store import scopes as scope_repo
from authly.store.clients import ClientExists, ClientRow
from authly.store.conn import Conn, write_transaction
from authly.store.db import Database

log = logging.getLogger("authly.registration")

CLOSED, TOKEN, OPEN = "closed", "token", "open"
REGISTRATION_TOKEN_PREFIX = "reg_"  # noqa: S105 (a prefix, not a secret)
MAX_TOKEN = 256
_NOT_REGISTERED = "The registration access token is invalid, or the client is not registered."


@dataclass(frozen=True)
class Registered:
    """A client as a registration or a replace leaves it, with what is shown only now."""

    client: ClientRow
    client_secret: str | None  # a new secret (on a replace: only when one was issued)
    registration_access_token: str


def _row_values(values: ClientValues) -> dict[str, Any]:
    """The ClientRow fields a registration sets from the checked metadata."""
    return {
        "name": values.name,
        "auth_method": values.auth_method,
        "redirect_uris": values.redirect_uris,
        "grant_types": values.grant_types,
        "scopes": values.scopes,
        "id_token_signed_response_alg": values.id_token_alg,
        "post_logout_redirect_uris": values.post_logout_redirect_uris,
        "backchannel_logout_uri": values.backchannel_logout_uri,
        "backchannel_logout_session_required": values.backchannel_logout_session_required,
        "jwks": values.jwks,
        "jwks_uri": values.jwks_uri,
        "require_pushed_authorization_requests": values.require_pushed_authorization_requests,
        "dpop_bound_access_tokens": values.dpop_bound_access_tokens,
    }


def _secrets_for(
    method: str, current: ClientRow | None, fresh: tuple[str, str]
) -> tuple[str | None, str | None, str | None]:
    """(secret_hash, jwt_secret, secret shown now) for a client moving to ``method``."""
    if method == "none" or method == PRIVATE_KEY_JWT:
        return None, None, None
    secret_hash = current.secret_hash if current is not None else None
    jwt_secret = current.jwt_secret if current is not None else None
    if method in SECRET_METHODS and secret_hash is not None:
        return secret_hash, None, None
    if method == CLIENT_SECRET_JWT and jwt_secret is not None and secret_hash is not None:
        return secret_hash, jwt_secret, None
    kept = fresh[0] if method == CLIENT_SECRET_JWT else None
    return fresh[1], kept, fresh[0]


def _secret_matches(client: ClientRow, presented: Any) -> bool:
    if not isinstance(presented, str) or client.secret_hash is None:
        return False
    return hmac.compare_digest(hash_secret(presented), client.secret_hash)


def _authorized(conn: Conn, client_id: str, token: str) -> ClientRow:
    """The client whose registration access token ``token`` is; InvalidToken if not."""
    if len(client_id) > MAX_CLIENT_ID or len(token) > MAX_TOKEN:
        raise InvalidToken(_NOT_REGISTERED)
    stored = repo.registration_token_hash(conn, client_id)
    if stored is None or not hmac.compare_digest(hash_secret(token), stored):
        raise InvalidToken(_NOT_REGISTERED)
    client = client_repo.get(conn, client_id)
    if client is None:  # the row holding the hash was just read
        raise InvalidToken(_NOT_REGISTERED)
    return client


# --- transactions (run in the store's thread) -------------------------------------------


@dataclass(frozen=True)
class _NewClient:
    body: Mapping[str, Any]
    client_id: str
    secret: tuple[str, str]
    token_hash: str
    initial_token: str | None
    mode: str
    now: float


def _register_tx(conn: Conn, new: _NewClient) -> tuple[ClientRow, str | None]:
    with write_transaction(conn):
        values = parse_metadata(
            new.body,
            registry=scope_repo.list_all(conn),
            client_id=new.client_id,
            open_registration=new.mode == OPEN,
        )
        secret_hash, jwt_secret, shown = _secrets_for(values.auth_method, None, new.secret)
        row = ClientRow(
            client_id=new.client_id,
            secret_hash=secret_hash,
            jwt_secret=jwt_secret,
            first_party=False,
            created_at=new.now,
            updated_at=new.now,
            **_row_values(values),
        )
        try:
            client_repo.insert(conn, row)
        except ClientExists:
            raise Conflict("A client with this client_id exists; try again.") from None
        repo.set_registration_token_hash(conn, new.client_id, new.token_hash)
        return row, shown


def _read_tx(conn: Conn, client_id: str, token: str) -> ClientRow:
    return _authorized(conn, client_id, token)


def _replace_tx(
    conn: Conn,
    client_id: str,
    token: str,
    body: Mapping[str, Any],
    fresh: tuple[str, str],
    mode: str,
    now: float,
) -> tuple[ClientRow, str | None]:
    with write_transaction(conn):
        current = _authorized(conn, client_id, token)
        if body.get("client_id") != client_id:
            raise InvalidClientMetadata("The body must carry this client's client_id (RFC 7592).")
        if "client_secret" in body and not _secret_matches(current, body["client_secret"]):
            raise InvalidClientMetadata(
                "client_secret must be the client's current secret: a client cannot choose it."
            )
        values = parse_metadata(
            body,
            registry=scope_repo.list_all(conn),
            client_id=client_id,
            open_registration=mode == OPEN,
        )
        if values.confidential != current.is_confidential:
            raise InvalidClientMetadata(
                "token_endpoint_auth_method cannot move between none and the confidential"
                " methods: register a new client instead."
            )
        secret_hash, jwt_secret, shown = _secrets_for(values.auth_method, current, fresh)
        row = current.with_changes(
            secret_hash=secret_hash, jwt_secret=jwt_secret, updated_at=now, **_row_values(values)
        )
        client_repo.update(conn, row)
        return row, shown


def _delete_tx(conn: Conn, client_id: str, token: str) -> None:
    with write_transaction(conn):
        _authorized(conn, client_id, token)
        client_repo.delete(conn, client_id)


# --- the service ------------------------------------------------------------------------


class DynamicRegistration:
    """The registration endpoint and the client configuration endpoint.

    Error handling: NotFound (404) while registration is closed; RateLimitExceeded (429);
    InvalidToken (401) for a missing, unknown, revoked, expired or used-up initial access
    token and for a wrong registration access token; InvalidRedirectURI and
    InvalidClientMetadata (400) for refused metadata.
    """

    def __init__(
        self,
        db: Database,
        limiter: RateLimiter,
        *,
        mode: str,
        limits: TokenLimits,
        management_limits: TokenLimits,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._db = db
        self._limiter = limiter
        self.mode = mode
        self._limits = limits
        self._management_limits = management_limits
        self._now = now

    @property
    def enabled(self) -> bool:
        return self.mode != CLOSED

    async def admit(self, client_ip: str) -> None:
        """Before anything of a registration request is read: NotFound while
        registration is closed, RateLimitExceeded past the per-IP limit (every request
        counts, so bad tokens and bad metadata are limited too)."""
        if not self.enabled:
            raise NotFound("Dynamic client registration is not enabled on this server.")
        limits = self._limits
        decision = await self._limiter.check_rate_limit(
            f"register:ip:{client_ip}", limits.max_requests, limits.window_seconds
        )
        if not decision.allowed:
            seconds = max(1, math.ceil(decision.retry_after))
            raise RateLimitExceeded(
                seconds, f"Too many registrations from your address; retry in {seconds} s."
            )

    async def register(
        self, body: Mapping[str, Any], *, initial_token: str | None, client_ip: str
    ) -> Registered:
        """A new client (after ``admit``); ``initial_token`` is the Bearer token of the
        request, required while the mode is ``token`` and ignored otherwise."""
        if not self.enabled:
            raise NotFound("Dynamic client registration is not enabled on this server.")
        if self.mode == TOKEN and initial_token is None:
            raise InvalidToken(missing=True)
        token = REGISTRATION_TOKEN_PREFIX + secrets.token_urlsafe(32)
        new = _NewClient(
            body=body,
            client_id=new_client_id(),
            secret=new_client_secret(),
            token_hash=hash_secret(token),
            initial_token=initial_token,
            mode=self.mode,
            now=self._now(),
        )
        if self.mode == TOKEN:
            row, shown = await self._register_with(initial_token or "", new)
        else:
            row, shown = await self._db.run(_register_tx, new)
        log.info(
            "client %s registered itself (%s, %s registration, from %s)",
            row.client_id,
            row.auth_method,
            self.mode,
            client_ip,
        )
        return Registered(row, shown, token)

    async def _register_with(self, token: str, new: _NewClient) -> tuple[ClientRow, str | None]:
        """Spend one use of the initial access token, then register; the use is given back
        when the registration fails. The use is spent on its own, by one conditional
        UPDATE outside the registration's transaction: registrations sharing a token wait
        on its row in turn, where inside a SERIALIZABLE transaction (PostgreSQL) they
        conflicted and some ran out of retries (docs/decisions.md). A registration
        cancelled midway keeps its use spent: it may have been committed."""
        await self._db.run(initial_tokens.spend, token, new.now)
        try:
            return await self._db.run(_register_tx, new)
        except Exception:
            await self._db.run(initial_tokens.give_back, token)
            raise

    async def _limit(self, client_ip: str) -> None:
        await limit(self._limiter, self._management_limits, f"token:ip:{client_ip}")

    async def read(self, client_id: str, token: str, *, client_ip: str) -> ClientRow:
        await self._limit(client_ip)
        return await self._db.run(_read_tx, client_id, token)

    async def replace(
        self, client_id: str, token: str, body: Mapping[str, Any], *, client_ip: str
    ) -> Registered:
        await self._limit(client_ip)
        fresh = new_client_secret()
        row, shown = await self._db.run(
            _replace_tx, client_id, token, body, fresh, self.mode, self._now()
        )
        log.info("client %s updated its registration (from %s)", client_id, client_ip)
        return Registered(row, shown, token)

    async def delete(self, client_id: str, token: str, *, client_ip: str) -> None:
        await self._limit(client_ip)
        await self._db.run(_delete_tx, client_id, token)
        log.info("client %s deleted its registration (from %s)", client_id, client_ip)
