"""`authly admin scope ...`: the scope registry on a running server."""

from __future__ import annotations

import click

from authly.cli.admin_remote import remote_options
from authly.cli.remote import Remote, path_segment, print_json, print_table


@click.group()
def scope() -> None:
    """Manage the scope registry on the server."""


@scope.command("create")
@click.argument("name")
@click.option("--description", required=True, help="Shown on the consent page.")
@click.option("--default", "is_default", is_flag=True, help="Granted when none is asked for.")
@remote_options
def scope_create(name: str, description: str, is_default: bool, url: str, as_json: bool) -> None:
    """Add a scope."""
    body = {"name": name, "description": description, "default": is_default}
    created = Remote(url).call("POST", "/scopes", body=body)
    if as_json:
        print_json(created)
    else:
        click.echo(f"Created scope {created['name']}.")


@scope.command("list")
@remote_options
def scope_list(url: str, as_json: bool) -> None:
    """List the scopes."""
    scopes = Remote(url).call("GET", "/scopes")["scopes"]
    if as_json:
        print_json(scopes)
        return
    rows = [[s["name"], "yes" if s["default"] else "no", s["description"]] for s in scopes]
    print_table(["NAME", "DEFAULT", "DESCRIPTION"], rows)


@scope.command("delete")
@click.argument("name")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@remote_options
def scope_delete(name: str, yes: bool, url: str, as_json: bool) -> None:
    """Delete a scope (refused while a client has it, and for built-in scopes)."""
    if not yes:
        click.confirm(f"Delete scope {name}?", abort=True, err=True)
    Remote(url).call("DELETE", f"/scopes/{path_segment(name)}")
    if as_json:
        print_json({"deleted": name})
    else:
        click.echo(f"Deleted scope {name}.")
