"""`authly admin`: local administration against the configured database (`user create`,
and `db migrate|export|import` in cli/admin_db.py), and the admin API over HTTP
(cli/admin_remote.py)."""

from __future__ import annotations

import sys
import time

import click
import trio

from authly.cli.admin_backends import backends
from authly.cli.admin_db import db
from authly.cli.admin_initial_tokens import initial_token
from authly.cli.admin_keys import keys
from authly.cli.admin_remote import COMMANDS
from authly.cli.admin_resources import resource
from authly.cli.admin_scopes import scope
from authly.cli.admin_users import COMMANDS as USER_COMMANDS
from authly.cli.common import load_settings, read_credentials
from authly.config import Settings
from authly.errors import InvalidRequest
from authly.lifecycle import make_hasher
from authly.store import users as user_repo
from authly.store.db import open_database
from authly.store.users import User, UsernameTaken
from authly.users.profile_fields import parse_changes


@click.group()
def admin() -> None:
    """Administration commands.

    `user create` and `db ...` work on the configured database directly; the others
    talk to a running server (--url or AUTHLY_URL) after `authly admin login`.
    """


@admin.group()
def user() -> None:
    """Manage users: `create` on the configured database, the rest on the server."""


async def _create_user(
    settings: Settings,
    username: str,
    password: str,
    email: str | None,
    is_admin: bool,
    name: str | None = None,
) -> User | None:
    hasher = make_hasher(settings)
    password_hash = await hasher.hash(password)
    created: User | None = None
    async with trio.open_nursery() as nursery:
        db = await open_database(
            nursery, settings.database_url, pool_size=settings.database_pool_size
        )
        try:
            now = time.time()
            created = await db.run(user_repo.create, username, password_hash, email, is_admin, now)
            if name is not None:
                changes = {"name": name}
                created = await db.run(user_repo.update_attributes, created.id, changes, now)
        except UsernameTaken:
            created = None  # reported by the caller; raising here would be wrapped
        finally:
            db.close()
    return created


@user.command("create")
@click.option("--username", required=True)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.option("--email", default=None)
@click.option("--name", default=None, help="Full name (the OpenID Connect name claim).")
@click.option("--admin/--no-admin", "is_admin", default=False, help="Grant the admin scope.")
def create_user(
    username: str, password_stdin: bool, email: str | None, name: str | None, is_admin: bool
) -> None:
    """Create a user (argon2id-hashed password)."""
    settings = load_settings()
    try:
        parse_changes({"email": email, "name": name})
    except InvalidRequest as exc:
        raise click.UsageError(exc.description) from None
    username, password = read_credentials(username, password_stdin, min_password=8, confirm=True)
    created = trio.run(_create_user, settings, username, password, email, is_admin, name)
    if created is None:
        click.echo(f"authly: user {username!r} already exists", err=True)
        sys.exit(1)
    click.echo(f"created user {created.username} ({created.id})")


for _command in COMMANDS:
    admin.add_command(_command)
for _command in USER_COMMANDS:
    user.add_command(_command)
admin.add_command(scope)
admin.add_command(resource)
admin.add_command(keys)
admin.add_command(initial_token)
admin.add_command(backends)
admin.add_command(db)
