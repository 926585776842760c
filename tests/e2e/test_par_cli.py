"""`authly admin client create|update --require-par` against a real server (RFC 9126 §6)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.oauth_support import Spawn
from tests.e2e.test_admin_cli import Cli
from tests.support.processes import ServerProcess

pytestmark = pytest.mark.e2e

CALLBACK = "https://app.example/callback"


@pytest.fixture
def server(spawn: Spawn) -> ServerProcess:
    started = spawn()
    started.wait_healthy()
    return started


def test_the_require_par_flag(server: ServerProcess, tmp_path: Path) -> None:
    cli = Cli(tmp_path, server.base_url)
    cli.login()
    created = cli.json(
        "client", "create", "--name", "Web", "--confidential", "--redirect-uri", CALLBACK,
        "--require-par",
    )  # fmt: skip
    assert created["require_pushed_authorization_requests"] is True
    client_id = created["client_id"]
    assert "pushed requests:     required" in cli.ok("client", "show", client_id)
    updated = cli.json("client", "update", client_id, "--no-require-par")
    assert updated["require_pushed_authorization_requests"] is False
    assert "pushed requests:     optional" in cli.ok("client", "show", client_id)
    # Other updates leave it alone.
    cli.ok("client", "update", client_id, "--require-par")
    assert (
        cli.json("client", "update", client_id, "--name", "Web 2")[
            "require_pushed_authorization_requests"
        ]
        is True
    )
    plain = cli.json("client", "create", "--name", "Plain", "--public", "--redirect-uri", CALLBACK)
    assert plain["require_pushed_authorization_requests"] is False
    line = cli.fails(
        "client", "create", "--name", "Svc", "--confidential",
        "--grant-type", "client_credentials", "--require-par",
    )  # fmt: skip
    assert line == "authly: require_pushed_authorization_requests needs authorization_code."
