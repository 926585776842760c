"""Moving a store's contents between engines: a dump as JSON lines, and loading one.

A dump is one JSON object per line::

    {"authly_export": 1, "schema_version": 6, "exported_at": 1767225600.0, ...}
    {"table": "users", "row": {"id": "...", "username": "alice", ...}}
    ...
    {"authly_export_end": 1, "rows": {"users": 3, "clients": 2, ...}}

The rows are every column as stored, table by table in ``TABLES`` order (parents before
the rows that reference them), each table sorted by primary key in Python so both
engines write the same dump. The closing line counts the rows: a truncated dump is
refused instead of loaded in part.

What is moved: users, scopes, clients, consents, signing keys, the refresh-token
families that are still live (every row of such a family, rotated ones included, so
reuse is still detected after the move), the revoked access tokens that have not yet
expired, and where the schema has them (migration 7) the ``deployment`` facts (the
issuer when none is configured) and the unexpired "Database sessions" (sessions kept in
Redis or in memory are not in the store and are not moved). Authorization codes and
instance heartbeats are not moved. Tables in ``TABLES`` that the schema lacks are
skipped; the columns are read from the schema, so a dump carries every column the
migrations created. The resource registry (RFC 8707, migration 11) moves too.

``load`` inserts a dump in ONE write transaction: any bad line, unknown column or
broken constraint rolls the whole load back. Into an "empty" store (no users, no
clients but the built-in ones, no refresh tokens) a row whose primary key exists
replaces it (the built-in scopes and client that migrations insert, keys the target
generated on a first start); with ``merge`` existing rows win and the dump's are
skipped. Either way the store ends with one current signing key per algorithm: the
dump's on a plain load, the target's with ``merge`` (the other is retired, so it stays
published and tokens it signed still verify until the retention ends).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from authly.store.conn import Conn, IntegrityError, write_transaction
from authly.store.migrations import MIGRATIONS, schema_version

FORMAT = 1
# Dependency order: a table comes after every table its rows reference.
TABLES = (
    "users",
    "scopes",
    "resources",
    "clients",
    "consents",
    "signing_keys",
    "refresh_tokens",
    "revoked_tokens",
    "deployment",
    "sessions",
)
BUILTIN_CLIENTS = ("authly",)  # inserted by migration 2
BATCH = 500  # rows inserted per executemany
PROGRESS_EVERY = 500  # rows between two progress reports

# Which rows of a table a dump carries (``?`` is the export time); every row if absent.
_LIVE_FAMILY = (
    "family_id IN (SELECT family_id FROM refresh_tokens WHERE revoked_at IS NULL"
    " AND rotated_at IS NULL AND expires_at > ?)"
)
_WHERE = {
    "refresh_tokens": _LIVE_FAMILY,
    "revoked_tokens": "expires_at > ?",
    "sessions": "expires_at > ?",
}

Progress = Callable[[int], None]  # told the number of rows handled so far


class TransferError(Exception):
    """Raised when a dump cannot be loaded: bad line, wrong format, or refused target."""


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[str, ...]
    primary_key: tuple[str, ...]


@dataclass
class LoadResult:
    inserted: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.inserted.values())


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def table(conn: Conn, name: str) -> Table | None:
    """The columns (in schema order) and primary key of table ``name``; None if absent."""
    if conn.dialect == "sqlite":
        rows = conn.execute(
            "SELECT name, pk FROM pragma_table_info(?) ORDER BY cid", (name,)
        ).fetchall()
        columns = tuple(r["name"] for r in rows)
        key = tuple(r["name"] for r in sorted((r for r in rows if r["pk"]), key=lambda r: r["pk"]))
    else:
        rows = conn.execute(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND table_name = ? ORDER BY ordinal_position",
            (name,),
        ).fetchall()
        columns = tuple(r["column_name"] for r in rows)
        key = tuple(
            r["column_name"]
            for r in conn.execute(
                "SELECT k.column_name FROM information_schema.table_constraints c"
                " JOIN information_schema.key_column_usage k"
                " ON k.constraint_name = c.constraint_name AND k.table_schema = c.table_schema"
                " AND k.table_name = c.table_name WHERE c.constraint_type = 'PRIMARY KEY'"
                " AND c.table_schema = current_schema() AND c.table_name = ?"
                " ORDER BY k.ordinal_position",
                (name,),
            ).fetchall()
        )
    return Table(name, columns, key) if columns else None


def tables(conn: Conn) -> list[Table]:
    """The tables of ``TABLES`` that this store's schema has, in dump order."""
    return [t for name in TABLES if (t := table(conn, name)) is not None]


def header(conn: Conn, now: float) -> dict[str, Any]:
    return {"authly_export": FORMAT, "schema_version": schema_version(conn), "exported_at": now}


def _begin_snapshot(conn: Conn) -> None:
    """A read transaction that sees one moment of the store and blocks no writer."""
    if conn.dialect == "sqlite":
        conn.execute("BEGIN")  # deferred: a WAL snapshot from the first read on
    else:
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")


