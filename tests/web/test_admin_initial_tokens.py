"""The admin API for initial access tokens (/api/v1/admin/initial-access-tokens): behind
the admin API's network and credential checks; created (token shown once), listed,
revoked."""

from __future__ import annotations

from typing import Any

import click
import pytest
from click.testing import CliRunner

from authly.cli.admin import admin as admin_command
from authly.cli.admin_initial_tokens import parse_duration
from tests.conftest import services_of
from tests.web.admin_client import AdminClient
from tests.web.dcr_support import INITIAL_TOKENS, admin, register
from tests.web.helpers import error_body, json_of


@pytest.fixture
async def operator(token_app: Any) -> AdminClient:
    return await admin(token_app.test_client())


async def test_create_list_revoke(token_app: Any, operator: AdminClient):
    response = await operator.post(
        INITIAL_TOKENS, json={"description": "partner X", "expires_in": 3600, "max_uses": 2}
    )
    created = await json_of(response, 201)
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Location"] == f"{INITIAL_TOKENS}/{created['id']}"
    token = created.pop("token")
    assert token.startswith("init_")
    assert created["description"] == "partner X"
    assert created["status"] == "active"
    assert created["max_uses"] == 2
    assert created["uses"] == 0
    assert created["created_by"] == "admin"
    assert created["expires_at"] - created["created_at"] == 3600

    await json_of(await register(token_app.test_client(), token=token), 201)
    listed = await json_of(await operator.get(INITIAL_TOKENS))
    assert listed == {"initial_access_tokens": [{**created, "uses": 1}]}
    assert token not in str(listed)

    response = await operator.delete(f"{INITIAL_TOKENS}/{created['id']}")
    assert response.status_code == 204
    assert await json_of(await operator.get(INITIAL_TOKENS)) == {"initial_access_tokens": []}
    response = await register(token_app.test_client(), token=token)
    assert (await error_body(response, 401))["error"] == "invalid_token"
    response = await operator.delete(f"{INITIAL_TOKENS}/{created['id']}")
    assert (await error_body(response, 404))["error"] == "not_found"


async def test_create_without_a_body(operator: AdminClient):
    created = await json_of(await operator.post(INITIAL_TOKENS), 201)
    assert created["expires_at"] is None
    assert created["max_uses"] is None
    assert created["description"] == ""


async def test_only_the_hash_is_stored(token_app: Any, operator: AdminClient):
    created = await json_of(await operator.post(INITIAL_TOKENS, json={}), 201)

    def rows(conn: Any) -> list[Any]:
        return [tuple(r) for r in conn.execute("SELECT * FROM initial_access_tokens")]

    stored = await services_of(token_app).db.run(rows)
    assert len(stored) == 1
    assert created["token"] not in str(stored)


@pytest.mark.parametrize(
    "body",
    [
        {"expires_in": 10},
        {"expires_in": "1h"},
        {"max_uses": 0},
        {"max_uses": 1.5},
        {"description": 5},
        {"scope": "x"},
    ],
)
async def test_bad_bodies_are_400(operator: AdminClient, body: dict[str, Any]):
    response = await operator.post(INITIAL_TOKENS, json=body)
    assert (await error_body(response, 400))["error"] == "invalid_request"


async def test_needs_an_admin_credential_and_address(token_app: Any):
    client = token_app.test_client()
    anonymous = AdminClient(client, None)
    assert (await error_body(await anonymous.get(INITIAL_TOKENS), 401))["error"] == "invalid_token"
    stranger = AdminClient(client, None, address="203.0.113.9")
    response = await stranger.post(INITIAL_TOKENS, json={})
    assert (await error_body(response, 403))["error"] == "access_denied"
    forged = AdminClient(client, "aas_forged")
    response = await forged.post(INITIAL_TOKENS, json={})
    assert (await error_body(response, 401))["error"] == "invalid_token"


# --- the CLI's own parsing (no server needed) -------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90), ("90s", 90), ("30m", 1800), ("24h", 86400), ("7D", 604800)]
)
def test_cli_durations(text: str, seconds: int):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "0", "-5", "1.5h", "1w", "h", "10 d"])
def test_cli_bad_durations(text: str):
    with pytest.raises(click.BadParameter):
        parse_duration(text)


def test_cli_single_use_and_max_uses_contradict(tmp_path: Any):
    runner = CliRunner()
    result = runner.invoke(
        admin_command,
        ["initial-token", "create", "--single-use", "--max-uses", "3"],
        env={"XDG_CONFIG_HOME": str(tmp_path)},
    )
    assert result.exit_code == 2
    assert "contradict" in result.output
