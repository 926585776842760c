"""Facts every instance sharing the store agrees on, first writer wins."""

from __future__ import annotations

from authly.store.conn import Conn

ISSUER = "issuer"
# The features an operator pinned to their fallback (JSON list; PUT /api/v1/admin/backends).
PINNED_BACKENDS = "pinned_backends"


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


def put(conn: Conn, name: str, value: str, now: float) -> None:
    """Record ``value`` under ``name``, replacing what was there."""
    conn.execute(
        "INSERT INTO deployment (name, value, created_at) VALUES (?, ?, ?)"
        " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        (name, value, now),
    )