def dump(conn: Conn, now: float, emit: Callable[[dict[str, Any]], None]) -> dict[str, int]:
    """Hand every line of a dump (as a dict, header and end line included) to ``emit``,
    all read from one snapshot of the store; return the rows per table."""
    counts: dict[str, int] = {}
    _begin_snapshot(conn)
    try:
        emit(header(conn, now))
        for t in tables(conn):
            columns = ", ".join(_quote(c) for c in t.columns)
            sql = f"SELECT {columns} FROM {_quote(t.name)}"  # noqa: S608 - names from the schema
            where = _WHERE.get(t.name)
            cursor = conn.execute(f"{sql} WHERE {where}" if where else sql, (now,) if where else ())
            rows = [dict(zip(t.columns, r, strict=True)) for r in cursor.fetchall()]
            key = t.primary_key or t.columns
            rows.sort(key=lambda row: tuple(_sortable(row[c]) for c in key))
            for row in rows:
                emit({"table": t.name, "row": row})
            counts[t.name] = len(rows)
        emit({"authly_export_end": FORMAT, "rows": counts})
    finally:
        conn.rollback()
    return counts


def _sortable(value: Any) -> tuple[int, Any]:
    """Sort key that never compares None, numbers and text with each other."""
    if value is None:
        return (0, 0)
    if isinstance(value, int | float):
        return (1, value)
    return (2, str(value))


def occupancy(conn: Conn) -> dict[str, int]:
    """What makes a store non-empty: users, clients other than the built-in ones, and
    refresh tokens (built-in scopes, signing keys and the like do not count)."""
    marks = ", ".join("?" for _ in BUILTIN_CLIENTS)
    return {
        "users": conn.execute("SELECT COUNT(*) FROM users").fetchone()[0],
        "clients": conn.execute(
            f"SELECT COUNT(*) FROM clients WHERE client_id NOT IN ({marks})",  # noqa: S608
            BUILTIN_CLIENTS,
        ).fetchone()[0],
        "refresh_tokens": conn.execute("SELECT COUNT(*) FROM refresh_tokens").fetchone()[0],
    }


def check_header(line: str) -> dict[str, Any]:
    """The parsed first line of a dump; TransferError unless this Authly can load it."""
    if not line.strip():
        raise TransferError("the export is empty: no header line")
    try:
        head = json.loads(line)
    except ValueError:
        head = None
    if not isinstance(head, dict) or "authly_export" not in head:
        raise TransferError("line 1: not an Authly export (no authly_export header)")
    if head["authly_export"] != FORMAT:
        raise TransferError(
            f"line 1: export format {head['authly_export']!r} is not supported (only {FORMAT})"
        )
    version = head.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise TransferError("line 1: the header has no valid schema_version")
    if version > len(MIGRATIONS):
        raise TransferError(
            f"the export has schema version {version}, newer than this Authly's "
            f"({len(MIGRATIONS)}); upgrade Authly before importing"
        )
    return head


def parse(lines: Iterable[str]) -> Iterator[tuple[int, str, dict[str, Any]]]:
    """``(line number, table, row)`` for each row line of a dump, after checking the
    header; TransferError at the first bad line, or at the end if the closing line is
    missing or its counts disagree."""
    counts: dict[str, int] = {}
    end: dict[str, Any] | None = None
    number = 0
    for number, text in enumerate(lines, start=1):
        if number == 1:
            check_header(text)
            continue
        if not text.strip():
            continue
        if end is not None:
            raise TransferError(f"line {number}: data after the end line")
        try:
            record = json.loads(text)
        except json.JSONDecodeError as exc:
            raise TransferError(f"line {number}: not valid JSON ({exc.msg})") from None
        if isinstance(record, dict) and "authly_export_end" in record:
            end = record
            continue
        name, row = _record(number, record)
        counts[name] = counts.get(name, 0) + 1
        yield number, name, row
    if number == 0:
        raise TransferError("the export is empty")
    if end is None:
        raise TransferError("the export is truncated: its end line is missing")
    declared = end.get("rows")
    if not isinstance(declared, dict) or {k: v for k, v in declared.items() if v} != counts:
        raise TransferError(f"the export's row counts {declared!r} do not match its lines")


def _record(number: int, record: Any) -> tuple[str, dict[str, Any]]:
    if not isinstance(record, dict) or set(record) != {"table", "row"}:
        raise TransferError(f'line {number}: expected {{"table": ..., "row": {{...}}}}')
    name, row = record["table"], record["row"]
    if name not in TABLES:
        raise TransferError(f"line {number}: unknown table {name!r}")
    if not isinstance(row, dict) or not row:
        raise TransferError(f"line {number}: the row is not a JSON object")
    for column, value in row.items():
        if isinstance(value, dict | list):
            raise TransferError(f"line {number}: column {column!r} is not a plain value")
    return name, row


