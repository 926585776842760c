"""The ``--require-par/--no-require-par`` option of ``authly admin client create|update``:
whether the client must push its authorization requests first (RFC 9126 §6)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])
FIELD = "require_pushed_authorization_requests"


def par_option(command: F) -> F:
    return click.option(
        "--require-par/--no-require-par",
        "require_par",
        default=None,
        help="Whether the client must push its authorization requests first (RFC 9126).",
    )(command)


def par_fields(require_par: bool | None) -> dict[str, Any]:
    """The admin API field the option asks for (none when it was not given)."""
    return {} if require_par is None else {FIELD: require_par}


def par_summary(c: dict[str, Any]) -> str:
    """How ``client show`` describes it."""
    return "required" if c.get(FIELD) else "optional"
