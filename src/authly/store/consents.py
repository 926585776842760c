"""Remembered consents: one row per user, client and (sorted) scope set."""

from __future__ import annotations

from authly.store.conn import Conn


def has(conn: Conn, user_id: str, client_id: str, scope: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM consents WHERE user_id = ? AND client_id = ? AND scope = ?",
        (user_id, client_id, scope),
    ).fetchone()
    return row is not None


def remember(conn: Conn, user_id: str, client_id: str, scope: str, now: float) -> None:
    conn.execute(
        "INSERT INTO consents (user_id, client_id, scope, created_at)"
        " VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
        (user_id, client_id, scope, now),
    )
