from __future__ import annotations

import os
import sys
from typing import Any, NoReturn

import click

from authly import __version__
from authly.config import Settings
from authly.errors import ConfigError

EXIT_CONFIG = 2


def config_failure(exc: ConfigError) -> NoReturn:
    click.echo(f"authly: configuration error: {exc}", err=True)
    sys.exit(EXIT_CONFIG)


def load_settings(**overrides: Any) -> Settings:
    try:
        return Settings.from_env(os.environ, **overrides)
    except ConfigError as exc:
        config_failure(exc)


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


def _register() -> None:
    from authly.cli.admin import admin
    from authly.cli.serve import serve

    main.add_command(serve)
    main.add_command(admin)


_register()
