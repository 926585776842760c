"""Registered OAuth clients. Secrets are stored as SHA-256 of 256 random bits; a
``client_secret_jwt`` client's secret is also kept as is (``jwt_secret``), because the
server must compute the HMAC its assertions are signed with (docs/decisions.md)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

from authly.errors import AuthlyError
from authly.store.conn import Conn, IntegrityError, Row


class ClientExists(AuthlyError):
    """Raised when a client id is already registered."""


@dataclass(frozen=True)
class ClientRow:
    client_id: str
    name: str
    secret_hash: str | None = field(repr=False)
    # client_secret_basic | client_secret_post | client_secret_jwt | private_key_jwt | none
    auth_method: str
    redirect_uris: tuple[str, ...]
    grant_types: tuple[str, ...]
    scopes: tuple[str, ...]
    first_party: bool
    created_at: float
    updated_at: float
    id_token_signed_response_alg: str = "RS256"  # noqa: S105 (OIDC Registration §2)
    # OpenID Connect logout (RP-Initiated Logout §3.1, Back-Channel Logout §2.2).
    post_logout_redirect_uris: tuple[str, ...] = ()
    backchannel_logout_uri: str | None = None
    backchannel_logout_session_required: bool = False
    # private_key_jwt (RFC 7523 §2.2): an inline JWK Set (JSON text) or where to fetch one.
    jwks: str | None = None
    jwks_uri: str | None = None
    # client_secret_jwt: the secret itself, the HMAC key of its assertions.
    jwt_secret: str | None = field(default=None, repr=False)
    # RFC 9126 §6: the authorization endpoint accepts only pushed requests (request_uri).
    require_pushed_authorization_requests: bool = False
    # RFC 9449 §5.2: every token request of this client must carry a DPoP proof.
    dpop_bound_access_tokens: bool = False

    @property
    def is_confidential(self) -> bool:
        return self.auth_method != "none"

    def public(self) -> dict[str, Any]:
        """The admin view: everything but the secret (its hash, or the kept secret)."""
        return {
            "client_id": self.client_id,
            "name": self.name,
            "client_type": "confidential" if self.is_confidential else "public",
            "token_endpoint_auth_method": self.auth_method,
            "redirect_uris": list(self.redirect_uris),
            "grant_types": list(self.grant_types),
            "scopes": list(self.scopes),
            "first_party": self.first_party,
            "require_pushed_authorization_requests": self.require_pushed_authorization_requests,
            "dpop_bound_access_tokens": self.dpop_bound_access_tokens,
            "id_token_signed_response_alg": self.id_token_signed_response_alg,
            "post_logout_redirect_uris": list(self.post_logout_redirect_uris),
            "backchannel_logout_uri": self.backchannel_logout_uri,
            "backchannel_logout_session_required": self.backchannel_logout_session_required,
            "jwks": None if self.jwks is None else json.loads(self.jwks),
            "jwks_uri": self.jwks_uri,
            "created_at": int(self.created_at),
            "updated_at": int(self.updated_at),
        }

    def with_changes(self, **changes: Any) -> ClientRow:
        return replace(self, **changes)


def _row(row: Row | None) -> ClientRow | None:
    if row is None:
        return None
    return ClientRow(
        client_id=row["client_id"],
        name=row["name"],
        secret_hash=row["secret_hash"],
        auth_method=row["auth_method"],
        redirect_uris=tuple(json.loads(row["redirect_uris"])),
        grant_types=tuple(json.loads(row["grant_types"])),
        scopes=tuple(json.loads(row["scopes"])),
        first_party=bool(row["first_party"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        id_token_signed_response_alg=row["id_token_signed_response_alg"],
        post_logout_redirect_uris=tuple(json.loads(row["post_logout_redirect_uris"])),
        backchannel_logout_uri=row["backchannel_logout_uri"],
        backchannel_logout_session_required=bool(row["backchannel_logout_session_required"]),
        jwks=row["jwks"],
        jwks_uri=row["jwks_uri"],
        jwt_secret=row["jwt_secret"],
        require_pushed_authorization_requests=bool(row["require_pushed_authorization_requests"]),
        dpop_bound_access_tokens=bool(row["dpop_bound_access_tokens"]),
    )


def get(conn: Conn, client_id: str) -> ClientRow | None:
    return _row(conn.execute("SELECT * FROM clients WHERE client_id = ?", (client_id,)).fetchone())


def list_all(conn: Conn) -> list[ClientRow]:
    rows = conn.execute("SELECT * FROM clients ORDER BY created_at, client_id").fetchall()
    return [c for c in (_row(r) for r in rows) if c is not None]


def _values(c: ClientRow) -> tuple[Any, ...]:
    return (
        c.name,
        c.secret_hash,
        c.auth_method,
        json.dumps(list(c.redirect_uris)),
        json.dumps(list(c.grant_types)),
        json.dumps(list(c.scopes)),
        int(c.first_party),
        c.id_token_signed_response_alg,
        json.dumps(list(c.post_logout_redirect_uris)),
        c.backchannel_logout_uri,
        int(c.backchannel_logout_session_required),
        c.jwks,
        c.jwks_uri,
        c.jwt_secret,
        int(c.require_pushed_authorization_requests),
        int(c.dpop_bound_access_tokens),
        c.updated_at,
    )


def insert(conn: Conn, client: ClientRow) -> ClientRow:
    try:
        conn.execute(
            "INSERT INTO clients (name, secret_hash, auth_method, redirect_uris, grant_types,"
            " scopes, first_party, id_token_signed_response_alg, post_logout_redirect_uris,"
            " backchannel_logout_uri, backchannel_logout_session_required, jwks, jwks_uri,"
            " jwt_secret, require_pushed_authorization_requests, dpop_bound_access_tokens,"
            " updated_at, client_id, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (*_values(client), client.client_id, client.created_at),
        )
    except IntegrityError:
        raise ClientExists(client.client_id) from None
    return client


def update(conn: Conn, client: ClientRow) -> ClientRow | None:
    cur = conn.execute(
        "UPDATE clients SET name = ?, secret_hash = ?, auth_method = ?, redirect_uris = ?,"
        " grant_types = ?, scopes = ?, first_party = ?, id_token_signed_response_alg = ?,"
        " post_logout_redirect_uris = ?, backchannel_logout_uri = ?,"
        " backchannel_logout_session_required = ?, jwks = ?, jwks_uri = ?, jwt_secret = ?,"
        " require_pushed_authorization_requests = ?, dpop_bound_access_tokens = ?,"
        " updated_at = ? WHERE client_id = ?",
        (*_values(client), client.client_id),
    )
    return client if cur.rowcount == 1 else None


def delete(conn: Conn, client_id: str) -> bool:
    return conn.execute("DELETE FROM clients WHERE client_id = ?", (client_id,)).rowcount == 1
