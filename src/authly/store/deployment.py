"""Facts every instance sharing the store agrees on, first writer wins."""

from __future__ import annotations

from authly.store.conn import Conn

ISSUER = "issuer"


def claim(conn: Conn, name: str, value: str, now: float) -> str:
    """Record ``value`` under ``name`` unless a value is already there; return the value
    the store holds (``value`` for the first caller, the earlier one for the others)."""
    conn.execute(
        "INSERT INTO deployment (name, value, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
        (name, value, now),
    )
    row = conn.execute("SELECT value FROM deployment WHERE name = ?", (name,)).fetchone()
    return str(row["value"])


def get(conn: Conn, name: str) -> str | None:
    row = conn.execute("SELECT value FROM deployment WHERE name = ?", (name,)).fetchone()
    return None if row is None else str(row["value"])
