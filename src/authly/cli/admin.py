"""`authly admin`: local user administration against the configured database
(`user create`), and the admin API over HTTP (cli/admin_remote.py)."""

from __future__ import annotations

import sys
import time

import click
import trio

from authly.cli.admin_remote import COMMANDS
from authly.cli.common import load_settings, read_credentials
from authly.config import Settings
from authly.lifecycle import make_hasher
from authly.store import users as user_repo
from authly.store.db import open_database
from authly.store.users import User, UsernameTaken


@click.group()
def admin() -> None:
    """Administration commands.

    `user create` works on the configured database directly; the others talk to a
    running server (--url or AUTHLY_URL) after `authly admin login`.
    """


@admin.group()
def user() -> None:
    """Manage users in the configured database."""


async def _create_user(
    settings: Settings, username: str, password: str, email: str | None, is_admin: bool
) -> User | None:
    hasher = make_hasher(settings)
    password_hash = await hasher.hash(password)
    created: User | None = None
    async with trio.open_nursery() as nursery:
        db = await open_database(nursery, settings.sqlite_path)
        try:
            created = await db.run(
                user_repo.create, username, password_hash, email, is_admin, time.time()
            )
        except UsernameTaken:
            created = None  # reported by the caller; raising here would be wrapped
        finally:
            db.close()
    return created


@user.command("create")
@click.option("--username", required=True)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.option("--email", default=None)
@click.option("--admin/--no-admin", "is_admin", default=False, help="Grant the admin scope.")
def create_user(username: str, password_stdin: bool, email: str | None, is_admin: bool) -> None:
    """Create a user (argon2id-hashed password)."""
    settings = load_settings()
    username, password = read_credentials(username, password_stdin, min_password=8, confirm=True)
    created = trio.run(_create_user, settings, username, password, email, is_admin)
    if created is None:
        click.echo(f"authly: user {username!r} already exists", err=True)
        sys.exit(1)
    click.echo(f"created user {created.username} ({created.id})")


for _command in COMMANDS:
    admin.add_command(_command)
