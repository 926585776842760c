"""The scope registry: name, description shown on the consent page, default flag."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from authly.errors import AuthlyError
from authly.store.conn import Conn, IntegrityError


class ScopeExists(AuthlyError):
    """Raised when a scope name is already registered."""


@dataclass(frozen=True)
class Scope:
    name: str
    description: str
    is_default: bool

    def public(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "default": self.is_default}


def list_all(conn: Conn) -> list[Scope]:
    rows = conn.execute("SELECT name, description, is_default FROM scopes ORDER BY name")
    return [Scope(r["name"], r["description"], bool(r["is_default"])) for r in rows]


def names(conn: Conn) -> frozenset[str]:
    """The names of the registered scopes."""
    return frozenset(s.name for s in list_all(conn))


def insert(conn: Conn, scope: Scope, now: float) -> Scope:
    try:
        conn.execute(
            "INSERT INTO scopes (name, description, is_default, created_at) VALUES (?, ?, ?, ?)",
            (scope.name, scope.description, int(scope.is_default), now),
        )
    except IntegrityError:
        raise ScopeExists(scope.name) from None
    return scope


def delete(conn: Conn, name: str) -> bool:
    return conn.execute("DELETE FROM scopes WHERE name = ?", (name,)).rowcount == 1
