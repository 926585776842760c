"""`authly admin` against a real server: login, status, clients, scopes, logout."""

from __future__ import annotations

import json
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.server import ADMIN_PASSWORD, authly_env, run_cli
from tests.support.processes import ServerProcess, free_port

pytestmark = pytest.mark.e2e

Spawn = Callable[..., ServerProcess]


class Cli:
    """`python -m authly admin ...` with its own config dir, against one server URL."""

    def __init__(self, tmp_path: Path, url: str) -> None:
        self.cwd = tmp_path
        self.config = tmp_path / "config"
        self.env = authly_env(tmp_path / "cli-unused.db", AUTHLY_URL=url)
        self.env["XDG_CONFIG_HOME"] = str(self.config)
        self.env["HOME"] = str(tmp_path / "home")

    @property
    def session_file(self) -> Path:
        return self.config / "authly" / "admin-sessions.json"

    def run(self, *args: str, stdin: str | None = None) -> Any:
        return run_cli(("admin", *args), self.env, self.cwd, stdin=stdin)

    def ok(self, *args: str, stdin: str | None = None) -> str:
        result = self.run(*args, stdin=stdin)
        assert result.returncode == 0, result
        assert "Traceback" not in result.stderr, result.stderr
        return str(result.stdout)

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--json"))

    def fails(self, *args: str, stdin: str | None = None) -> str:
        """The single stderr line of a command that must exit 1."""
        result = self.run(*args, stdin=stdin)
        assert result.returncode == 1, result
        assert "Traceback" not in result.stderr, result.stderr
        lines = result.stderr.splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith("authly: "), result.stderr
        return str(lines[0])

    def login(self) -> str:
        return self.ok("login", "--username", "admin", "--password-stdin", stdin=ADMIN_PASSWORD)


@pytest.fixture
def server(spawn: Spawn) -> ServerProcess:
    started = spawn()
    started.wait_healthy()
    return started


def _token(http: httpx.Client, server: ServerProcess, client_id: str, secret: str) -> Any:
    return http.post(
        server.url("/api/v1/oauth/token"),
        data={"grant_type": "client_credentials", "scope": "reports:read"},
        auth=(client_id, secret),
    )


