"""The ``--jwks`` and ``--jwks-uri`` options of ``authly admin client create|update``:
the public keys of a ``private_key_jwt`` client (RFC 7523 §2.2)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def key_options(command: F) -> F:
    command = click.option(
        "--jwks-uri",
        default=None,
        help="private_key_jwt: where the client publishes its JWK Set (https; '' removes it).",
    )(command)
    return click.option(
        "--jwks",
        "jwks_file",
        default=None,
        help="private_key_jwt: a file holding the client's public JWK Set ('-': standard"
        " input; '' removes it).",
    )(command)


def key_fields(jwks_file: str | None, jwks_uri: str | None) -> dict[str, Any]:
    """The admin API fields the two options ask for."""
    fields: dict[str, Any] = {}
    if jwks_file is not None:
        fields["jwks"] = _read_jwks(jwks_file) if jwks_file else None
    if jwks_uri is not None:
        fields["jwks_uri"] = jwks_uri or None
    return fields


def _read_jwks(path: str) -> Any:
    try:
        with click.open_file(path, encoding="utf-8") as source:
            return json.load(source)
    except OSError as exc:
        raise click.BadParameter(
            f"cannot read {path}: {exc.strerror}", param_hint="--jwks"
        ) from None
    except (ValueError, RecursionError):
        raise click.BadParameter(f"{path} is not JSON", param_hint="--jwks") from None


def key_summary(c: dict[str, Any]) -> str:
    """How ``client show`` describes a client's keys."""
    if c.get("jwks_uri"):
        return str(c["jwks_uri"])
    jwks = c.get("jwks")
    if isinstance(jwks, dict):
        kids = [str(k.get("kid", "-")) for k in jwks.get("keys", []) if isinstance(k, dict)]
        return f"{len(kids)} inline ({' '.join(kids)})"
    return "-"
