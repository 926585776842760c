"""The `authly` group: check-config here, serve (cli/serve.py) and admin (cli/admin.py)."""

from __future__ import annotations

import click

from authly import __version__
from authly.cli.admin import admin
from authly.cli.common import load_settings
from authly.cli.serve import serve


@click.group()
@click.version_option(__version__, prog_name="authly")
def main() -> None:
    """Authly: a self-hosted OAuth 2.1 + OpenID Connect authorization server."""


@main.command("check-config")
def check_config() -> None:
    """Print the effective settings (secrets masked) and exit 0 if they are valid."""
    settings = load_settings()
    for name, value in settings.effective().items():
        click.echo(f"{name}={value}")


main.add_command(serve)
main.add_command(admin)
