"""`authly admin keys list|rotate` against a real server."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.e2e.server import ADMIN_PASSWORD
from tests.e2e.test_admin_cli import Cli
from tests.support.processes import ServerProcess

pytestmark = pytest.mark.e2e

Spawn = Callable[..., ServerProcess]


def _jwks_kids(http: httpx.Client, server: ServerProcess) -> set[str]:
    response = http.get(server.url("/.well-known/jwks.json"))
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "public, max-age=300"
    return {k["kid"] for k in response.json()["keys"]}


def test_admin_keys_list_and_rotate(spawn: Spawn, tmp_path: Path, http: httpx.Client) -> None:
    server = spawn()
    server.wait_healthy()
    cli = Cli(tmp_path, server.base_url)
    assert "not logged in" in cli.fails("keys", "list")
    cli.login()

    keys = cli.json("keys", "list")
    assert sorted(k["alg"] for k in keys) == ["ES256", "EdDSA", "RS256"]
    assert {k["status"] for k in keys} == {"current"}
    table = cli.ok("keys", "list").splitlines()
    assert table[0].split() == ["KID", "ALG", "STATUS", "CREATED", "RETIRED", "PUBLISHED", "UNTIL"]
    assert len(table) == 4
    old_rs256 = next(k["kid"] for k in keys if k["alg"] == "RS256")
    old_es256 = next(k["kid"] for k in keys if k["alg"] == "ES256")

    rotated = cli.json("keys", "rotate")  # RS256 by default
    assert (rotated["alg"], rotated["status"]) == ("RS256", "current")
    human = cli.ok("keys", "rotate", "--alg", "ES256")
    assert "alg:" in human
    assert "ES256" in human
    new_es256 = human.split("kid:")[1].split()[0]

    listed = {k["kid"]: k for k in cli.json("keys", "list")}
    assert listed[old_rs256]["status"] == "retired"
    assert listed[old_es256]["status"] == "retired"
    assert listed[rotated["kid"]]["status"] == "current"
    assert listed[new_es256]["status"] == "current"
    assert {old_rs256, old_es256, rotated["kid"], new_es256} <= _jwks_kids(http, server)

    # A token the server signs now verifies with the new RS256 key's kid.
    response = http.post(
        server.url("/api/v1/auth/login"), json={"username": "admin", "password": ADMIN_PASSWORD}
    )
    assert response.status_code == 200, response.text
    header = response.json()["access_token"].split(".")[0]
    assert (
        json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"]
        == (rotated["kid"])
    )

    result = cli.run("keys", "rotate", "--alg", "HS256")
    assert result.returncode == 2  # click's usage error: not one of the choices
    assert "HS256" in result.stderr
