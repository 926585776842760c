"""Sessions in the store ("Database sessions"): every worker and instance sharing the
store sees the same browser, login and admin sessions and pending authorization
requests, with no Redis. Rows expire by wall-clock ``expires_at`` (instances share it),
expired rows read as absent, and the purge task deletes them.

Entries created by anonymous requests live in a named ``pool`` bounded on its own
(``add``): a flood of them evicts the pool's entries closest to expiry, never a session
(pool ``session``). ``take`` is one ``DELETE ... RETURNING``: of concurrent takers of one
entry exactly one gets it. Each write gives the row a new ``version``.
"""

from __future__ import annotations

import json
import secrets

from authly.store.conn import Conn, write_transaction

MAIN_POOL = "session"


def _version() -> str:
    return secrets.token_hex(8)


def get(conn: Conn, session_id: str, now: float) -> dict[str, str] | None:
    row = conn.execute(
        "SELECT data FROM sessions WHERE id = ? AND expires_at > ?", (session_id, now)
    ).fetchone()
    return None if row is None else dict(json.loads(row["data"]))


def put(conn: Conn, session_id: str, data: dict[str, str], expires_at: float) -> None:
    """Write the entry (an existing one keeps its pool)."""
    conn.execute(
        "INSERT INTO sessions (id, pool, data, expires_at, version) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (id) DO UPDATE SET data = excluded.data,"
        " expires_at = excluded.expires_at, version = excluded.version",
        (session_id, MAIN_POOL, json.dumps(data), expires_at, _version()),
    )


def add(
    conn: Conn,
    session_id: str,
    data: dict[str, str],
    expires_at: float,
    pool: str,
    max_entries: int,
    now: float,
) -> int:
    """Write the entry into ``pool``, evicting the pool's entries closest to expiry
    when it is full; return how many were evicted."""
    with write_transaction(conn):
        live = conn.execute(
            "SELECT COUNT(*) FROM sessions WHERE pool = ? AND expires_at > ? AND id <> ?",
            (pool, now, session_id),
        ).fetchone()[0]
        excess = int(live) - max_entries + 1
        evicted = 0
        if excess > 0:
            evicted = conn.execute(
                "DELETE FROM sessions WHERE id IN (SELECT id FROM sessions"
                " WHERE pool = ? AND expires_at > ? AND id <> ?"
                " ORDER BY expires_at, id LIMIT ?)",
                (pool, now, session_id, excess),
            ).rowcount
        conn.execute(
            "INSERT INTO sessions (id, pool, data, expires_at, version) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (id) DO UPDATE SET pool = excluded.pool, data = excluded.data,"
            " expires_at = excluded.expires_at, version = excluded.version",
            (session_id, pool, json.dumps(data), expires_at, _version()),
        )
        return max(evicted, 0)


def delete(conn: Conn, session_id: str) -> None:
    conn.execute("DELETE FROM sessions WHERE id = ?", (session_id,))


def take(conn: Conn, session_id: str, now: float) -> dict[str, str] | None:
    """Delete the entry and return what it held (None if absent or expired)."""
    row = conn.execute(
        "DELETE FROM sessions WHERE id = ? RETURNING data, expires_at", (session_id,)
    ).fetchone()
    if row is None or row["expires_at"] <= now:
        return None
    return dict(json.loads(row["data"]))


def touch(conn: Conn, session_id: str, expires_at: float, now: float) -> bool:
    cursor = conn.execute(
        "UPDATE sessions SET expires_at = ?, version = ? WHERE id = ? AND expires_at > ?",
        (expires_at, _version(), session_id, now),
    )
    return cursor.rowcount == 1


def live(conn: Conn, now: float) -> list[tuple[str, str, dict[str, str], float, str]]:
    """Every live entry as (id, pool, data, expires_at, version)."""
    rows = conn.execute(
        "SELECT id, pool, data, expires_at, version FROM sessions WHERE expires_at > ? ORDER BY id",
        (now,),
    ).fetchall()
    return [
        (r["id"], r["pool"], dict(json.loads(r["data"])), r["expires_at"], r["version"])
        for r in rows
    ]


def forget(conn: Conn, copied: list[tuple[str, str]]) -> int:
    """Delete the entries still at the version that was copied: (id, version) pairs."""
    deleted = 0
    with write_transaction(conn):
        for session_id, version in copied:
            deleted += conn.execute(
                "DELETE FROM sessions WHERE id = ? AND version = ?", (session_id, version)
            ).rowcount
    return deleted


def count(conn: Conn, now: float, pool: str | None = None) -> int:
    if pool is None:
        row = conn.execute("SELECT COUNT(*) FROM sessions WHERE expires_at > ?", (now,))
    else:
        row = conn.execute(
            "SELECT COUNT(*) FROM sessions WHERE pool = ? AND expires_at > ?", (pool, now)
        )
    return int(row.fetchone()[0])


# --- instances sharing the store (memory rate limits divide their budget by them) ------


def heartbeat(conn: Conn, instance_id: str, now: float, alive_for: float) -> int:
    """Record that ``instance_id`` is alive now; return how many instances were seen
    within ``alive_for`` seconds (this one included)."""
    conn.execute(
        "INSERT INTO instances (id, seen_at) VALUES (?, ?)"
        " ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at",
        (instance_id, now),
    )
    row = conn.execute(
        "SELECT COUNT(*) FROM instances WHERE seen_at > ?", (now - alive_for,)
    ).fetchone()
    return max(1, int(row[0]))


def leave(conn: Conn, instance_id: str) -> None:
    conn.execute("DELETE FROM instances WHERE id = ?", (instance_id,))
