"""User rows. Usernames are unique case-insensitively (NFKC + casefold key).

Besides the account (username, password hash, admin flag, active flag) a row holds the
OpenID Connect profile (OIDC Core §5.1): ``attributes`` carries the fields that are set,
already typed (booleans, the address as an object); unset fields are absent from it.
"""

from __future__ import annotations

import json
import unicodedata
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from authly.errors import AuthlyError
from authly.store.conn import Conn, IntegrityError, Row, write_transaction


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
    attributes: Mapping[str, Any] = field(default_factory=dict)
    sessions_valid_after: float | None = None

    def profile(self) -> dict[str, object]:
        """The public view of the user: never the hash."""
        return {
            "id": self.id,
            "username": self.username,
            "email": self.email,
            "is_admin": self.is_admin,
            "created_at": int(self.created_at),
        }


# OIDC Core §5.1 fields stored in their own columns (``email`` is the account's).
TEXT_ATTRIBUTES = (
    "name",
    "given_name",
    "family_name",
    "middle_name",
    "nickname",
    "preferred_username",
    "profile",
    "picture",
    "website",
    "gender",
    "birthdate",
    "zoneinfo",
    "locale",
    "phone_number",
)
BOOLEAN_ATTRIBUTES = ("email_verified", "phone_number_verified")
# Every column update_attributes may write; the SQL is built from these names only.
ATTRIBUTE_COLUMNS = frozenset((*TEXT_ATTRIBUTES, *BOOLEAN_ATTRIBUTES, "address", "email"))


def username_key(username: str) -> str:
    return unicodedata.normalize("NFKC", username).casefold()


def _attributes(row: Row) -> dict[str, Any]:
    found: dict[str, Any] = {}
    if row["email"] is not None:
        found["email"] = row["email"]
    for name in TEXT_ATTRIBUTES:
        if row[name] is not None:
            found[name] = row[name]
    for name in BOOLEAN_ATTRIBUTES:
        found[name] = bool(row[name])
    if row["address"] is not None:
        found["address"] = json.loads(row["address"])
    return found


def _row(row: Row | None) -> User | None:
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
        attributes=_attributes(row),
        sessions_valid_after=row["sessions_valid_after"],
    )


def get_by_username(conn: Conn, username: str) -> User | None:
    cur = conn.execute("SELECT * FROM users WHERE username_key = ?", (username_key(username),))
    return _row(cur.fetchone())


def get_by_id(conn: Conn, user_id: str) -> User | None:
    return _row(conn.execute("SELECT * FROM users WHERE id = ?", (user_id,)).fetchone())


def count(conn: Conn) -> int:
    return int(conn.execute("SELECT COUNT(*) FROM users").fetchone()[0])


def create(
    conn: Conn,
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
    except IntegrityError:
        raise UsernameTaken(username) from None
    user = get_by_id(conn, user_id)
    assert user is not None
    return user


def create_if_none(conn: Conn, username: str, password_hash: str, now: float) -> User | None:
    """Bootstrap: create an admin only if the table is empty (atomic across processes)."""
    with write_transaction(conn):
        if count(conn) > 0:
            return None
        return create(conn, username, password_hash, None, True, now)


def update_password_hash(conn: Conn, user_id: str, password_hash: str, now: float) -> None:
    conn.execute(
        "UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?",
        (password_hash, now, user_id),
    )


def update_attributes(
    conn: Conn, user_id: str, changes: Mapping[str, Any], now: float
) -> User | None:
    """Set profile columns (names from ATTRIBUTE_COLUMNS; None clears one); the user
    afterwards, or None if there is no such user."""
    unknown = set(changes) - ATTRIBUTE_COLUMNS
    if unknown:
        raise ValueError(f"not profile columns: {sorted(unknown)}")
    values: list[Any] = []
    for name, value in changes.items():
        if name == "address" and value is not None:
            value = json.dumps(value, ensure_ascii=False, sort_keys=True)
        elif name in BOOLEAN_ATTRIBUTES:
            value = int(bool(value))
        values.append(value)
    assignments = "".join(f"{name} = ?, " for name in changes)
    conn.execute(
        f"UPDATE users SET {assignments}updated_at = ? WHERE id = ?",  # noqa: S608
        (*values, now, user_id),
    )
    return get_by_id(conn, user_id)


def set_active(conn: Conn, user_id: str, active: bool, now: float) -> User | None:
    conn.execute(
        "UPDATE users SET is_active = ?, updated_at = ? WHERE id = ?",
        (int(active), now, user_id),
    )
    return get_by_id(conn, user_id)


def void_sessions(conn: Conn, user_id: str, now: float) -> None:
    """Browser and admin sessions of the user started before ``now`` stop working."""
    conn.execute("UPDATE users SET sessions_valid_after = ? WHERE id = ?", (now, user_id))


def delete(conn: Conn, user_id: str) -> bool:
    """Remove the user; refresh tokens, codes and consents go with it (ON DELETE CASCADE)."""
    return conn.execute("DELETE FROM users WHERE id = ?", (user_id,)).rowcount > 0


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search(conn: Conn, text: str | None, limit: int, offset: int) -> tuple[list[User], int]:
    """One page of users (oldest first) whose username, email or name contains ``text``
    (case-insensitively for ASCII), and how many match in all."""
    where = ""
    params: tuple[str, ...] = ()
    if text:
        pattern = _like(text.lower())
        where = (
            " WHERE LOWER(username) LIKE ? ESCAPE '\\' OR LOWER(email) LIKE ? ESCAPE '\\'"
            " OR LOWER(name) LIKE ? ESCAPE '\\'"
        )
        params = (pattern, pattern, pattern)
    total = int(conn.execute(f"SELECT COUNT(*) FROM users{where}", params).fetchone()[0])  # noqa: S608
    rows = conn.execute(
        f"SELECT * FROM users{where} ORDER BY created_at, id LIMIT ? OFFSET ?",  # noqa: S608
        (*params, limit, offset),
    ).fetchall()
    return [user for user in map(_row, rows) if user is not None], total
