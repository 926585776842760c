"""`authly admin initial-token create|list|revoke`: the initial access tokens that let
developers register clients while ``AUTHLY_REGISTRATION=token`` (RFC 7591 §3), over the
admin API (`/api/v1/admin/initial-access-tokens`).

Same conventions as the other remote admin commands (cli/admin_remote.py): ``--url`` or
``AUTHLY_URL``, a table (or fields) by default and JSON with ``--json``, failures as one
line on stderr and exit status 1.
"""

from __future__ import annotations

import re
import time
from typing import Any

import click

from authly.cli.admin_remote import remote_options
from authly.cli.remote import Remote, path_segment, print_fields, print_json, print_table

_DURATION = re.compile(r"^([1-9][0-9]{0,8})([smhd]?)$")
_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86_400}


def parse_duration(text: str) -> int:
    """Seconds from ``90``, ``90s``, ``30m``, ``24h`` or ``7d``."""
    match = _DURATION.match(text.strip().lower())
    if match is None:
        raise click.BadParameter(
            "must be a whole number of seconds, or one with s, m, h or d (e.g. 24h, 7d)",
            param_hint="--expires-in",
        )
    return int(match.group(1)) * _UNIT[match.group(2)]


def _when(value: Any) -> str:
    if not isinstance(value, int | float):
        return "never"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(value))


def _uses(token: dict[str, Any]) -> str:
    limit = token.get("max_uses")
    return f"{token.get('uses', 0)}/{limit if limit is not None else 'unlimited'}"


@click.group("initial-token")
def initial_token() -> None:
    """Initial access tokens for dynamic client registration (AUTHLY_REGISTRATION=token)."""


@initial_token.command("create")
@click.option("--description", default="", help="What the token is for (shown by list).")
@click.option("--expires-in", default=None, help="Lifetime: seconds, or e.g. 30m, 24h, 7d.")
@click.option("--max-uses", type=click.IntRange(1), default=None, help="Registrations allowed.")
@click.option("--single-use", is_flag=True, help="The same as --max-uses 1.")
@remote_options
def create(
    description: str,
    expires_in: str | None,
    max_uses: int | None,
    single_use: bool,
    url: str,
    as_json: bool,
) -> None:
    """Create a token; it is printed only now (the server keeps its hash)."""
    if single_use:
        if max_uses not in (None, 1):
            raise click.UsageError("--single-use and --max-uses N (N > 1) contradict each other")
        max_uses = 1
    body: dict[str, Any] = {"description": description, "max_uses": max_uses}
    if expires_in is not None:
        body["expires_in"] = parse_duration(expires_in)
    created = Remote(url).call("POST", "/initial-access-tokens", body=body)
    if as_json:
        print_json(created)
        return
    print_fields(
        [
            ("id", str(created["id"])),
            ("description", str(created["description"]) or "-"),
            ("expires", _when(created.get("expires_at"))),
            ("uses", _uses(created)),
            ("token", str(created["token"])),
        ]
    )
    click.echo("The token is shown only now: hand it over safely.", err=True)


@initial_token.command("list")
@remote_options
def list_tokens(url: str, as_json: bool) -> None:
    """List the tokens (never the tokens themselves) with their status."""
    found = Remote(url).call("GET", "/initial-access-tokens")["initial_access_tokens"]
    if as_json:
        print_json(found)
        return
    rows = [
        [
            str(t["id"]),
            str(t["status"]),
            _uses(t),
            _when(t.get("expires_at")),
            str(t.get("created_by") or "-"),
            str(t["description"]) or "-",
        ]
        for t in found
    ]
    print_table(["ID", "STATUS", "USES", "EXPIRES", "CREATED BY", "DESCRIPTION"], rows)


@initial_token.command("revoke")
@click.argument("token_id")
@remote_options
def revoke(token_id: str, url: str, as_json: bool) -> None:
    """Revoke a token by id: it registers nothing more (clients it registered stay)."""
    Remote(url).call("DELETE", f"/initial-access-tokens/{path_segment(token_id)}")
    if as_json:
        print_json({"revoked": token_id})
    else:
        click.echo(f"Revoked initial access token {token_id}.")
