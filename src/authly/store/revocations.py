"""Revoked JWT access tokens by ``jti``, kept until the token would have expired anyway."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable


def add(conn: sqlite3.Connection, entries: Iterable[tuple[str, float]]) -> None:
    conn.executemany(
        "INSERT OR IGNORE INTO revoked_tokens (jti, expires_at) VALUES (?, ?)", list(entries)
    )


def is_revoked(conn: sqlite3.Connection, jti: str) -> bool:
    return conn.execute("SELECT 1 FROM revoked_tokens WHERE jti = ?", (jti,)).fetchone() is not None
