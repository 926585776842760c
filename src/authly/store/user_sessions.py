"""A user's login sessions as the store sees them: their live refresh-token families."""

from __future__ import annotations

from dataclasses import dataclass

from authly.store.conn import Conn


@dataclass(frozen=True)
class Family:
    """One refresh-token family (= login session, the ``sid`` of its access tokens)."""

    family_id: str
    client_id: str
    scope: str
    created_at: float
    last_rotated_at: float | None
    expires_at: float
    # The browser session it was signed in through (OpenID Connect sid); None if none.
    session_sid: str | None = None


def live_families(conn: Conn, user_id: str, now: float) -> list[Family]:
    """The user's families that still hold a usable token, oldest first."""
    rows = conn.execute(
        "SELECT family_id, MIN(client_id) AS client_id, MIN(scope) AS scope,"
        " MIN(created_at) AS created_at, MAX(rotated_at) AS last_rotated_at,"
        " MAX(expires_at) AS expires_at, MIN(session_sid) AS session_sid"
        " FROM refresh_tokens WHERE user_id = ?"
        " GROUP BY family_id HAVING SUM(CASE WHEN revoked_at IS NULL AND rotated_at IS NULL"
        " AND expires_at > ? THEN 1 ELSE 0 END) > 0 ORDER BY MIN(created_at), family_id",
        (user_id, now),
    ).fetchall()
    return [
        Family(
            family_id=row["family_id"],
            client_id=row["client_id"],
            scope=row["scope"],
            created_at=row["created_at"],
            last_rotated_at=row["last_rotated_at"],
            expires_at=row["expires_at"],
            session_sid=row["session_sid"],
        )
        for row in rows
    ]
