"""The resource registry for the admin API (RFC 8707): parse, check, write atomically.

A resource is shown, and accepted, as ``{"resource", "name", "scopes"}`` (plus the
read-only ``created_at`` and ``updated_at``):

- ``resource``: the identifier, the ``aud`` of tokens for it. An ``https`` URL (``http``
  only on a loopback host: ``localhost``, ``127.0.0.0/8``, ``[::1]``) with a host in
  lower case, no user information and no fragment, at most 2000 characters; a query is
  allowed (RFC 8707 §2 discourages it). Set on create, never changed (the identifier is
  what tokens already issued name: register a new resource instead).
- ``name``: 1 to 200 characters (``resource_name`` in its RFC 9728 metadata).
- ``scopes``: registered scope names, at most 50: what a token for it may carry.

Every change runs as one write transaction in the store's thread (read, check, write),
so a scope cannot be deleted while a resource is being given it (scope deletion refuses
scopes a resource allows: oauth/registry.py). Errors: InvalidRequest (400) for bad
values, NotFound (404), Conflict (409) for an identifier already registered.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

from authly.errors import Conflict, InvalidRequest, NotFound
from authly.oauth.registration import MAX_CLIENT_SCOPES, MAX_NAME, check_fields
from authly.oauth.resources import MAX_IDENTIFIER, identifier_problem
from authly.store import resources as resource_repo
from authly.store import scopes as scope_repo
from authly.store.conn import Conn, write_transaction
from authly.store.db import Database
from authly.store.resources import Resource, ResourceExists

FIELDS = frozenset({"resource", "name", "scopes"})


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_identifier(value: Any) -> str:
    """A registrable resource identifier (see the module docstring); InvalidRequest."""
    if not isinstance(value, str):
        raise InvalidRequest("Field resource must be a string.")
    problem = identifier_problem(value)
    if problem is not None:
        raise InvalidRequest(f"Field resource {problem}.")
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not value.startswith(parts.scheme + "://"):
        raise InvalidRequest("Field resource must be an https URL, e.g. https://api.example.com.")
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        raise InvalidRequest("Field resource has an invalid port.") from None
    if not host or "@" in parts.netloc:
        raise InvalidRequest("Field resource must name a host (and no user information).")
    shown_host = parts.netloc.rsplit(":", 1)[0] if port is not None else parts.netloc
    if shown_host.lower() != shown_host or any(c in shown_host for c in "%?"):
        raise InvalidRequest("Field resource must have its host in lower case.")
    if parts.scheme == "http" and not _is_loopback(host):
        raise InvalidRequest("Field resource may use http only on a loopback host.")
    return value


def _name(value: Any) -> str:
    if not isinstance(value, str):
        raise InvalidRequest("Field name must be a string.")
    text = value.strip()
    if not 1 <= len(text) <= MAX_NAME or not text.isprintable():
        raise InvalidRequest(f"Field name must be 1 to {MAX_NAME} printable characters.")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from a JSON \uD800 escape
        raise InvalidRequest("Field name is not valid Unicode text.") from None
    return text


def _scopes(value: Any, registered: frozenset[str]) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        raise InvalidRequest("Field scopes must be an array of scope names.")
    if len(value) > MAX_CLIENT_SCOPES:
        raise InvalidRequest(f"Field scopes may hold at most {MAX_CLIENT_SCOPES} entries.")
    unknown = [s for s in value if s not in registered]
    if unknown:
        shown = ", ".join(repr(s[:64]) for s in unknown[:5])
        raise InvalidRequest(f"Unknown scope(s): {shown}. Register them first.")
    return tuple(dict.fromkeys(value))


def _get(conn: Conn, identifier: str) -> Resource:
    found = resource_repo.get(conn, identifier) if len(identifier) <= MAX_IDENTIFIER else None
    if found is None:
        raise NotFound(f"No resource {identifier[:200]!r} is registered.")
    return found


def _create_tx(conn: Conn, body: Mapping[str, Any], now: float) -> Resource:
    check_fields(body, FIELDS)
    for required in ("resource", "name"):
        if required not in body:
            raise InvalidRequest(f"Missing field: {required}.")
    identifier = check_identifier(body["resource"])
    name = _name(body["name"])
    with write_transaction(conn):
        scopes = _scopes(body.get("scopes", []), scope_repo.names(conn))
        try:
            return resource_repo.insert(conn, Resource(identifier, name, scopes, now, now))
        except ResourceExists:
            raise Conflict(f"The resource {identifier[:200]!r} is already registered.") from None


def _update_tx(conn: Conn, identifier: str, body: Mapping[str, Any], now: float) -> Resource:
    if "resource" in body and body["resource"] != identifier:
        raise InvalidRequest("Field resource cannot change: register a new resource instead.")
    check_fields(body, FIELDS)
    with write_transaction(conn):
        current = _get(conn, identifier)
        name = _name(body["name"]) if "name" in body else current.name
        scopes = current.scopes
        if "scopes" in body:
            scopes = _scopes(body["scopes"], scope_repo.names(conn))
        updated = replace(current, name=name, scopes=scopes, updated_at=now)
        resource_repo.update(conn, updated)
        return updated


def _delete_tx(conn: Conn, identifier: str) -> None:
    with write_transaction(conn):
        _get(conn, identifier)
        resource_repo.delete(conn, identifier)


class ResourceRegistry:
    """What the admin API does with resources (see the module docstring)."""

    def __init__(self, db: Database, *, now: Callable[[], float] = time.time) -> None:
        self._db = db
        self._now = now

    async def list(self) -> list[Resource]:
        return await self._db.run(resource_repo.list_all)

    async def get(self, identifier: str) -> Resource:
        return await self._db.run(_get, identifier)

    async def create(self, body: Mapping[str, Any]) -> Resource:
        return await self._db.run(_create_tx, body, self._now())

    async def update(self, identifier: str, body: Mapping[str, Any]) -> Resource:
        return await self._db.run(_update_tx, identifier, body, self._now())

    async def delete(self, identifier: str) -> None:
        """Tokens already issued for it stay valid until they expire; refresh tokens
        granted for it no longer yield tokens for it (oauth/resources.py ``narrow``)."""
        await self._db.run(_delete_tx, identifier)
