"""What every `authly` subcommand shares: building Settings once from the environment
(plus flags), failing with one line on a bad value, and reading credentials."""

from __future__ import annotations

import os
import sys
from typing import Any, NoReturn

import click

from authly.config import Settings
from authly.errors import ConfigError
from authly.users.login import MAX_PASSWORD, MAX_USERNAME

EXIT_CONFIG = 2


def config_failure(exc: ConfigError) -> NoReturn:
    click.echo(f"authly: configuration error: {exc}", err=True)
    sys.exit(EXIT_CONFIG)


def load_settings(**overrides: Any) -> Settings:
    try:
        return Settings.from_env(os.environ, **overrides)
    except ConfigError as exc:
        config_failure(exc)


def read_credentials(
    username: str, password_stdin: bool, *, min_password: int, confirm: bool
) -> tuple[str, str]:
    """A username (trimmed, bounded) and a password from stdin or a hidden prompt."""
    username = username.strip()
    if not 1 <= len(username) <= MAX_USERNAME:
        raise click.BadParameter(f"must be 1 to {MAX_USERNAME} characters", param_hint="username")
    return username, read_password(password_stdin, min_password=min_password, confirm=confirm)


def read_password(
    password_stdin: bool, *, min_password: int, confirm: bool, prompt: str = "Password"
) -> str:
    """A password from stdin or a hidden prompt, within the allowed length."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt(prompt, hide_input=True, confirmation_prompt=confirm, err=True)
    if not min_password <= len(password) <= MAX_PASSWORD:
        raise click.UsageError(f"the password must be {min_password} to {MAX_PASSWORD} characters")
    return password
