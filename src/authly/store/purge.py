"""Deleting rows nothing needs any more, in small batches.

Each call deletes at most ``batch`` rows in one short write transaction, so a purge
never holds the store's write lock for long; callers loop until a call deletes fewer
than ``batch``. Deleting is idempotent, so instances sharing a store may purge at the
same time: each batch is atomic, and a row is deleted once whoever gets to it.

What goes, per kind:

- ``authorization_codes``: expired codes, except a used code whose access token is
  still live (a late replay of it still revokes what it issued);
- ``refresh_tokens``: whole families whose newest token has expired; a rotated or
  revoked token stays while its family lives, so presenting it is still detected as
  reuse (RFC 9700 §4.14.2);
- ``revoked_tokens``: revocation entries of access tokens that have expired anyway;
- ``sessions``: expired store sessions;
- ``instances``: heartbeats of instances gone for a day.
"""

from __future__ import annotations

from authly.store.conn import Conn, write_transaction

KINDS = ("authorization_codes", "refresh_tokens", "revoked_tokens", "sessions", "instances")

_DELETE = {
    "authorization_codes": (
        "DELETE FROM authorization_codes WHERE code_hash IN (SELECT code_hash"
        " FROM authorization_codes"
        " WHERE expires_at < :now AND COALESCE(access_expires_at, 0) < :now LIMIT :batch)"
    ),
    "refresh_tokens": (
        "DELETE FROM refresh_tokens WHERE family_id IN (SELECT family_id FROM refresh_tokens"
        " GROUP BY family_id HAVING MAX(expires_at) < :now LIMIT :batch)"
    ),
    "sessions": (
        "DELETE FROM sessions WHERE id IN (SELECT id FROM sessions"
        " WHERE expires_at < :now LIMIT :batch)"
    ),
    # An instance not seen for a day has stopped (heartbeats come every few seconds).
    "instances": (
        "DELETE FROM instances WHERE id IN (SELECT id FROM instances"
        " WHERE seen_at < :now - 86400 LIMIT :batch)"
    ),
    "revoked_tokens": (
        "DELETE FROM revoked_tokens WHERE jti IN (SELECT jti FROM revoked_tokens"
        " WHERE expires_at < :now LIMIT :batch)"
    ),
}


def purge_batch(conn: Conn, kind: str, now: float, batch: int) -> int:
    """Delete up to ``batch`` expired rows (families, for refresh tokens) of ``kind``;
    return the number of rows deleted."""
    with write_transaction(conn):
        return conn.execute(_DELETE[kind], {"now": now, "batch": batch}).rowcount
