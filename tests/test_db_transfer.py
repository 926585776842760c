"""Moving a store (store/transfer.py): export, import, the round trip SQLite ->
PostgreSQL -> SQLite, and signed-in users staying signed in across the move."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import outcome
import pytest
import trio

from authly.store import consents as consent_repo
from authly.store import keys as key_repo
from authly.store import scopes as scope_repo
from authly.store import transfer
from authly.store import users as user_repo
from authly.store.conn import Conn
from authly.store.db import open_database
from authly.store.migrations import MIGRATIONS
from authly.store.scopes import Scope
from authly.store.transfer import LoadResult, TransferError
from tests.conftest import login, make_settings, services_of
from tests.web.helpers import (
    LOGOUT,
    create_user,
    error_body,
    json_of,
    me,
    refresh,
    register_client,
    running_app,
)

ALICE_PASSWORD = "alice-password-1"
BOB_PASSWORD = "bob-password-1"


async def on_store(url: str, fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(conn, *args)`` on the store at ``url``; its exception raised as is."""
    async with trio.open_nursery() as nursery:
        db = await open_database(nursery, url)
        try:
            result = await outcome.acapture(db.run, fn, *args)
        finally:
            db.close()
    return result.unwrap()


async def export(url: str) -> list[str]:
    lines: list[str] = []
    await on_store(url, transfer.dump, time.time(), lambda r: lines.append(json.dumps(r)))
    return lines


async def load(url: str, lines: list[str], *, merge: bool = False) -> LoadResult:
    def run(conn: Conn) -> LoadResult:
        return transfer.load(conn, lambda: iter(lines), merge=merge, now=time.time())

    return await on_store(url, run)  # type: ignore[no-any-return]


def rows(lines: list[str]) -> list[dict[str, Any]]:
    """The dump without its header (which holds the export time)."""
    return [json.loads(line) for line in lines[1:]]


def of(lines: list[str], table: str) -> list[dict[str, Any]]:
    return [r["row"] for r in rows(lines) if r.get("table") == table]


def sqlite_url(tmp_path: Path, name: str) -> str:
    return f"sqlite:///{tmp_path / name}"


def _dead_rows(conn: Conn, user_id: str) -> None:
    """An expired refresh-token family and an expired revocation: neither is moved."""
    past = time.time() - 3600
    conn.execute(
        "INSERT INTO refresh_tokens (token_hash, family_id, user_id, client_id, scope,"
        " created_at, expires_at) VALUES ('old-hash', 'old-family', ?, 'authly', 'profile',"
        " ?, ?)",
        (user_id, past - 60, past),
    )
    conn.execute("INSERT INTO revoked_tokens (jti, expires_at) VALUES ('old-jti', ?)", (past,))


async def populate(url: str, tmp_path: Path) -> dict[str, Any]:
    """A store with users (profile fields too), a client, a custom scope, a consent,
    signing keys, alice's family (one rotated token, one current) and bob's logout."""
    async with running_app(make_settings(tmp_path, database_url=url)) as app:
        client = app.test_client()
        s = services_of(app)
        now = time.time()
        alice = await create_user(app, "alice", ALICE_PASSWORD)
        profile = {
            "email": "alice@example.com",
            "given_name": "Alice",
            "family_name": "Liddell",
            "address": {"locality": "Oxford", "country": "UK"},
            "email_verified": True,
            "locale": "en-GB",
        }
        await s.db.run(user_repo.update_attributes, alice.id, profile, now)
        await register_client(
            app, "reports", secret="reports-secret", auth_method="client_secret_basic",
            redirect_uris=("https://reports.example/cb",),
        )  # fmt: skip
        await s.db.run(scope_repo.insert, Scope("reports:read", "Read your reports", False), now)
        await s.db.run(consent_repo.remember, alice.id, "reports", "profile reports:read", now)
        first = await json_of(await login(client, "alice", ALICE_PASSWORD))
        second = await json_of(await refresh(client, first["refresh_token"]))
        await create_user(app, "bob", BOB_PASSWORD)
        bob = await json_of(await login(client, "bob", BOB_PASSWORD))
        await client.post(LOGOUT, json={"refresh_token": bob["refresh_token"]})
        await s.db.run(_dead_rows, alice.id)
        kids = sorted(k.kid for k in await s.db.run(key_repo.list_all))
    return {"alice_id": alice.id, "first": first, "second": second, "bob": bob, "kids": kids}


