"""`authly admin backends show|set`: where each feature runs, and the operator's pins.

``set rate_limit=memory cache=redis`` pins features to their fallback (memory; the
store for sessions) or releases them back to Redis on every instance on the store (the
guide's rollback, without a restart). Same conventions as the other remote admin
commands (cli/admin_remote.py): ``--url`` or ``AUTHLY_URL``, a table by default and
JSON with ``--json``, failures as one line on stderr and exit status 1.
"""

from __future__ import annotations

from typing import Any

import click

from authly.cli.admin_remote import remote_options
from authly.cli.remote import Remote, fail, print_json, print_table


def _print(state: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(state)
        return
    rows = [
        [
            feature,
            "yes" if info["configured"] else "no",
            "fallback" if info["pinned"] else "-",
            str(info["backend"]),
        ]
        for feature, info in state["features"].items()
    ]
    print_table(["FEATURE", "ON REDIS BY CONFIG", "OPERATOR", "BACKEND NOW"], rows)


@click.group()
def backends() -> None:
    """Where rate limiting, caching and sessions run; switch them without a restart."""


@backends.command("show")
@remote_options
def backends_show(url: str, as_json: bool) -> None:
    """Each feature's backend now, and whether the operator pinned it to its fallback."""
    _print(Remote(url).call("GET", "/backends"), as_json)


@backends.command("set")
@click.argument("choices", nargs=-1, required=True, metavar="FEATURE=redis|memory...")
@remote_options
def backends_set(choices: tuple[str, ...], url: str, as_json: bool) -> None:
    """Pin features to their fallback (memory) or release them to Redis, e.g.
    `authly admin backends set rate_limit=memory cache=redis`. Applies to every
    instance on the store and survives restarts."""
    body: dict[str, str] = {}
    for choice in choices:
        feature, sep, value = choice.partition("=")
        if not sep or not feature or value not in ("redis", "memory"):
            fail(f"bad choice {choice!r}: write FEATURE=redis or FEATURE=memory")
        body[feature] = value
    _print(Remote(url).call("PUT", "/backends", body=body), as_json)
