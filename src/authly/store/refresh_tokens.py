"""Refresh token rows: only SHA-256 hashes are stored; rotation is one transaction.

A family is every token descended from one login (or one authorization code). Presenting
a token that was already rotated is reuse (RFC 9700 §4.14.2): the whole family is
revoked, and so are the access tokens issued with it (their ``jti`` go on the
revocation list until they would have expired anyway).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace

from authly.store.conn import Conn, Row, write_transaction


class RotateStatus(enum.Enum):
    OK = "ok"
    UNKNOWN = "unknown"
    EXPIRED = "expired"
    REVOKED = "revoked"
    REUSED = "reused"
    WRONG_CLIENT = "wrong_client"
    SCOPE_EXCEEDED = "scope_exceeded"
    USER_INACTIVE = "user_inactive"
    DPOP_KEY_MISMATCH = "dpop_key_mismatch"  # bound family, no proof or another key


@dataclass(frozen=True)
class Grant:
    """What a refresh token stands for."""

    user_id: str
    client_id: str
    scope: str
    family_id: str
    # The sign-in behind the family (OpenID Connect: auth_time and sid of ID tokens).
    auth_time: float | None = None
    session_sid: str | None = None
    # The resources (RFC 8707) the family was granted for; () = none named.
    resources: tuple[str, ...] = ()
    # DPoP (RFC 9449 §5): the key a public client's family is bound to; None = unbound.
    dpop_jkt: str | None = None


@dataclass(frozen=True)
class AccessRef:
    """The access token issued alongside a refresh token."""

    jti: str
    expires_at: float


@dataclass(frozen=True)
class RotateResult:
    status: RotateStatus
    grant: Grant | None = None
    revoked: tuple[AccessRef, ...] = ()


@dataclass(frozen=True)
class RefreshInfo:
    """What introspection and revocation need to know about a refresh token."""

    grant: Grant
    expires_at: float
    active: bool


def insert(
    conn: Conn,
    token_hash: str,
    grant: Grant,
    now: float,
    expires_at: float,
    access: AccessRef | None = None,
) -> None:
    conn.execute(
        "INSERT INTO refresh_tokens (token_hash, family_id, user_id, client_id, scope,"
        " created_at, expires_at, access_jti, access_expires_at, auth_time, session_sid,"
        " resources, dpop_jkt) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            token_hash,
            grant.family_id,
            grant.user_id,
            grant.client_id,
            grant.scope,
            now,
            expires_at,
            access.jti if access else None,
            access.expires_at if access else None,
            grant.auth_time,
            grant.session_sid,
            " ".join(grant.resources),
            grant.dpop_jkt,
        ),
    )


def revoke_family(conn: Conn, family_id: str, now: float) -> list[AccessRef]:
    """Revoke every refresh token of the family and the access tokens issued with them;
    return those access tokens (still unexpired) so caches can be told."""
    rows = conn.execute(
        "SELECT access_jti, access_expires_at FROM refresh_tokens"
        " WHERE family_id = ? AND access_jti IS NOT NULL AND access_expires_at > ?",
        (family_id, now),
    ).fetchall()
    refs = [AccessRef(r["access_jti"], r["access_expires_at"]) for r in rows]
    conn.executemany(
        "INSERT INTO revoked_tokens (jti, expires_at) VALUES (?, ?) ON CONFLICT DO NOTHING",
        [(r.jti, r.expires_at) for r in refs],
    )
    conn.execute(
        "UPDATE refresh_tokens SET revoked_at = ? WHERE family_id = ? AND revoked_at IS NULL",
        (now, family_id),
    )
    return refs


def _grant(row: Row) -> Grant:
    return Grant(
        row["user_id"],
        row["client_id"],
        row["scope"],
        row["family_id"],
        row["auth_time"],
        row["session_sid"],
        tuple((row["resources"] or "").split()),
        row["dpop_jkt"],
    )


def lookup(conn: Conn, token_hash: str, now: float) -> RefreshInfo | None:
    row = conn.execute(
        "SELECT * FROM refresh_tokens WHERE token_hash = ?", (token_hash,)
    ).fetchone()
    if row is None:
        return None
    grant = _grant(row)
    active = row["revoked_at"] is None and row["rotated_at"] is None and row["expires_at"] > now
    return RefreshInfo(grant, row["expires_at"], active)


def rotate(
    conn: Conn,
    old_hash: str,
    new_hash: str,
    client_id: str | None,
    scope: frozenset[str] | None,
    now: float,
    ttl: float,
    access: AccessRef | None = None,
    dpop_jkt: str | None = None,
) -> RotateResult:
    """Swap the token ``old_hash`` for ``new_hash`` atomically.

    ``scope`` (if given) must be a subset of the original grant's scope (RFC 6749 §6);
    ``client_id`` (if given) must match the client the token was issued to; a family
    bound to a DPoP key needs ``dpop_jkt`` (the request's proof key) to be that key,
    checked before reuse so that a token taken without its key can do nothing at all.
    """
    with write_transaction(conn):
        row = conn.execute(
            "SELECT t.*, u.is_active FROM refresh_tokens t JOIN users u ON u.id = t.user_id"
            " WHERE t.token_hash = ?",
            (old_hash,),
        ).fetchone()
        if row is None:
            return RotateResult(RotateStatus.UNKNOWN)
        if row["revoked_at"] is not None:
            return RotateResult(RotateStatus.REVOKED)
        if client_id is not None and client_id != row["client_id"]:
            return RotateResult(RotateStatus.WRONG_CLIENT)
        if row["dpop_jkt"] is not None and row["dpop_jkt"] != dpop_jkt:
            return RotateResult(RotateStatus.DPOP_KEY_MISMATCH)
        if row["rotated_at"] is not None:
            revoked = revoke_family(conn, row["family_id"], now)
            return RotateResult(RotateStatus.REUSED, None, tuple(revoked))
        if row["expires_at"] <= now:
            return RotateResult(RotateStatus.EXPIRED)
        if not row["is_active"]:
            return RotateResult(RotateStatus.USER_INACTIVE)
        granted = frozenset(row["scope"].split())
        if scope is not None and not scope <= granted:
            return RotateResult(RotateStatus.SCOPE_EXCEEDED)
        new_scope = " ".join(sorted(scope if scope is not None else granted))
        conn.execute(
            "UPDATE refresh_tokens SET rotated_at = ? WHERE token_hash = ?", (now, old_hash)
        )
        # The new token keeps the family's original scope ceiling: narrowing a
        # refresh narrows the access token, not what later refreshes may ask for.
        grant = _grant(row)
        insert(conn, new_hash, grant, now, now + ttl, access)
        return RotateResult(
            RotateStatus.OK,
            replace(grant, scope=new_scope),
        )


def revoke_family_of(
    conn: Conn, token_hash: str, now: float, client_id: str | None = None
) -> tuple[str, list[AccessRef]] | None:
    """Revoke the family of the given token; None if the token is unknown (or, with
    ``client_id``, belongs to another client: RFC 7009 §2.1)."""
    with write_transaction(conn):
        row = conn.execute(
            "SELECT family_id, client_id FROM refresh_tokens WHERE token_hash = ?",
            (token_hash,),
        ).fetchone()
        if row is None or (client_id is not None and row["client_id"] != client_id):
            return None
        return str(row["family_id"]), revoke_family(conn, row["family_id"], now)


def revoke_family_tx(conn: Conn, family_id: str, now: float) -> list[AccessRef]:
    with write_transaction(conn):
        return revoke_family(conn, family_id, now)


@dataclass(frozen=True)
class SessionFamily:
    """A refresh-token family started from a browser session (OpenID Connect ``sid``)."""

    family_id: str
    client_id: str
    user_id: str


def revoke_session(
    conn: Conn, session_sid: str, now: float
) -> tuple[list[SessionFamily], list[AccessRef]]:
    """Revoke every live family whose sign-in was the browser session ``session_sid``
    (and their access tokens), in one transaction; return those families and refs."""
    with write_transaction(conn):
        rows = conn.execute(
            "SELECT DISTINCT family_id, client_id, user_id FROM refresh_tokens"
            " WHERE session_sid = ? AND revoked_at IS NULL",
            (session_sid,),
        ).fetchall()
        families = [SessionFamily(r["family_id"], r["client_id"], r["user_id"]) for r in rows]
        refs: list[AccessRef] = []
        for family in families:
            refs.extend(revoke_family(conn, family.family_id, now))
        return families, refs
