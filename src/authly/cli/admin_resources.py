"""`authly admin resource ...`: the resource registry (RFC 8707) on a running server."""

from __future__ import annotations

from typing import Any

import click

from authly.cli.admin_remote import remote_options
from authly.cli.remote import Remote, fail, path_segment, print_fields, print_json, print_table


@click.group()
def resource() -> None:
    """Manage protected resources (APIs tokens may be issued for, RFC 8707)."""


def _path(identifier: str) -> str:
    return f"/resources/{path_segment(identifier)}"


def _show(r: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(r)
        return
    print_fields(
        [
            ("resource", r["resource"]),
            ("name", r["name"]),
            ("scopes", " ".join(r["scopes"]) or "(none)"),
            ("metadata", r.get("metadata_url", "")),
        ]
    )


@resource.command("create")
@click.argument("identifier", metavar="RESOURCE")
@click.option("--name", required=True, help="Shown to users and in the resource's metadata.")
@click.option("--scope", "scopes", multiple=True, help="A scope tokens for it may carry.")
@remote_options
def resource_create(
    identifier: str, name: str, scopes: tuple[str, ...], url: str, as_json: bool
) -> None:
    """Register a resource: RESOURCE is its URI (https://api.example.com/...)."""
    body = {"resource": identifier, "name": name, "scopes": list(scopes)}
    created = Remote(url).call("POST", "/resources", body=body)
    if as_json:
        print_json(created)
    else:
        click.echo(f"Created resource {created['resource']}.")


@resource.command("list")
@remote_options
def resource_list(url: str, as_json: bool) -> None:
    """List the resources."""
    resources = Remote(url).call("GET", "/resources")["resources"]
    if as_json:
        print_json(resources)
        return
    rows = [[r["resource"], r["name"], " ".join(r["scopes"])] for r in resources]
    print_table(["RESOURCE", "NAME", "SCOPES"], rows)


@resource.command("show")
@click.argument("identifier", metavar="RESOURCE")
@remote_options
def resource_show(identifier: str, url: str, as_json: bool) -> None:
    """Show one resource, and where its RFC 9728 metadata is served."""
    _show(Remote(url).call("GET", _path(identifier)), as_json)


@resource.command("update")
@click.argument("identifier", metavar="RESOURCE")
@click.option("--name", default=None)
@click.option("--scope", "scopes", multiple=True, help="Replaces the whole list.")
@click.option("--clear-scopes", is_flag=True, help="Allow no scope at all.")
@remote_options
def resource_update(
    identifier: str,
    name: str | None,
    scopes: tuple[str, ...],
    clear_scopes: bool,
    url: str,
    as_json: bool,
) -> None:
    """Change a resource's name or scopes (its identifier never changes)."""
    if scopes and clear_scopes:
        fail("--scope and --clear-scopes cannot be used together")
    body: dict[str, Any] = {}
    if name is not None:
        body["name"] = name
    if scopes or clear_scopes:
        body["scopes"] = list(scopes)
    if not body:
        fail("nothing to change: give --name, --scope or --clear-scopes")
    _show(Remote(url).call("PATCH", _path(identifier), body=body), as_json)


@resource.command("delete")
@click.argument("identifier", metavar="RESOURCE")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@remote_options
def resource_delete(identifier: str, yes: bool, url: str, as_json: bool) -> None:
    """Delete a resource (tokens already issued for it stay valid until they expire)."""
    if not yes:
        click.confirm(f"Delete resource {identifier}?", abort=True, err=True)
    Remote(url).call("DELETE", _path(identifier))
    if as_json:
        print_json({"deleted": identifier})
    else:
        click.echo(f"Deleted resource {identifier}.")
