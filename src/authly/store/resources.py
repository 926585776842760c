"""The resource registry (RFC 8707): the protected APIs tokens may be issued for.

One row per resource: its identifier (an absolute URI, the access token's ``aud``), a
name, and the scopes a token for it may carry (a subset of the scope registry, JSON
array). The rules are in oauth/resources.py and oauth/resource_registry.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from authly.errors import AuthlyError
from authly.store.conn import Conn, IntegrityError, Row


class ResourceExists(AuthlyError):
    """Raised when a resource identifier is already registered."""


@dataclass(frozen=True)
class Resource:
    identifier: str
    name: str
    scopes: tuple[str, ...]
    created_at: float
    updated_at: float

    def public(self) -> dict[str, Any]:
        """The admin view (what the admin API shows and accepts)."""
        return {
            "resource": self.identifier,
            "name": self.name,
            "scopes": list(self.scopes),
            "created_at": int(self.created_at),
            "updated_at": int(self.updated_at),
        }


def _row(row: Row | None) -> Resource | None:
    if row is None:
        return None
    return Resource(
        identifier=row["identifier"],
        name=row["name"],
        scopes=tuple(json.loads(row["scopes"])),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def get(conn: Conn, identifier: str) -> Resource | None:
    return _row(
        conn.execute("SELECT * FROM resources WHERE identifier = ?", (identifier,)).fetchone()
    )


def get_many(conn: Conn, identifiers: Iterable[str]) -> dict[str, Resource]:
    """The registered resources among ``identifiers``, by identifier."""
    found: dict[str, Resource] = {}
    for identifier in dict.fromkeys(identifiers):
        resource = get(conn, identifier)
        if resource is not None:
            found[identifier] = resource
    return found


def list_all(conn: Conn) -> list[Resource]:
    rows = conn.execute("SELECT * FROM resources ORDER BY identifier").fetchall()
    return [r for r in (_row(row) for row in rows) if r is not None]


def insert(conn: Conn, resource: Resource) -> Resource:
    try:
        conn.execute(
            "INSERT INTO resources (identifier, name, scopes, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (
                resource.identifier,
                resource.name,
                json.dumps(list(resource.scopes)),
                resource.created_at,
                resource.updated_at,
            ),
        )
    except IntegrityError:
        raise ResourceExists(resource.identifier) from None
    return resource


def update(conn: Conn, resource: Resource) -> Resource | None:
    cur = conn.execute(
        "UPDATE resources SET name = ?, scopes = ?, updated_at = ? WHERE identifier = ?",
        (
            resource.name,
            json.dumps(list(resource.scopes)),
            resource.updated_at,
            resource.identifier,
        ),
    )
    return resource if cur.rowcount == 1 else None


def delete(conn: Conn, identifier: str) -> bool:
    return conn.execute("DELETE FROM resources WHERE identifier = ?", (identifier,)).rowcount == 1


def using_scope(conn: Conn, scope: str) -> list[str]:
    """The identifiers of the resources that allow ``scope``."""
    return [r.identifier for r in list_all(conn) if scope in r.scopes]