async def test_round_trip_sqlite_postgresql_sqlite_keeps_everyone_signed_in(
    tmp_path: Path, postgres_url: str
) -> None:
    source = sqlite_url(tmp_path, "source.db")
    made = await populate(source, tmp_path)

    dump1 = await export(source)
    assert (await load(postgres_url, dump1)).total == len(dump1) - 2
    dump2 = await export(postgres_url)
    again = sqlite_url(tmp_path, "again.db")
    await load(again, dump2)
    dump3 = await export(again)

    # Lossless: the same rows, in the same order, from both engines.
    assert rows(dump1) == rows(dump2) == rows(dump3)
    headers = [json.loads(d[0]) for d in (dump1, dump2, dump3)]
    assert {h["schema_version"] for h in headers} == {len(MIGRATIONS)}

    # What moved: every user with their profile, the client, the custom scope, the
    # consent, the keys, alice's whole family (rotated token included), bob's revoked
    # access token; not bob's ended family nor anything expired.
    users = {u["username"]: u for u in of(dump1, "users")}
    assert sorted(users) == ["admin", "alice", "bob"]
    assert users["alice"]["given_name"] == "Alice"
    assert json.loads(users["alice"]["address"]) == {"country": "UK", "locality": "Oxford"}
    assert users["alice"]["email_verified"] == 1
    assert "reports" in {c["client_id"] for c in of(dump1, "clients")}
    assert "reports:read" in {s["name"] for s in of(dump1, "scopes")}
    assert [c["scope"] for c in of(dump1, "consents")] == ["profile reports:read"]
    assert sorted(k["kid"] for k in of(dump1, "signing_keys")) == made["kids"]
    family = of(dump1, "refresh_tokens")
    assert {t["user_id"] for t in family} == {made["alice_id"]}
    assert sorted(t["rotated_at"] is None for t in family) == [False, True]
    revoked = [r["jti"] for r in of(dump1, "revoked_tokens")]
    assert "old-jti" not in revoked
    assert len(revoked) == 1

    # Start Authly on PostgreSQL: the tokens issued on SQLite still work.
    async with running_app(make_settings(tmp_path, database_url=postgres_url)) as app:
        client = app.test_client()
        second, bob = made["second"], made["bob"]
        assert (await me(client, f"Bearer {second['access_token']}")).status_code == 200
        assert (await me(client, f"Bearer {bob['access_token']}")).status_code == 401
        third = await json_of(await refresh(client, second["refresh_token"]))
        reused = await refresh(client, made["first"]["refresh_token"])
        assert (await error_body(reused, 400))["error"] == "invalid_grant"
        # Reuse was detected: the whole family, the newest token too, is revoked.
        assert (await refresh(client, third["refresh_token"])).status_code == 400
        kids = sorted(k.kid for k in await services_of(app).db.run(key_repo.list_all))
    assert kids == made["kids"], "the moved store signs with the keys it had"


async def _small_store(url: str, *usernames: str) -> None:
    def fill(conn: Conn) -> None:
        for name in usernames:
            user_repo.create(conn, name, "not-a-real-hash", None, False, time.time())

    await on_store(url, fill)


async def test_a_store_that_is_not_empty_is_refused_unless_merge(tmp_path: Path) -> None:
    source, target = sqlite_url(tmp_path, "a.db"), sqlite_url(tmp_path, "b.db")
    await _small_store(source, "alice", "bob")
    await _small_store(target, "carol")
    dump = await export(source)
    before = await export(target)

    with pytest.raises(TransferError, match=r"not empty \(users: 1, .*--merge"):
        await load(target, dump)
    assert rows(await export(target)) == rows(before)

    merged = await load(target, dump, merge=True)
    assert merged.inserted == {"users": 2}
    assert merged.skipped["scopes"] == len(of(dump, "scopes"))
    names = {u["username"] for u in of(await export(target), "users")}
    assert names == {"alice", "bob", "carol"}
    # Merging the same dump again skips every row and writes nothing.
    assert (await load(target, dump, merge=True)).inserted == {}


