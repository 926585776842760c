"""The SQLite store: one worker thread per Database, shared files, users repository."""

from __future__ import annotations

import sqlite3
import time

import pytest

from authly.errors import StoreError
from authly.store import keys as key_repo
from authly.store import users as user_repo
from authly.store.db import open_database
from authly.store.migrations import MIGRATIONS, schema_version
from authly.store.users import UsernameTaken

HASH = "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"


pytestmark = pytest.mark.both_stores


@pytest.fixture
def db_path(database_url, tmp_path) -> str:
    """The store's URL: a file under a directory that does not exist yet (SQLite), or a
    new database (PostgreSQL)."""
    if database_url.startswith("sqlite:"):
        return str(tmp_path / "store" / "authly.db")
    return database_url


async def _create(db, username: str, *, is_admin: bool = False):
    return await db.run(user_repo.create, username, HASH, None, is_admin, time.time())


async def test_two_databases_on_one_file_both_migrate_and_share_writes(nursery, db_path):
    first = await open_database(nursery, db_path)
    second = await open_database(nursery, db_path)
    try:
        assert await first.run(schema_version) == len(MIGRATIONS)
        assert await second.run(schema_version) == len(MIGRATIONS)
        alice = await _create(first, "alice")
        seen = await second.run(user_repo.get_by_username, "alice")
        assert seen is not None
        assert seen.id == alice.id
        bob = await _create(second, "bob")
        assert (await first.run(user_repo.get_by_id, bob.id)).username == "bob"
        assert await first.run(user_repo.count) == await second.run(user_repo.count) == 2
        with pytest.raises(UsernameTaken):
            await _create(second, "ALICE")
    finally:
        first.close()
        second.close()


async def test_reopening_a_migrated_file_keeps_its_data(nursery, db_path):
    first = await open_database(nursery, db_path)
    await _create(first, "alice")
    first.close()
    again = await open_database(nursery, db_path)
    try:
        assert await again.run(schema_version) == len(MIGRATIONS)
        assert await again.run(user_repo.get_by_username, "alice") is not None
    finally:
        again.close()


async def test_signing_key_is_generated_once_for_processes_sharing_a_file(nursery, db_path):
    generated: list[int] = []

    def generate() -> tuple[str, str, str]:
        generated.append(1)
        return f"kid-{len(generated)}", "RS256", "-----PEM-----"

    first = await open_database(nursery, db_path)
    second = await open_database(nursery, db_path)
    try:
        rows_a = await first.run(key_repo.ensure_current, {"RS256": generate}, time.time())
        rows_b = await second.run(key_repo.ensure_current, {"RS256": generate}, time.time())
        assert generated == [1]
        assert [r.kid for r in rows_a] == [r.kid for r in rows_b] == ["kid-1"]
        assert "PEM" not in repr(rows_a[0])  # the private key never shows in a repr
    finally:
        first.close()
        second.close()


@pytest.mark.parametrize(
    ("first_name", "second_name"),
    [
        ("alice", "Alice"),
        ("alice", "ALICE"),
        ("alice", "aLiCe"),
        ("alice", "alice"),
        ("alice", "\uff41\uff4c\uff49\uff43\uff45"),  # fullwidth: NFKC folds it
        ("Alice", "alice"),
        ("stra\u00dfe", "STRASSE"),  # casefold, not just lower()
    ],
)
async def test_usernames_are_unique_case_insensitively(nursery, db_path, first_name, second_name):
    db = await open_database(nursery, db_path)
    try:
        await _create(db, first_name)
        with pytest.raises(UsernameTaken):
            await _create(db, second_name)
        assert await db.run(user_repo.count) == 1
    finally:
        db.close()


async def test_lookup_is_case_insensitive_and_keeps_the_spelling(nursery, db_path):
    db = await open_database(nursery, db_path)
    try:
        created = await _create(db, "Alice")
        for name in ("alice", "ALICE", "Alice"):
            found = await db.run(user_repo.get_by_username, name)
            assert found is not None
            assert found.id == created.id
            assert found.username == "Alice"
        assert await db.run(user_repo.get_by_username, "alicia") is None
    finally:
        db.close()


async def test_created_user_fields(nursery, db_path):
    db = await open_database(nursery, db_path)
    try:
        before = time.time()
        user = await db.run(user_repo.create, "carol", HASH, "c@example.com", True, before)
        assert user.username == "carol"
        assert user.email == "c@example.com"
        assert user.is_admin is True
        assert user.is_active is True
        assert user.password_hash == HASH
        profile = user.profile()
        assert "password_hash" not in profile
        assert HASH not in str(profile.values())
        assert profile["created_at"] == int(before)
    finally:
        db.close()


async def test_bootstrap_admin_is_created_only_into_an_empty_store(nursery, db_path):
    db = await open_database(nursery, db_path)
    try:
        first = await db.run(user_repo.create_if_none, "admin", HASH, time.time())
        assert first is not None
        assert first.is_admin
        assert await db.run(user_repo.create_if_none, "admin2", HASH, time.time()) is None
        assert await db.run(user_repo.count) == 1
    finally:
        db.close()


async def test_driver_errors_become_store_errors(nursery, db_path):
    db = await open_database(nursery, db_path)
    try:
        with pytest.raises(StoreError):
            await db.run(lambda conn: conn.execute("SELECT * FROM no_such_table"))
        # The worker survives a failed query.
        assert await db.run(user_repo.count) == 0
    finally:
        db.close()


async def test_run_after_close_is_a_store_error(nursery, db_path):
    db = await open_database(nursery, db_path)
    db.close()
    with pytest.raises(StoreError):
        await db.run(user_repo.count)


async def test_opening_an_unusable_path_is_a_store_error(nursery, tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    with pytest.raises(StoreError):
        await open_database(nursery, str(blocker / "authly.db"))


async def test_a_newer_schema_is_refused(nursery, db_path):
    db = await open_database(nursery, db_path)
    db.close()
    newer = len(MIGRATIONS) + 5
    if db_path.startswith("postgresql:"):
        import psycopg

        with psycopg.connect(db_path, autocommit=True) as pg:
            pg.execute("UPDATE authly_schema SET version = %s", (newer,))
    else:
        conn = sqlite3.connect(db_path)
        try:
            conn.execute(f"PRAGMA user_version = {newer}")
            conn.commit()
        finally:
            conn.close()
    with pytest.raises(StoreError, match="newer than this Authly"):
        await open_database(nursery, db_path)


def test_many_openers_of_a_new_file_at_once(tmp_path):
    """Processes starting together on a new file race to switch it to WAL; SQLite answers
    the losers "database is locked" at once, which must be retried, not fatal. Threads
    with their own connections lock exactly as processes do, and start together."""
    import threading

    from authly.store.conn import SqliteConn
    from authly.store.db import connect
    from authly.store.migrations import migrate

    errors: list[str] = []
    for trial in range(20):
        path = str(tmp_path / f"race{trial}.db")
        barrier = threading.Barrier(6)

        def open_and_migrate(path: str = path, barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            try:
                conn = SqliteConn(connect(path))
                migrate(conn)
                conn.raw.close()
            except sqlite3.Error as exc:
                errors.append(repr(exc))

        threads = [threading.Thread(target=open_and_migrate) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    assert errors == []
