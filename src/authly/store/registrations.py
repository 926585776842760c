"""Dynamic client registration in the store (migration 10): the registration access
token of a client that registered itself (RFC 7592; its SHA-256, in
``clients.registration_token_hash``), and the initial access tokens operators hand out
(RFC 7591 §3; table ``initial_access_tokens``, the token as SHA-256 only).

Repository functions only: the rules are in oauth/dynamic_registration.py and
oauth/initial_tokens.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from authly.errors import AuthlyError
from authly.store.conn import Conn, IntegrityError, Row


class InitialTokenExists(AuthlyError):
    """Raised when an initial access token's id or hash is already stored."""


# --- registration access tokens ---------------------------------------------------------


def registration_token_hash(conn: Conn, client_id: str) -> str | None:
    """The stored hash of the client's registration access token; None for an unknown
    client and for one an operator created (it has none)."""
    row = conn.execute(
        "SELECT registration_token_hash FROM clients WHERE client_id = ?", (client_id,)
    ).fetchone()
    return None if row is None else row["registration_token_hash"]


def set_registration_token_hash(conn: Conn, client_id: str, token_hash: str | None) -> bool:
    cur = conn.execute(
        "UPDATE clients SET registration_token_hash = ? WHERE client_id = ?",
        (token_hash, client_id),
    )
    return cur.rowcount == 1


# --- initial access tokens --------------------------------------------------------------


@dataclass(frozen=True)
class InitialTokenRow:
    id: str
    token_hash: str
    description: str
    created_at: float
    expires_at: float | None
    max_uses: int | None
    uses: int
    created_by: str | None


def _row(row: Row) -> InitialTokenRow:
    return InitialTokenRow(
        id=row["id"],
        token_hash=row["token_hash"],
        description=row["description"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        max_uses=row["max_uses"],
        uses=row["uses"],
        created_by=row["created_by"],
    )


def insert_initial_token(conn: Conn, token: InitialTokenRow) -> InitialTokenRow:
    try:
        conn.execute(
            "INSERT INTO initial_access_tokens (id, token_hash, description, created_at,"
            " expires_at, max_uses, uses, created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                token.id,
                token.token_hash,
                token.description,
                token.created_at,
                token.expires_at,
                token.max_uses,
                token.uses,
                token.created_by,
            ),
        )
    except IntegrityError:
        raise InitialTokenExists(token.id) from None
    return token


def list_initial_tokens(conn: Conn) -> list[InitialTokenRow]:
    rows = conn.execute("SELECT * FROM initial_access_tokens ORDER BY created_at, id").fetchall()
    return [_row(r) for r in rows]


def find_initial_token(conn: Conn, token_hash: str) -> InitialTokenRow | None:
    row = conn.execute(
        "SELECT * FROM initial_access_tokens WHERE token_hash = ?", (token_hash,)
    ).fetchone()
    return None if row is None else _row(row)


def spend_initial_token(conn: Conn, token_hash: str, now: float) -> bool:
    """Count one use of the token if it is still usable (not expired, uses left): one
    conditional UPDATE, so two registrations cannot both take a single-use token's last
    use on either engine."""
    cur = conn.execute(
        "UPDATE initial_access_tokens SET uses = uses + 1 WHERE token_hash = ?"
        " AND (expires_at IS NULL OR expires_at > ?)"
        " AND (max_uses IS NULL OR uses < max_uses)",
        (token_hash, now),
    )
    return cur.rowcount == 1


def give_back_initial_token(conn: Conn, token_hash: str) -> None:
    """Uncount one use (a registration that failed after spending it)."""
    conn.execute(
        "UPDATE initial_access_tokens SET uses = uses - 1 WHERE token_hash = ? AND uses > 0",
        (token_hash,),
    )


def delete_initial_token(conn: Conn, token_id: str) -> bool:
    cur = conn.execute("DELETE FROM initial_access_tokens WHERE id = ?", (token_id,))
    return cur.rowcount == 1
