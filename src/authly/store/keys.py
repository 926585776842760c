"""Signing key rows: the private key PEM per kid; shared by every process on the store.

A key is *current* while ``retired_at`` is NULL: there is one current key per
algorithm (``ensure_current`` and ``rotate`` both run under the write lock, so
processes starting or rotating together agree). A retired key keeps its row; whether it
is still published is decided by tokens/keys.py from ``retired_at`` and the retention.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from authly.store.conn import Conn, write_transaction

# () -> (kid, alg, private_pem)
Generate = Callable[[], tuple[str, str, str]]


@dataclass(frozen=True)
class SigningKeyRow:
    kid: str
    alg: str
    private_pem: str = field(repr=False)
    created_at: float
    retired_at: float | None = None


def list_all(conn: Conn) -> list[SigningKeyRow]:
    """Every key, retired or not, newest first."""
    rows = conn.execute(
        "SELECT kid, alg, private_pem, created_at, retired_at FROM signing_keys"
        " ORDER BY created_at DESC, CASE WHEN retired_at IS NULL THEN 0 ELSE 1 END,"
        " retired_at DESC, kid DESC"
    ).fetchall()
    return [
        SigningKeyRow(r["kid"], r["alg"], r["private_pem"], r["created_at"], r["retired_at"])
        for r in rows
    ]


def _insert(conn: Conn, generate: Generate, alg: str, now: float) -> None:
    kid, generated_alg, pem = generate()
    if generated_alg != alg:
        raise ValueError(f"the {alg} generator made a {generated_alg} key")
    conn.execute(
        "INSERT INTO signing_keys (kid, alg, private_pem, created_at) VALUES (?, ?, ?, ?)",
        (kid, alg, pem, now),
    )


def ensure_current(
    conn: Conn, generators: Mapping[str, Generate], now: float
) -> list[SigningKeyRow]:
    """Every key (as ``list_all``), after generating a current key for each algorithm
    in ``generators`` that has none.

    Runs under the write lock, so processes starting together agree on one key each.
    """
    with write_transaction(conn):
        rows = list_all(conn)
        have = {r.alg for r in rows if r.retired_at is None}
        missing = [alg for alg in generators if alg not in have]
        for alg in missing:
            _insert(conn, generators[alg], alg, now)
        return list_all(conn) if missing else rows


def rotate(conn: Conn, alg: str, generate: Generate, now: float) -> list[SigningKeyRow]:
    """Retire the current key(s) of ``alg`` and add a new current one, atomically;
    return every key (as ``list_all``)."""
    with write_transaction(conn):
        conn.execute(
            "UPDATE signing_keys SET retired_at = ? WHERE alg = ? AND retired_at IS NULL",
            (now, alg),
        )
        _insert(conn, generate, alg, now)
        return list_all(conn)
