"""User rows. Usernames are unique case-insensitively (NFKC + casefold key)."""

from __future__ import annotations

import sqlite3
import unicodedata
import uuid
from dataclasses import dataclass

from authly.errors import AuthlyError
from authly.store.db import write_transaction


class UsernameTaken(AuthlyError):
    """Raised when a user with the same (case-insensitive) username exists."""


@dataclass(frozen=True)
class User:
    id: str
    username: str
    email: str | None
    password_hash: str
    is_admin: bool
    is_active: bool
    created_at: float
    updated_at: float

    def profile(self) -> dict[str, object]:
        """The public view of the user: never the hash."""
        return {
            "id": self.id,
            "username": self.username,
            "email": self.email,
            "is_admin": self.is_admin,
            "created_at": int(self.created_at),
        }


def username_key(username: str) -> str:
    return unicodedata.normalize("NFKC", username).casefold()


def _row(row: sqlite3.Row | None) -> User | None:
    if row is None:
        return None
    return User(
        id=row["id"],
        username=row["username"],
        email=row["email"],
        password_hash=row["password_hash"],
        is_admin=bool(row["is_admin"]),
        is_active=bool(row["is_active"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def get_by_username(conn: sqlite3.Connection, username: str) -> User | None:
    cur = conn.execute("SELECT * FROM users WHERE username_key = ?", (username_key(username),))
    return _row(cur.fetchone())


def get_by_id(conn: sqlite3.Connection, user_id: str) -> User | None:
    return _row(conn.execute("SELECT * FROM users WHERE id = ?", (user_id,)).fetchone())


def count(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT COUNT(*) FROM users").fetchone()[0])


def create(
    conn: sqlite3.Connection,
    username: str,
    password_hash: str,
    email: str | None,
    is_admin: bool,
    now: float,
) -> User:
    """Insert a user; raise UsernameTaken if the name is in use."""
    user_id = str(uuid.uuid4())
    try:
        conn.execute(
            "INSERT INTO users (id, username, username_key, email, password_hash, is_admin,"
            " is_active, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?)",
            (
                user_id,
                username,
                username_key(username),
                email,
                password_hash,
                int(is_admin),
                now,
                now,
            ),
        )
    except sqlite3.IntegrityError:
        raise UsernameTaken(username) from None
    user = get_by_id(conn, user_id)
    assert user is not None
    return user


def create_if_none(
    conn: sqlite3.Connection, username: str, password_hash: str, now: float
) -> User | None:
    """Bootstrap: create an admin only if the table is empty (atomic across processes)."""
    with write_transaction(conn):
        if count(conn) > 0:
            return None
        return create(conn, username, password_hash, None, True, now)


def update_password_hash(
    conn: sqlite3.Connection, user_id: str, password_hash: str, now: float
) -> None:
    conn.execute(
        "UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?",
        (password_hash, now, user_id),
    )
