"""`authly admin resource create|list|show|update|delete` against a real server."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from authly.resource_server import metadata_url
from tests.e2e.oauth_support import Spawn
from tests.e2e.test_admin_cli import Cli
from tests.support.processes import ServerProcess

pytestmark = pytest.mark.e2e

API = "https://api.example.com/v1"
ODD = "https://api.example.com/x/?tenant=a"  # a slash before the query, and a query


@pytest.fixture
def server(spawn: Spawn) -> ServerProcess:
    started = spawn()
    started.wait_healthy()
    return started


def test_resource_commands(server: ServerProcess, tmp_path: Path, http: httpx.Client) -> None:
    cli = Cli(tmp_path, server.base_url)
    cli.login()
    cli.json("scope", "create", "api:read", "--description", "Read the API")
    cli.json("scope", "create", "api:write", "--description", "Write the API")

    created = cli.json("resource", "create", API, "--name", "Reports API", "--scope", "api:read")
    assert created["resource"] == API
    assert created["scopes"] == ["api:read"]
    assert created["metadata_url"] == metadata_url(server.base_url, API)
    assert "Created resource" in cli.ok("resource", "create", ODD, "--name", "Odd")

    table = cli.ok("resource", "list")
    assert table.splitlines()[0].split() == ["RESOURCE", "NAME", "SCOPES"]
    assert API in table
    assert ODD in table
    shown = cli.ok("resource", "show", API)
    assert "name:" in shown
    assert "Reports API" in shown
    assert metadata_url(server.base_url, API) in shown
    assert cli.json("resource", "show", ODD)["resource"] == ODD

    updated = cli.json("resource", "update", API, "--scope", "api:read", "--scope", "api:write")
    assert updated["scopes"] == ["api:read", "api:write"]
    assert cli.json("resource", "update", API, "--name", "Reports v1")["name"] == "Reports v1"
    assert cli.json("resource", "update", API, "--clear-scopes")["scopes"] == []
    assert "nothing to change" in cli.fails("resource", "update", API)

    # The metadata the CLI points at is served.
    document = http.get(metadata_url(server.base_url, ODD)).json()
    assert document["resource"] == ODD
    assert document["resource_name"] == "Odd"

    assert "already registered" in cli.fails("resource", "create", API, "--name", "again")
    assert "fragment" in cli.fails("resource", "create", API + "#x", "--name", "x")
    assert "Unknown scope" in cli.fails(
        "resource", "create", API + "/2", "--name", "x", "--scope", "no"
    )
    assert cli.json("resource", "delete", API, "--yes") == {"deleted": API}
    assert "Deleted resource" in cli.ok("resource", "delete", ODD, "--yes")
    assert "No resource" in cli.fails("resource", "show", API)
    assert cli.json("resource", "list") == []
