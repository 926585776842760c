"""`authly admin user list|show|update|disable|enable|delete|reset-password|sessions|
revoke-sessions`: users through the admin API (`/api/v1/admin/users`).

A user is named by id or username. Output is a table (or fields) by default and JSON
with ``--json``; failures are one line on stderr and exit status 1 (cli/remote.py).
"""

from __future__ import annotations

import datetime
import json
from typing import Any
from urllib.parse import urlencode

import click

from authly.cli.admin_remote import remote_options
from authly.cli.common import read_password
from authly.cli.remote import Remote, path_segment, print_fields, print_json, print_table
from authly.users.profile_fields import BOOLEAN_FIELDS, FIELDS

MIN_PASSWORD = 8


def _path(ref: str, suffix: str = "") -> str:
    return f"/users/{path_segment(ref)}{suffix}"


def _when(seconds: Any) -> str:
    if not isinstance(seconds, int | float):
        return "-"
    moment = datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%SZ")


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _show_user(user: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(user)
        return
    pairs = [
        ("id", user["id"]),
        ("username", user["username"]),
        ("admin", _text(user.get("is_admin"))),
        ("active", _text(user.get("is_active"))),
        ("created", _when(user.get("created_at"))),
        ("updated", _when(user.get("updated_at"))),
    ]
    skip = {"id", "username", "is_admin", "is_active", "created_at", "updated_at"}
    pairs += [(name, _text(value)) for name, value in user.items() if name not in skip]
    print_fields(pairs)


@click.command("list")
@click.option("--search", default=None, help="Part of the username, email or name.")
@click.option("--limit", type=click.IntRange(1, 200), default=50, show_default=True)
@click.option("--offset", type=click.IntRange(0), default=0, show_default=True)
@remote_options
def user_list(search: str | None, limit: int, offset: int, url: str, as_json: bool) -> None:
    """List users, oldest first, one page at a time."""
    query: dict[str, str] = {"limit": str(limit), "offset": str(offset)}
    if search:
        query["search"] = search
    answer = Remote(url).call("GET", f"/users?{urlencode(query)}")
    if as_json:
        print_json(answer)
        return
    rows = [
        [
            str(u["id"]),
            str(u["username"]),
            _text(u.get("email")),
            _text(u.get("name")),
            _text(u.get("is_admin")),
            _text(u.get("is_active")),
        ]
        for u in answer["users"]
    ]
    print_table(["ID", "USERNAME", "EMAIL", "NAME", "ADMIN", "ACTIVE"], rows)
    shown = len(answer["users"])
    footer = f"{shown} of {answer['total']} users"
    if answer.get("next_offset") is not None:
        footer += f"; next page: --offset {answer['next_offset']}"
    click.echo(footer)


@click.command("show")
@click.argument("user")
@remote_options
def user_show(user: str, url: str, as_json: bool) -> None:
    """Show one user (by id or username)."""
    _show_user(Remote(url).call("GET", _path(user)), as_json)


def _field_value(name: str, text: str) -> Any:
    if name in BOOLEAN_FIELDS:
        lowered = text.strip().lower()
        if lowered not in ("true", "false", "yes", "no", "1", "0"):
            raise click.BadParameter(f"{name} takes true or false", param_hint="--set")
        return lowered in ("true", "yes", "1")
    if name == "address":
        try:
            return json.loads(text)
        except ValueError:
            raise click.BadParameter(
                'address takes a JSON object, e.g. {"locality": "Paris"}', param_hint="--set"
            ) from None
    return text


@click.command("update")
@click.argument("user")
@click.option("--set", "assignments", multiple=True, metavar="FIELD=VALUE", help="Repeatable.")
@click.option("--unset", "unsets", multiple=True, metavar="FIELD", help="Clear a field.")
@click.option("--name", default=None, help="Same as --set name=VALUE.")
@click.option("--email", default=None, help="Same as --set email=VALUE.")
@remote_options
def user_update(
    user: str,
    assignments: tuple[str, ...],
    unsets: tuple[str, ...],
    name: str | None,
    email: str | None,
    url: str,
    as_json: bool,
) -> None:
    """Set profile fields (OIDC Core §5.1), e.g. --set given_name=Ada --set locale=en-GB.

    Booleans (email_verified, phone_number_verified) take true/false; address takes a
    JSON object. Changing email or phone_number resets its *_verified flag unless it is
    set in the same command.
    """
    body: dict[str, Any] = {}
    for assignment in assignments:
        field, sep, value = assignment.partition("=")
        if not sep or field not in FIELDS:
            raise click.BadParameter(
                f"{assignment!r}: expected FIELD=VALUE with FIELD one of "
                + ", ".join(sorted(FIELDS)),
                param_hint="--set",
            )
        body[field] = _field_value(field, value)
    for field in unsets:
        if field not in FIELDS:
            raise click.BadParameter(f"unknown field {field!r}", param_hint="--unset")
        body[field] = None
    if name is not None:
        body["name"] = name
    if email is not None:
        body["email"] = email
    if not body:
        raise click.UsageError("nothing to change; see --help")
    _show_user(Remote(url).call("PATCH", _path(user), body=body), as_json)


@click.command("disable")
@click.argument("user")
@remote_options
def user_disable(user: str, url: str, as_json: bool) -> None:
    """Disable a user: their sessions end (as with revoke-sessions); no login until enabled."""
    answer = Remote(url).call("POST", _path(user, "/disable"))
    if as_json:
        print_json(answer)
    else:
        click.echo(f"Disabled user {answer['username']} ({answer['id']}).")


@click.command("enable")
@click.argument("user")
@remote_options
def user_enable(user: str, url: str, as_json: bool) -> None:
    """Enable a disabled user again."""
    answer = Remote(url).call("POST", _path(user, "/enable"))
    if as_json:
        print_json(answer)
    else:
        click.echo(f"Enabled user {answer['username']} ({answer['id']}).")


@click.command("delete")
@click.argument("user")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@remote_options
def user_delete(user: str, yes: bool, url: str, as_json: bool) -> None:
    """Delete a user; their sessions and tokens stop working."""
    if not yes:
        click.confirm(f"Delete user {user}?", abort=True, err=True)
    Remote(url).call("DELETE", _path(user))
    if as_json:
        print_json({"deleted": user})
    else:
        click.echo(f"Deleted user {user}.")


@click.command("reset-password")
@click.argument("user")
@click.option("--password-stdin", is_flag=True, help="Read the new password from stdin.")
@remote_options
def user_reset_password(user: str, password_stdin: bool, url: str, as_json: bool) -> None:
    """Set a new password and end all of the user's sessions."""
    password = read_password(
        password_stdin, min_password=MIN_PASSWORD, confirm=True, prompt="New password"
    )
    answer = Remote(url).call("POST", _path(user, "/reset-password"), body={"password": password})
    if as_json:
        print_json(answer)
    else:
        click.echo(f"Password of {user} reset; {answer['sessions_revoked']} session(s) revoked.")


@click.command("sessions")
@click.argument("user")
@remote_options
def user_sessions(user: str, url: str, as_json: bool) -> None:
    """List the user's live login sessions (refresh-token families)."""
    answer = Remote(url).call("GET", _path(user, "/sessions"))
    if as_json:
        print_json(answer)
        return
    rows = [
        [
            str(s["session_id"]),
            str(s["client_id"]),
            _when(s.get("created_at")),
            _when(s.get("last_rotated_at")),
            _text(s.get("ip")),
        ]
        for s in answer["sessions"]
    ]
    print_table(["SESSION", "CLIENT", "CREATED", "LAST ROTATION", "IP"], rows)


@click.command("revoke-sessions")
@click.argument("user")
@remote_options
def user_revoke_sessions(user: str, url: str, as_json: bool) -> None:
    """End every session of the user (refresh tokens, browser and admin sessions)."""
    answer = Remote(url).call("DELETE", _path(user, "/sessions"))
    if as_json:
        print_json(answer)
    else:
        click.echo(f"Revoked {answer['sessions_revoked']} session(s) of {user}.")


COMMANDS = (
    user_list,
    user_show,
    user_update,
    user_disable,
    user_enable,
    user_delete,
    user_reset_password,
    user_sessions,
    user_revoke_sessions,
)
