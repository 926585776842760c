"""Authorization codes: stored as hashes, single use, short-lived.

Redeeming is one transaction: a code seen a second time is a replay, and the caller
revokes everything issued from its first redemption (RFC 6749 §4.1.2, RFC 9700 §4.5).
A replay can arrive while the first redemption is still issuing its tokens, before
they are recorded: the replay then marks the code (``replayed_at``), and recording the
issue reports the mark, so the first redemption revokes what it issued itself. Both
steps are write transactions, so one of the two always sees the other.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass

from authly.store.conn import Conn, write_transaction


@dataclass(frozen=True)
class LoginEvent:
    """When and in which browser session the user signed in (for ID tokens)."""

    auth_time: float
    sid: str


@dataclass(frozen=True)
class CodeGrant:
    client_id: str
    user_id: str
    redirect_uri: str
    scope: str
    code_challenge: str
    # OpenID Connect: the request's nonce, and the sign-in it came from.
    nonce: str | None = None
    auth_time: float | None = None
    session_sid: str | None = None
    # Standard claims the claims parameter asked for by name (space-separated).
    claims_userinfo: str = ""
    claims_id_token: str = ""
    # The resources (RFC 8707) the code was granted for; () = none named.
    resources: tuple[str, ...] = ()
    # DPoP (RFC 9449 §10): the key the request named (dpop_jkt); None = any or none.
    dpop_jkt: str | None = None


class RedeemStatus(enum.Enum):
    OK = "ok"
    UNKNOWN = "unknown"
    EXPIRED = "expired"
    REPLAYED = "replayed"


@dataclass(frozen=True)
class Redeemed:
    status: RedeemStatus
    grant: CodeGrant | None = None
    # On replay: what the first redemption issued, to be revoked.
    family_id: str | None = None
    access_jti: str | None = None
    access_expires_at: float | None = None


def insert(conn: Conn, code_hash: str, grant: CodeGrant, now: float, expires_at: float) -> None:
    conn.execute(
        "INSERT INTO authorization_codes (code_hash, client_id, user_id, redirect_uri, scope,"
        " code_challenge, nonce, auth_time, session_sid, claims, created_at, expires_at,"
        " resources, dpop_jkt) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            code_hash,
            grant.client_id,
            grant.user_id,
            grant.redirect_uri,
            grant.scope,
            grant.code_challenge,
            grant.nonce,
            grant.auth_time,
            grant.session_sid,
            json.dumps([grant.claims_userinfo, grant.claims_id_token]),
            now,
            expires_at,
            " ".join(grant.resources),
            grant.dpop_jkt,
        ),
    )


def redeem(conn: Conn, code_hash: str, now: float) -> Redeemed:
    """Mark the code used; report a replay with what its first use issued."""
    with write_transaction(conn):
        row = conn.execute(
            "SELECT * FROM authorization_codes WHERE code_hash = ?", (code_hash,)
        ).fetchone()
        if row is None:
            return Redeemed(RedeemStatus.UNKNOWN)
        if row["used_at"] is not None:
            if row["replayed_at"] is None:
                conn.execute(
                    "UPDATE authorization_codes SET replayed_at = ? WHERE code_hash = ?",
                    (now, code_hash),
                )
            return Redeemed(
                RedeemStatus.REPLAYED,
                None,
                row["family_id"],
                row["access_jti"],
                row["access_expires_at"],
            )
        conn.execute(
            "UPDATE authorization_codes SET used_at = ? WHERE code_hash = ?", (now, code_hash)
        )
        if row["expires_at"] <= now:
            return Redeemed(RedeemStatus.EXPIRED)
        userinfo, id_token = json.loads(row["claims"] or '["", ""]')
        grant = CodeGrant(
            row["client_id"],
            row["user_id"],
            row["redirect_uri"],
            row["scope"],
            row["code_challenge"],
            row["nonce"],
            row["auth_time"],
            row["session_sid"],
            userinfo,
            id_token,
            tuple((row["resources"] or "").split()),
            row["dpop_jkt"],
        )
        return Redeemed(RedeemStatus.OK, grant)


def record_issue(
    conn: Conn,
    code_hash: str,
    family_id: str | None,
    access_jti: str,
    access_expires_at: float,
) -> bool:
    """Remember what the code's redemption issued (for replay revocation); True if a
    replay came first, in which case the caller must revoke what it issued."""
    with write_transaction(conn):
        conn.execute(
            "UPDATE authorization_codes SET family_id = ?, access_jti = ?, access_expires_at = ?"
            " WHERE code_hash = ?",
            (family_id, access_jti, access_expires_at, code_hash),
        )
        row = conn.execute(
            "SELECT replayed_at FROM authorization_codes WHERE code_hash = ?", (code_hash,)
        ).fetchone()
    return row is not None and row["replayed_at"] is not None
