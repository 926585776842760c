"""`authly admin db migrate|export|import`: the configured store itself, offline.

Moving an embedded deployment onto PostgreSQL is ``export`` from the SQLite store and
``import`` into the PostgreSQL one (store/transfer.py has the format and the rules).
Export writes JSON lines on stdout or to ``--file``; import reads them from stdin or
``--file``. Progress goes to stderr while it is a terminal; failures are one line on
stderr and exit status 1. The database URL is only ever shown with its password masked.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, NoReturn, TypeVar

import click
import trio

from authly.cli.common import load_settings
from authly.config import Settings
from authly.errors import StoreError
from authly.store import transfer
from authly.store.db import open_database
from authly.store.migrations import schema_version
from authly.store.urls import masked_database_url

T = TypeVar("T")


def _fail(message: str) -> NoReturn:
    click.echo(f"authly: {message}", err=True)
    sys.exit(1)


async def _on_store(settings: Settings, fn: Callable[..., T], *args: Any) -> T:
    """Open the configured store (migrating it), run ``fn(conn, *args)`` once, close it.
    Errors come out as raised, not wrapped in an exception group."""
    error: Exception | None = None
    value: T | None = None
    async with trio.open_nursery() as nursery:
        try:
            db = await open_database(
                nursery, settings.database_url, pool_size=settings.database_pool_size
            )
        except StoreError as exc:
            error = exc
        else:
            try:
                value = await db.run(fn, *args)
            except Exception as exc:
                error = exc
            finally:
                db.close()
    if error is not None:
        raise error
    return value  # type: ignore[return-value]


class Counter:
    """Rows done so far on one stderr line, redrawn at most ten times a second; silent
    unless stderr is a terminal. Called from the store's thread while Trio waits."""

    def __init__(self, label: str, total: int | None = None) -> None:
        self.label = label
        self.total = total
        self.enabled = sys.stderr.isatty()
        self._drawn = 0.0
        self._shown = -1

    def __call__(self, done: int) -> None:
        now = time.monotonic()
        if not self.enabled or done == self._shown:
            return
        if now - self._drawn < 0.1 and done != self.total:
            return
        self._drawn, self._shown = now, done
        if self.total:
            filled = min(30, 30 * done // self.total)
            line = f"{self.label} [{'#' * filled}{'.' * (30 - filled)}] {done}/{self.total} rows"
        else:
            line = f"{self.label} {done} rows"
        sys.stderr.write("\r" + line)
        sys.stderr.flush()

    def finish(self) -> None:
        if self.enabled and self._drawn:
            sys.stderr.write("\n")
            sys.stderr.flush()


def _summary(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} {n}" for name, n in counts.items() if n) or "nothing"


@click.group()
def db() -> None:
    """The configured store (AUTHLY_DATABASE_URL), offline: migrate, export, import.

    To move an embedded SQLite deployment onto PostgreSQL: stop Authly, `export` with
    AUTHLY_DATABASE_URL on the SQLite file, `import` with it on the new PostgreSQL
    database, then start Authly on PostgreSQL. Users stay signed in.
    """


@db.command("migrate")
def db_migrate() -> None:
    """Apply the schema migrations and print the schema version; nothing else."""
    settings = load_settings()
    where = masked_database_url(settings.database_url)
    try:
        version = trio.run(_on_store, settings, schema_version)
    except StoreError as exc:
        _fail(str(exc))
    click.echo(f"{where}: schema version {version}")


@contextlib.contextmanager
def _output(path: str) -> Iterator[IO[str]]:
    """stdout, or a new owner-only file that appears under ``path`` only when complete."""
    if path == "-":
        yield sys.stdout
        sys.stdout.flush()
        return
    target = Path(path)
    partial = target.with_name(target.name + ".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            yield out
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


@db.command("export")
@click.option(
    "--file", "path", default="-", metavar="PATH", help="Write to PATH, not stdout ('-')."
)
def db_export(path: str) -> None:
    """Write the store as JSON lines: users, scopes, clients, consents, signing keys,
    live refresh-token families, unexpired revoked tokens, deployment facts and
    unexpired sessions kept in the store.

    The dump holds password hashes and private signing keys: keep it secret (a --file
    is created readable by its owner only, and appears only once complete).
    Authorization codes, and sessions kept in Redis or memory, are not exported.
    """
    settings = load_settings()
    where = masked_database_url(settings.database_url)
    file = settings.database_url.removeprefix("sqlite:///")
    if file != settings.database_url and not Path(file).exists():
        _fail(f"there is no store at {where}: nothing to export")
    counter = Counter("exporting")
    try:
        with _output(path) as out:
            written = 0

            def emit(record: dict[str, Any]) -> None:
                nonlocal written
                out.write(json.dumps(record, separators=(",", ":")) + "\n")
                written += 1
                counter(written)

            counts = trio.run(_on_store, settings, transfer.dump, time.time(), emit)
    except (StoreError, OSError) as exc:
        counter.finish()
        _fail(f"export from {where} failed: {exc}")
    counter.finish()
    click.echo(f"exported from {where}: {_summary(counts)}", err=True)


def _source(path: str, spool: Path) -> tuple[Path, int]:
    """The dump as a file to read (stdin is copied into ``spool`` first, so the load can
    read it again if the database retries) and its number of lines."""
    lines = 0
    if path == "-":
        if sys.stdin.isatty():
            raise OSError("nothing on stdin: pipe an export in, or use --file PATH")
        with spool.open("wb") as copy:
            for line in sys.stdin.buffer:
                copy.write(line)
                lines += 1
        return spool, lines
    source = Path(path)
    with source.open("rb") as f:
        for _ in f:
            lines += 1
    return source, lines


def _read_lines(source: Path) -> Iterator[str]:
    with source.open(encoding="utf-8") as f:
        yield from f


@db.command("import")
@click.option(
    "--file", "path", default="-", metavar="PATH", help="Read from PATH, not stdin ('-')."
)
@click.option(
    "--merge",
    is_flag=True,
    help="Allow a non-empty store: rows whose primary key exists are kept, the dump's skipped.",
)
def db_import(path: str, merge: bool) -> None:
    """Load a dump made by `authly admin db export`, all or nothing.

    Migrates the store first, then inserts every row in one transaction: a bad line
    anywhere leaves the store as it was. Refuses a dump from a newer schema, and a
    store that is not empty -- it has users, clients other than the built-in `authly`
    client, or refresh tokens -- unless --merge. The built-in scopes and client that
    migrations create are replaced by the dump's rows.
    """
    settings = load_settings()
    where = masked_database_url(settings.database_url)
    with tempfile.TemporaryDirectory(prefix="authly-import-") as scratch:
        try:
            source, total = _source(path, Path(scratch) / "dump.jsonl")
            with source.open(encoding="utf-8") as f:
                transfer.check_header(f.readline())
        except (OSError, UnicodeDecodeError) as exc:
            _fail(f"cannot read the export: {exc}")
        except transfer.TransferError as exc:
            _fail(f"import refused: {exc}")
        counter = Counter("importing", max(total - 2, 0))
        load = functools.partial(
            transfer.load,
            lines=functools.partial(_read_lines, source),
            merge=merge,
            now=time.time(),
            progress=counter,
        )
        try:
            result = trio.run(_on_store, settings, load)
        except transfer.TransferError as exc:
            counter.finish()
            _fail(f"import into {where} refused, nothing written: {exc}")
        except (StoreError, OSError, UnicodeDecodeError) as exc:
            counter.finish()
            _fail(f"import into {where} failed, nothing written: {exc}")
    counter.finish()
    line = f"imported into {where}: {_summary(result.inserted)}"
    if result.skipped:
        line += f"; skipped (already there): {_summary(result.skipped)}"
    click.echo(line)
