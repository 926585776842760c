"""Signing key rows: the private key PEM per kid; generated once, shared by processes."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field

from authly.store.db import write_transaction


@dataclass(frozen=True)
class SigningKeyRow:
    kid: str
    alg: str
    private_pem: str = field(repr=False)
    created_at: float


def list_active(conn: sqlite3.Connection) -> list[SigningKeyRow]:
    """Non-retired keys, newest first."""
    rows = conn.execute(
        "SELECT kid, alg, private_pem, created_at FROM signing_keys"
        " WHERE retired_at IS NULL ORDER BY created_at DESC"
    ).fetchall()
    return [SigningKeyRow(r["kid"], r["alg"], r["private_pem"], r["created_at"]) for r in rows]


def ensure_one(
    conn: sqlite3.Connection, generate: Callable[[], tuple[str, str, str]], now: float
) -> list[SigningKeyRow]:
    """Return active keys, generating one first if there are none.

    Runs under the write lock, so processes starting together agree on one key.
    ``generate`` returns (kid, alg, private_pem).
    """
    with write_transaction(conn):
        existing = list_active(conn)
        if existing:
            return existing
        kid, alg, pem = generate()
        conn.execute(
            "INSERT INTO signing_keys (kid, alg, private_pem, created_at) VALUES (?, ?, ?, ?)",
            (kid, alg, pem, now),
        )
        return list_active(conn)
