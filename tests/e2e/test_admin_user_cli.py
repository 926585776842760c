"""`authly admin user ...` against a real server: create (local), list, show, update,
sessions, revoke-sessions, reset-password, disable, enable, delete."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.e2e.server import authly_env, login, refresh, run_cli
from tests.e2e.test_admin_cli import Cli, Spawn
from tests.support.processes import ServerProcess

pytestmark = pytest.mark.e2e

PASSWORD = "alice-password-1"
NEW_PASSWORD = "alice-password-2"


@pytest.fixture
def server(spawn: Spawn) -> ServerProcess:
    started = spawn()
    started.wait_healthy()
    return started


def test_admin_user_cli(server: ServerProcess, tmp_path: Path, http: httpx.Client) -> None:
    created = run_cli(
        ("admin", "user", "create", "--username", "alice", "--password-stdin",
         "--email", "alice@example.com", "--name", "Alice Liddell"),
        authly_env(tmp_path / "authly.db"), tmp_path, stdin=PASSWORD,
    )  # fmt: skip
    assert created.returncode == 0, created
    assert "created user alice" in created.stdout
    bad = run_cli(
        ("admin", "user", "create", "--username", "bob", "--password-stdin", "--email", "bob"),
        authly_env(tmp_path / "authly.db"), tmp_path, stdin=PASSWORD,
    )  # fmt: skip
    assert bad.returncode == 2
    assert "email" in bad.stderr

    cli = Cli(tmp_path, server.base_url)
    cli.login()

    # list: a table with a footer, JSON pages, search.
    table = cli.ok("user", "list").splitlines()
    assert table[0].split() == ["ID", "USERNAME", "EMAIL", "NAME", "ADMIN", "ACTIVE"]
    assert [line.split()[1] for line in table[1:-1]] == ["admin", "alice"]
    assert table[-1] == "2 of 2 users"
    page = cli.json("user", "list", "--limit", "1")
    assert [u["username"] for u in page["users"]] == ["admin"]
    assert page["next_offset"] == 1
    assert "next page: --offset 1" in cli.ok("user", "list", "--limit", "1")
    found = cli.json("user", "list", "--search", "liddell")
    assert [u["username"] for u in found["users"]] == ["alice"]

    # show and update.
    alice = cli.json("user", "show", "alice")
    assert alice["name"] == "Alice Liddell"
    assert alice["email"] == "alice@example.com"
    updated = cli.json(
        "user", "update", "alice", "--set", "given_name=Alice", "--set", "locale=en-GB",
        "--set", "email_verified=true", "--set", 'address={"locality": "Oxford"}',
        "--unset", "name",
    )  # fmt: skip
    assert updated["given_name"] == "Alice"
    assert updated["email_verified"] is True
    assert updated["address"] == {"locality": "Oxford"}
    assert updated["name"] is None
    assert "locale" in cli.fails("user", "update", "alice", "--set", "locale=no such locale")
    assert "given_name:" in cli.ok("user", "show", alice["id"])

    # sessions and revoke-sessions.
    tokens = login(http, server.base_url, "alice", PASSWORD).json()
    sessions = cli.json("user", "sessions", "alice")["sessions"]
    assert [s["client_id"] for s in sessions] == ["authly"]
    assert sessions[0]["ip"] == "127.0.0.1"
    assert cli.ok("user", "sessions", "alice").splitlines()[0].split()[:2] == [
        "SESSION",
        "CLIENT",
    ]
    assert "Revoked 1 session(s)" in cli.ok("user", "revoke-sessions", "alice")
    assert refresh(http, server.base_url, tokens["refresh_token"]).status_code == 400

    # reset-password from stdin.
    out = cli.ok("user", "reset-password", "alice", "--password-stdin", stdin=NEW_PASSWORD)
    assert "reset" in out
    assert login(http, server.base_url, "alice", PASSWORD).status_code == 401
    assert login(http, server.base_url, "alice", NEW_PASSWORD).status_code == 200

    # disable, enable, delete.
    assert "Disabled user alice" in cli.ok("user", "disable", "alice")
    assert login(http, server.base_url, "alice", NEW_PASSWORD).status_code == 401
    assert cli.json("user", "enable", "alice")["is_active"] is True
    assert login(http, server.base_url, "alice", NEW_PASSWORD).status_code == 200
    assert "cannot delete your own" in cli.fails("user", "delete", "admin", "--yes")
    assert cli.json("user", "delete", "alice", "--yes") == {"deleted": "alice"}
    assert "No such user" in cli.fails("user", "show", "alice")
