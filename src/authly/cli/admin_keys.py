"""`authly admin keys list|rotate`: the signing keys, over the admin API.

Same conventions as the other remote admin commands (cli/admin_remote.py): ``--url``
or ``AUTHLY_URL``, a table by default and JSON with ``--json``, failures as one line on
stderr and exit status 1.
"""

from __future__ import annotations

import time
from typing import Any

import click

from authly.cli.admin_remote import remote_options
from authly.cli.remote import Remote, print_fields, print_json, print_table
from authly.tokens.keys import ALGORITHM, ALGORITHMS


def _when(value: Any) -> str:
    if not isinstance(value, int | float):
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(value))


@click.group()
def keys() -> None:
    """Signing keys: list them, rotate one algorithm's key."""


@keys.command("list")
@remote_options
def keys_list(url: str, as_json: bool) -> None:
    """List the signing keys: current, retired (still published) and expired."""
    found = Remote(url).call("GET", "/keys")["keys"]
    if as_json:
        print_json(found)
        return
    rows = [
        [
            str(k["kid"]),
            str(k["alg"]),
            str(k["status"]),
            _when(k["created_at"]),
            _when(k["retired_at"]),
            _when(k["published_until"]),
        ]
        for k in found
    ]
    print_table(["KID", "ALG", "STATUS", "CREATED", "RETIRED", "PUBLISHED UNTIL"], rows)


@keys.command("rotate")
@click.option(
    "--alg",
    type=click.Choice(ALGORITHMS),
    default=ALGORITHM,
    show_default=True,
    help="The algorithm whose key to replace.",
)
@remote_options
def keys_rotate(alg: str, url: str, as_json: bool) -> None:
    """Add a new signing key for --alg and make it current.

    The previous key is retired: it stays published, so tokens it signed keep
    verifying until they have all expired, then it drops out of the JWKS by itself.
    """
    key = Remote(url).call("POST", "/keys/rotate", body={"alg": alg})
    if as_json:
        print_json(key)
        return
    print_fields(
        [
            ("kid", str(key["kid"])),
            ("alg", str(key["alg"])),
            ("status", str(key["status"])),
            ("created", _when(key["created_at"])),
        ]
    )
