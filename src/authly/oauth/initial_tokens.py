"""Initial access tokens (RFC 7591 §3): what an operator hands a developer so that they
may register a client while ``AUTHLY_REGISTRATION=token``.

A token is ``init_`` + 256 random bits, shown once, when it is created; the store keeps
its SHA-256 (a fast hash is enough for that entropy, as for client secrets). It may
expire (``expires_in`` seconds after creation) and may be limited to a number of
registrations (``max_uses``; 1 for a single-use token). Revoking deletes it. A
registration spends one use in the same write transaction that creates the client
(oauth/dynamic_registration.py), so a registration refused for its metadata spends
nothing, and two registrations cannot both take a single-use token.
"""

from __future__ import annotations

import hashlib
import secrets
import string
import time
from collections.abc import Callable, Mapping
from typing import Any

from authly.errors import InvalidRequest, InvalidToken, NotFound
from authly.store import registrations as repo
from authly.store.conn import Conn, write_transaction
from authly.store.db import Database
from authly.store.registrations import InitialTokenRow

TOKEN_PREFIX = "init_"  # noqa: S105 (a prefix, not a secret)
ID_LENGTH = 12
MAX_DESCRIPTION = 200
MAX_TOKEN = 256
MIN_EXPIRES_IN = 60
MAX_EXPIRES_IN = 366 * 86_400
MAX_USES = 1_000_000
FIELDS = frozenset({"description", "expires_in", "max_uses"})
_ID_ALPHABET = string.ascii_lowercase + string.digits


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def status(token: InitialTokenRow, now: float) -> str:
    """``active``, ``expired`` or ``used_up``."""
    if token.expires_at is not None and token.expires_at <= now:
        return "expired"
    if token.max_uses is not None and token.uses >= token.max_uses:
        return "used_up"
    return "active"


def public(token: InitialTokenRow, now: float) -> dict[str, Any]:
    """The admin view: everything but the hash, and the token's status at ``now``."""
    return {
        "id": token.id,
        "description": token.description,
        "status": status(token, now),
        "created_at": int(token.created_at),
        "expires_at": None if token.expires_at is None else int(token.expires_at),
        "max_uses": token.max_uses,
        "uses": token.uses,
        "created_by": token.created_by,
    }


def _whole_number(body: Mapping[str, Any], name: str, lo: int, hi: int) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise InvalidRequest(f"Field {name} must be a whole number from {lo} to {hi}, or null.")
    return value


def parse_new_token(body: Mapping[str, Any]) -> tuple[str, int | None, int | None]:
    """(description, expires_in, max_uses) from an admin request body."""
    unknown = sorted(set(body) - FIELDS)
    if unknown:
        shown = ", ".join(repr(name[:64]) for name in unknown[:5])
        raise InvalidRequest(f"Unknown field(s): {shown}.")
    description = body.get("description", "")
    if description is None:
        description = ""
    if not isinstance(description, str) or len(description) > MAX_DESCRIPTION:
        raise InvalidRequest(f"Field description must be a string of at most {MAX_DESCRIPTION}.")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in description):
        raise InvalidRequest("Field description must not contain control characters.")
    expires_in = _whole_number(body, "expires_in", MIN_EXPIRES_IN, MAX_EXPIRES_IN)
    max_uses = _whole_number(body, "max_uses", 1, MAX_USES)
    return description.strip(), expires_in, max_uses


def spend(conn: Conn, token: str, now: float) -> InitialTokenRow:
    """Count one registration against ``token`` (atomic on its own: one conditional
    UPDATE). InvalidToken (401) if it is unknown, revoked, expired or used up."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > MAX_TOKEN:
        raise InvalidToken("The initial access token is unknown or was revoked.")
    digest = hash_token(token)
    found = repo.find_initial_token(conn, digest)
    if found is None:  # looked up by its SHA-256: nothing to learn from timing
        raise InvalidToken("The initial access token is unknown or was revoked.")
    state = status(found, now)
    if state == "expired":
        raise InvalidToken("The initial access token has expired.")
    if state == "used_up" or not repo.spend_initial_token(conn, digest, now):
        raise InvalidToken("The initial access token has been used up.")
    return found


def give_back(conn: Conn, token: str) -> None:
    """Undo ``spend`` for a registration that failed after it."""
    repo.give_back_initial_token(conn, hash_token(token))


def _new_id() -> str:
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(ID_LENGTH))


def _create_tx(conn: Conn, row: InitialTokenRow) -> InitialTokenRow:
    with write_transaction(conn):
        return repo.insert_initial_token(conn, row)


def _delete_tx(conn: Conn, token_id: str) -> None:
    with write_transaction(conn):
        if not repo.delete_initial_token(conn, token_id):
            raise NotFound(f"No initial access token with id {token_id[:64]!r}.")


class InitialTokens:
    """What the admin API does with initial access tokens: create (the token is
    returned this once), list, revoke. NotFound (404) for an unknown id."""

    def __init__(self, db: Database, *, now: Callable[[], float] = time.time) -> None:
        self._db = db
        self._now = now

    async def create(
        self, body: Mapping[str, Any], created_by: str | None
    ) -> tuple[dict[str, Any], str]:
        description, expires_in, max_uses = parse_new_token(body)
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = self._now()
        row = InitialTokenRow(
            id=_new_id(),
            token_hash=hash_token(token),
            description=description,
            created_at=now,
            expires_at=None if expires_in is None else now + expires_in,
            max_uses=max_uses,
            uses=0,
            created_by=created_by,
        )
        stored = await self._db.run(_create_tx, row)
        return public(stored, now), token

    async def list(self) -> list[dict[str, Any]]:
        rows = await self._db.run(repo.list_initial_tokens)
        now = self._now()
        return [public(r, now) for r in rows]

    async def revoke(self, token_id: str) -> None:
        await self._db.run(_delete_tx, token_id)