def test_admin_cli_end_to_end(server: ServerProcess, tmp_path: Path, http: httpx.Client) -> None:
    cli = Cli(tmp_path, server.base_url)
    assert "not logged in" in cli.fails("status")

    # login --password-stdin: only an opaque handle is kept, in a 0600 file.
    out = cli.login()
    assert "Logged in" in out
    assert stat.S_IMODE(cli.session_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(cli.session_file.parent.stat().st_mode) == 0o700
    stored = json.loads(cli.session_file.read_text())["sessions"]
    handle = stored[server.base_url]
    assert handle.startswith("aas_")
    assert ADMIN_PASSWORD not in cli.session_file.read_text()

    assert "admin" in cli.ok("status")
    status = cli.json("status")
    assert status["auth"] == "session"
    assert status["user"]["username"] == "admin"
    assert status["url"] == server.base_url

    # Scopes.
    created = cli.json("scope", "create", "reports:read", "--description", "Read reports")
    assert created == {"name": "reports:read", "description": "Read reports", "default": False}
    table = cli.ok("scope", "list")
    assert table.splitlines()[0].split() == ["NAME", "DEFAULT", "DESCRIPTION"]
    assert any(line.startswith("reports:read ") for line in table.splitlines())
    assert "reports:read" in [s["name"] for s in cli.json("scope", "list")]
    assert "already exists" in cli.fails(
        "scope", "create", "reports:read", "--description", "again"
    )

    # A confidential client: the secret is printed once and works.
    service = cli.json(
        "client", "create", "--name", "Billing", "--confidential",
        "--auth-method", "client_secret_basic", "--grant-type", "client_credentials",
        "--scope", "reports:read",
    )  # fmt: skip
    client_id, secret = service["client_id"], service["client_secret"]
    response = _token(http, server, client_id, secret)
    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "reports:read"

    # A public client: no secret.
    spa = cli.json(
        "client", "create", "--name", "SPA", "--public",
        "--redirect-uri", "https://spa.example/cb", "--redirect-uri", "http://127.0.0.1/cb",
        "--grant-type", "authorization_code", "--scope", "profile", "--first-party",
    )  # fmt: skip
    assert "client_secret" not in spa
    assert spa["client_type"] == "public"
    assert spa["redirect_uris"] == ["https://spa.example/cb", "http://127.0.0.1/cb"]
    assert spa["first_party"] is True

    # list (table and JSON), show.
    table = cli.ok("client", "list").splitlines()
    assert table[0].split()[:2] == ["CLIENT", "ID"]
    assert {line.split()[0] for line in table[1:]} == {"authly", client_id, spa["client_id"]}
    listed = cli.json("client", "list")
    assert {c["client_id"] for c in listed} == {"authly", client_id, spa["client_id"]}
    assert secret not in json.dumps(listed)
    shown = cli.json("client", "show", client_id)
    assert shown["name"] == "Billing"
    assert "client_secret" not in shown
    assert "Billing" in cli.ok("client", "show", client_id)

    # update.
    updated = cli.json("client", "update", client_id, "--name", "Billing v2")
    assert updated["name"] == "Billing v2"
    assert updated["grant_types"] == ["client_credentials"]
    assert "redirect URI" in cli.fails(
        "client", "update", spa["client_id"], "--grant-type", "authorization_code",
        "--redirect-uri", "https://x.example/#fragment",
    )  # fmt: skip

    # rotate-secret: the old secret stops working, the new one works.
    rotated = cli.json("client", "rotate-secret", client_id)
    assert rotated["client_id"] == client_id
    new_secret = rotated["client_secret"]
    assert new_secret != secret
    assert _token(http, server, client_id, secret).status_code == 401
    assert _token(http, server, client_id, new_secret).status_code == 200
    assert "no secret" in cli.fails("client", "rotate-secret", spa["client_id"])

    # A scope in use cannot be deleted; delete the client, then the scope.
    assert client_id in cli.fails("scope", "delete", "reports:read", "--yes")
    assert "Deleted client" in cli.ok("client", "delete", client_id, "--yes")
    assert "No client" in cli.fails("client", "show", client_id)
    assert _token(http, server, client_id, new_secret).status_code == 401
    assert cli.json("scope", "delete", "reports:read", "--yes") == {"deleted": "reports:read"}
    assert "reports:read" not in [s["name"] for s in cli.json("scope", "list")]

    # logout ends the session on the server too.
    assert "Logged out" in cli.ok("logout")
    assert server.base_url not in json.loads(cli.session_file.read_text())["sessions"]
    assert "not logged in" in cli.fails("status")
    replay = http.get(
        server.url("/api/v1/admin/session"), headers={"Authorization": f"Bearer {handle}"}
    )
    assert replay.status_code == 401
    assert "Not logged in" in cli.ok("logout")
    # No secret reached the server's logs.
    server.stop()
    logs = server.stdout() + server.stderr()
    for value in (ADMIN_PASSWORD, handle, secret, new_secret):
        assert value not in logs


def test_admin_cli_human_create_prints_the_secret_once(
    server: ServerProcess, tmp_path: Path
) -> None:
    cli = Cli(tmp_path, server.base_url)
    cli.login()
    result = cli.run(
        "client", "create", "--name", "Reports", "--confidential",
        "--grant-type", "client_credentials",
    )  # fmt: skip
    assert result.returncode == 0, result
    fields = dict(line.split(":", 1) for line in result.stdout.splitlines())
    assert fields["client_secret"].strip()
    assert "shown only now" in result.stderr
    shown = cli.ok("client", "show", fields["client_id"].strip())
    assert fields["client_secret"].strip() not in shown
    assert not [line for line in shown.splitlines() if line.startswith("client_secret:")]


def test_admin_cli_login_failures_are_one_line(
    spawn: Spawn, server: ServerProcess, tmp_path: Path
) -> None:
    cli = Cli(tmp_path, server.base_url)
    wrong = cli.fails("login", "--username", "admin", "--password-stdin", stdin="wrong-pass\n")
    assert "Invalid username or password" in wrong
    assert not cli.session_file.exists()

    closed = f"http://127.0.0.1:{free_port()}"
    refused = cli.fails(
        "login", "--url", closed, "--username", "admin", "--password-stdin", stdin=ADMIN_PASSWORD
    )
    assert "cannot connect" in refused
    assert closed in refused

    # Loopback is not in the allowed networks of this server.
    env = authly_env(
        tmp_path / "restricted.db", AUTHLY_ADMIN_ALLOWED_NETWORKS="10.0.0.0/8,192.168.0.0/16"
    )
    restricted = spawn(env=env, name="restricted")
    restricted.wait_healthy()
    denied = cli.fails(
        "login", "--url", restricted.base_url, "--username", "admin", "--password-stdin",
        stdin=ADMIN_PASSWORD,
    )  # fmt: skip
    assert "not reachable from this address" in denied


def test_admin_cli_usage_errors(server: ServerProcess, tmp_path: Path) -> None:
    cli = Cli(tmp_path, server.base_url)
    cli.login()
    result = cli.run("client", "create", "--name", "x")
    assert result.returncode == 2
    assert "--public or --confidential" in result.stderr
    result = cli.run("client", "update", "authly")
    assert result.returncode == 2
    assert "nothing to change" in result.stderr
    result = cli.run("client", "list", "--url", "ftp://example")
    assert result.returncode == 2
    # Without --yes and without a terminal, delete asks, reads no answer and aborts.
    result = cli.run("client", "delete", "authly")
    assert result.returncode == 1
    assert "authly" in [c["client_id"] for c in cli.json("client", "list")]
