"""Revoked JWT access tokens by ``jti``, kept until the token would have expired anyway."""

from __future__ import annotations

from collections.abc import Iterable

from authly.store.conn import Conn


def add(conn: Conn, entries: Iterable[tuple[str, float]]) -> None:
    conn.executemany(
        "INSERT INTO revoked_tokens (jti, expires_at) VALUES (?, ?) ON CONFLICT DO NOTHING",
        list(entries),
    )


def is_revoked(conn: Conn, jti: str) -> bool:
    return conn.execute("SELECT 1 FROM revoked_tokens WHERE jti = ?", (jti,)).fetchone() is not None