def load(
    conn: Conn,
    lines: Callable[[], Iterable[str]],
    *,
    merge: bool,
    now: float,
    progress: Progress | None = None,
) -> LoadResult:
    """Insert the dump read from ``lines()`` in one write transaction (see the module
    docstring for conflicts); TransferError, with nothing written, if the store is not
    empty and ``merge`` is false or if any line is bad.

    ``lines`` is called again if the engine retries the transaction (PostgreSQL after
    a serialization conflict), so it must give the whole dump each time.
    """
    with write_transaction(conn):
        if not merge:
            found = occupancy(conn)
            if any(found.values()):
                raise TransferError(
                    "the target store is not empty ("
                    + ", ".join(f"{what.replace('_', ' ')}: {n}" for what, n in found.items())
                    + "); import into an empty database or pass --merge"
                )
        loader = _Loader(conn, {t.name: t for t in tables(conn)}, merge, progress)
        for number, name, row in parse(lines()):
            loader.add(number, name, row)
        loader.flush()
        _one_current_key(conn, loader.keys, merge=merge, now=now)
        if progress is not None:
            progress(loader.handled)
        return loader.result


class _Loader:
    """Inserts consecutive rows of one table and one column set as a batch
    (``executemany``: one round trip to PostgreSQL per batch, not per row)."""

    def __init__(
        self, conn: Conn, schema: dict[str, Table], merge: bool, progress: Progress | None
    ) -> None:
        self.conn = conn
        self.schema = schema
        self.merge = merge
        self.progress = progress
        self.result = LoadResult()
        self.keys: list[dict[str, Any]] = []  # signing-key rows actually inserted
        self.handled = 0
        self._reported = 0
        self._table: Table | None = None
        self._columns: tuple[str, ...] = ()
        self._lines: list[int] = []
        self._rows: list[dict[str, Any]] = []

    def add(self, number: int, name: str, row: dict[str, Any]) -> None:
        target = self.schema.get(name)
        if target is None:
            raise TransferError(f"line {number}: this store has no table {name!r}")
        unknown = sorted(set(row) - set(target.columns))
        if unknown:
            raise TransferError(f"line {number}: {name} has no column {unknown[0]!r}")
        columns = tuple(row)
        if self._rows and (target is not self._table or columns != self._columns):
            self.flush()
        self._table, self._columns = target, columns
        self._lines.append(number)
        self._rows.append(row)
        # Key rows one at a time: which of them were inserted decides the current keys.
        if len(self._rows) >= BATCH or name == "signing_keys":
            self.flush()

    def flush(self) -> None:
        target, rows = self._table, self._rows
        if target is None or not rows:
            return
        sql = _insert_sql(target, self._columns, self.merge)
        try:
            written = self.conn.executemany(sql, rows).rowcount
        except IntegrityError as exc:
            first, last = self._lines[0], self._lines[-1]
            where = f"line {first}" if first == last else f"lines {first}-{last}"
            raise TransferError(f"{where} ({target.name}): {_one_line(exc)}") from None
        skipped = len(rows) - written
        for book, n in ((self.result.inserted, written), (self.result.skipped, skipped)):
            if n:
                book[target.name] = book.get(target.name, 0) + n
        if target.name == "signing_keys" and written:
            self.keys.extend(rows)
        self.handled += len(rows)
        self._lines, self._rows = [], []
        if self.progress is not None and self.handled - self._reported >= PROGRESS_EVERY:
            self._reported = self.handled
            self.progress(self.handled)


def _insert_sql(target: Table, columns: tuple[str, ...], merge: bool) -> str:
    names = ", ".join(_quote(c) for c in columns)
    values = ", ".join(f":{c}" for c in columns)
    sql = f"INSERT INTO {_quote(target.name)} ({names}) VALUES ({values})"  # noqa: S608
    if not target.primary_key:
        return sql
    conflict = f" ON CONFLICT ({', '.join(_quote(c) for c in target.primary_key)})"
    update = [c for c in columns if c not in target.primary_key]
    if merge or not update:
        return sql + conflict + " DO NOTHING"
    sets = ", ".join(f"{_quote(c)} = excluded.{_quote(c)}" for c in update)
    return sql + conflict + " DO UPDATE SET " + sets


def _one_current_key(
    conn: Conn, imported: list[dict[str, Any]], *, merge: bool, now: float
) -> None:
    """Retire the surplus current keys: per algorithm, keep the dump's current key on a
    plain load and the target's own with ``merge``."""
    ours = {str(r["kid"]) for r in imported}
    for alg in {str(r["alg"]) for r in imported if r.get("retired_at") is None}:
        current = conn.execute(
            "SELECT kid FROM signing_keys WHERE alg = ? AND retired_at IS NULL", (alg,)
        ).fetchall()
        kids = {str(r["kid"]) for r in current}
        surplus = kids & ours if merge and kids - ours else kids - ours
        for kid in sorted(surplus):
            conn.execute("UPDATE signing_keys SET retired_at = ? WHERE kid = ?", (now, kid))


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or exc.__class__.__name__