async def test_built_in_rows_are_replaced_not_refused(tmp_path: Path) -> None:
    source, target = sqlite_url(tmp_path, "a.db"), sqlite_url(tmp_path, "b.db")
    await _small_store(source, "alice")

    def edit(conn: Conn) -> None:
        conn.execute("UPDATE scopes SET description = 'Edited' WHERE name = 'email'")

    await on_store(source, edit)
    await load(target, await export(source))
    scopes = {s["name"]: s for s in of(await export(target), "scopes")}
    assert scopes["email"]["description"] == "Edited"


def _corrupt(lines: list[str], kind: str) -> list[str]:
    broken = list(lines)
    last_user = max(i for i, line in enumerate(lines) if '"table": "users"' in line)
    if kind == "json":
        broken.insert(last_user + 1, '{"table": "users", "row": {')
    elif kind == "constraint":
        row = {"user_id": "nobody", "client_id": "authly", "scope": "x", "created_at": 1.0}
        broken.insert(-1, json.dumps({"table": "consents", "row": row}))
        end = json.loads(broken[-1])
        end["rows"]["consents"] = end["rows"].get("consents", 0) + 1
        broken[-1] = json.dumps(end)
    elif kind == "column":
        record = json.loads(lines[last_user])
        record["row"]["favourite_colour"] = "blue"
        broken[last_user] = json.dumps(record)
    elif kind == "truncated":
        broken.pop()
    return broken


@pytest.mark.parametrize("kind", ["json", "constraint", "column", "truncated"])
async def test_a_bad_line_anywhere_leaves_the_store_unchanged(tmp_path: Path, kind: str) -> None:
    source, target = sqlite_url(tmp_path, "a.db"), sqlite_url(tmp_path, "b.db")
    await _small_store(source, "alice", "bob", "carol")
    dump = await export(source)
    before = await export(target)
    with pytest.raises(TransferError, match=r"line|truncated"):
        await load(target, _corrupt(dump, kind))
    assert rows(await export(target)) == rows(before)
    assert await on_store(target, transfer.occupancy) == {
        "users": 0,
        "clients": 0,
        "refresh_tokens": 0,
    }


@pytest.mark.parametrize(
    ("first", "message"),
    [
        ({"authly_export": 1, "schema_version": len(MIGRATIONS) + 1}, "newer than this Authly"),
        ({"authly_export": 2, "schema_version": 1}, "format 2 is not supported"),
        ({"something": "else"}, "not an Authly export"),
    ],
)
async def test_headers_it_cannot_load_are_refused(
    tmp_path: Path, first: dict[str, Any], message: str
) -> None:
    with pytest.raises(TransferError, match=message):
        transfer.check_header(json.dumps(first))
    end = json.dumps({"authly_export_end": 1, "rows": {}})
    with pytest.raises(TransferError, match=message):
        await load(sqlite_url(tmp_path, "b.db"), [json.dumps(first), end])


async def test_a_missing_table_is_skipped_on_export_and_refused_on_import(tmp_path: Path) -> None:
    source, target = sqlite_url(tmp_path, "a.db"), sqlite_url(tmp_path, "b.db")
    await _small_store(source, "alice")

    def add_and_drop(conn: Conn) -> None:
        conn.execute("DROP TABLE IF EXISTS deployment")
        conn.execute("CREATE TABLE deployment (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
        conn.execute("INSERT INTO deployment (name, value) VALUES ('issuer', 'https://a')")

    await on_store(source, add_and_drop)
    dump = await export(source)
    assert of(dump, "deployment") == [{"name": "issuer", "value": "https://a"}]

    await on_store(target, lambda conn: conn.execute("DROP TABLE IF EXISTS deployment"))
    assert not [r for r in rows(await export(target)) if r.get("table") == "deployment"]
    with pytest.raises(TransferError, match="no table 'deployment'"):
        await load(target, dump)


async def test_the_dumps_current_keys_stay_current_over_a_started_target(tmp_path: Path) -> None:
    """Authly was started once on the new database (it generated keys, no users):
    after the import the moved deployment's keys sign, the target's are retired."""
    source, target = sqlite_url(tmp_path, "a.db"), sqlite_url(tmp_path, "b.db")
    for url in (source, target):
        async with running_app(make_settings(tmp_path, database_url=url, admin_password=None)):
            pass
    await _small_store(source, "alice")
    dump = await export(source)
    ours = {k["kid"] for k in of(dump, "signing_keys")}
    await load(target, dump)
    keys = await on_store(target, key_repo.list_all)
    assert {k.kid for k in keys if k.retired_at is None} == ours
    assert len(keys) == 2 * len(ours)
