"""`authly admin login|logout|status|client|scope`: the admin API over HTTP.

The server is ``--url`` or ``AUTHLY_URL`` (default http://127.0.0.1:8000). Output is
a human table by default and JSON with ``--json``. Any failure is one line on stderr
(``authly: <reason>``) and exit status 1.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from authly.cli.client_keys import key_fields, key_options, key_summary
from authly.cli.client_par import par_fields, par_option, par_summary
from authly.cli.common import read_credentials
from authly.cli.remote import (
    DEFAULT_URL,
    Remote,
    duration,
    error_message,
    fail,
    is_plain_remote,
    path_segment,
    print_fields,
    print_json,
    print_table,
)
from authly.oauth.grants import GRANTS
from authly.oauth.registration import CONFIDENTIAL_METHODS
from authly.oidc.id_tokens import ID_TOKEN_ALGS

F = TypeVar("F", bound=Callable[..., Any])


def remote_options(command: F) -> F:
    command = click.option("--json", "as_json", is_flag=True, help="Print JSON (for scripts).")(
        command
    )
    return click.option(
        "--url",
        envvar="AUTHLY_URL",
        default=DEFAULT_URL,
        show_default=True,
        help="The Authly server (or AUTHLY_URL).",
    )(command)


def _secret_notice() -> None:
    click.echo("The client secret is shown only now: store it safely.", err=True)


# --- session ------------------------------------------------------------------------------


@click.command()
@click.option("--username", default=None, help="Admin username (prompted if omitted).")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@remote_options
def login(username: str | None, password_stdin: bool, url: str, as_json: bool) -> None:
    """Start an admin session on the server; keep only its handle locally (0600)."""
    remote = Remote(url)
    if username is None:
        username = click.prompt("Username", err=True)
    username, password = read_credentials(username, password_stdin, min_password=1, confirm=False)
    if is_plain_remote(remote.url):
        click.echo("authly: warning: sending a password over plain HTTP", err=True)
    body = {"username": username, "password": password}
    answer = remote.call("POST", "/session", body=body, authenticated=False)
    handle = answer.get("session") if isinstance(answer, dict) else None
    if not isinstance(handle, str) or not handle:
        fail("the server's answer carried no session")
    remote.sessions.put(remote.url, handle)
    status = {"url": remote.url, "user": answer.get("user"), "expires_in": answer.get("expires_in")}
    if as_json:
        print_json(status)
        return
    user = answer.get("user") or {}
    click.echo(
        f"Logged in to {remote.url} as {user.get('username')} "
        f"(session expires after {duration(int(answer.get('expires_in') or 0))} idle)"
    )


@click.command()
@remote_options
def logout(url: str, as_json: bool) -> None:
    """End the admin session on the server and forget its handle."""
    remote = Remote(url)
    handle = remote.sessions.get(remote.url)
    if handle is None:
        if as_json:
            print_json({"url": remote.url, "logged_out": False})
        else:
            click.echo(f"Not logged in to {remote.url}.")
        return
    # Forget the handle first: even if the server cannot be reached, the session
    # expires there on its own.
    remote.sessions.remove(remote.url)
    response = remote.send("DELETE", "/session", body=None, bearer=handle)
    # 401: the session had already ended there; that is logged out too.
    if response.status_code not in (204, 401):
        try:
            data = response.json()
        except ValueError:
            data = None
        fail(error_message(response.status_code, data, authenticated=False))
    if as_json:
        print_json({"url": remote.url, "logged_out": True})
    else:
        click.echo(f"Logged out of {remote.url}.")


@click.command()
@remote_options
def status(url: str, as_json: bool) -> None:
    """Show who the stored admin session belongs to and when it expires."""
    remote = Remote(url)
    answer = remote.call("GET", "/session")
    if as_json:
        print_json({"url": remote.url, **answer})
        return
    user = answer.get("user") or {}
    print_fields(
        [
            ("url", remote.url),
            ("user", f"{user.get('username')} ({user.get('id')})"),
            ("auth", str(answer.get("auth"))),
            ("expires in", duration(int(answer.get("expires_in") or 0))),
        ]
    )


# --- clients ------------------------------------------------------------------------------


@click.group()
def client() -> None:
    """Manage OAuth clients on the server."""


def _client_fields(c: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        ("client_id", str(c.get("client_id"))),
        ("name", str(c.get("name"))),
        ("type", str(c.get("client_type"))),
        ("auth method", str(c.get("token_endpoint_auth_method"))),
        ("grant types", " ".join(c.get("grant_types") or []) or "-"),
        ("scopes", " ".join(c.get("scopes") or []) or "-"),
        ("redirect URIs", " ".join(c.get("redirect_uris") or []) or "-"),
        ("first party", "yes" if c.get("first_party") else "no"),
        ("ID token alg", str(c.get("id_token_signed_response_alg", "RS256"))),
        ("post-logout URIs", " ".join(c.get("post_logout_redirect_uris") or []) or "-"),
        ("back-channel logout", _backchannel(c)),
        ("public keys", key_summary(c)),
        ("pushed requests", par_summary(c)),
    ]


def _backchannel(c: dict[str, Any]) -> str:
    uri = c.get("backchannel_logout_uri")
    if not uri:
        return "-"
    return f"{uri} (sid required)" if c.get("backchannel_logout_session_required") else str(uri)


def _logout_options(command: F) -> F:
    """The OpenID Connect logout options of ``client create`` and ``client update``."""
    command = click.option(
        "--backchannel-logout-session-required/--backchannel-logout-session-optional",
        "backchannel_sid",
        default=None,
        help="Whether the client needs sid in logout tokens (Back-Channel Logout §2.2).",
    )(command)
    command = click.option(
        "--backchannel-logout-uri",
        default=None,
        help="Where Authly POSTs logout tokens (https; '' removes it).",
    )(command)
    return click.option(
        "--post-logout-redirect-uri",
        "post_logout_uris",
        multiple=True,
        help="Repeatable; where RP-initiated logout may return (replaces the list).",
    )(command)


def _logout_fields(
    post_logout_uris: tuple[str, ...], backchannel_uri: str | None, backchannel_sid: bool | None
) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if post_logout_uris:
        fields["post_logout_redirect_uris"] = list(post_logout_uris)
    if backchannel_uri is not None:
        fields["backchannel_logout_uri"] = backchannel_uri or None
    if backchannel_sid is not None:
        fields["backchannel_logout_session_required"] = backchannel_sid
    return fields


def _show_client(c: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(c)
        return
    fields = _client_fields(c)
    if "client_secret" in c:
        fields.insert(1, ("client_secret", str(c["client_secret"])))
    print_fields(fields)
    if "client_secret" in c:
        _secret_notice()


_grant_choice = click.Choice(list(GRANTS))
_method_choice = click.Choice(CONFIDENTIAL_METHODS)
_alg_choice = click.Choice(ID_TOKEN_ALGS)


@client.command("create")
@click.option("--name", required=True, help="Display name (shown on the consent page).")
@click.option("--redirect-uri", "redirect_uris", multiple=True, help="Repeatable.")
@click.option(
    "--public/--confidential",
    "public",
    default=None,
    help="Public (no secret, PKCE only) or confidential (gets a secret).",
)
@click.option("--auth-method", type=_method_choice, default=None, help="Confidential only.")
@click.option("--grant-type", "grant_types", type=_grant_choice, multiple=True, help="Repeatable.")
@click.option("--scope", "scopes", multiple=True, help="Repeatable; default: the default scopes.")
@click.option("--first-party", is_flag=True, help="Trusted first-party client (no consent).")
@click.option("--id-token-alg", type=_alg_choice, default=None, help="Default RS256.")
@_logout_options
@key_options
@par_option
@remote_options
def client_create(
    name: str,
    redirect_uris: tuple[str, ...],
    public: bool | None,
    auth_method: str | None,
    grant_types: tuple[str, ...],
    scopes: tuple[str, ...],
    first_party: bool,
    id_token_alg: str | None,
    post_logout_uris: tuple[str, ...],
    backchannel_logout_uri: str | None,
    backchannel_sid: bool | None,
    jwks_file: str | None,
    jwks_uri: str | None,
    require_par: bool | None,
    url: str,
    as_json: bool,
) -> None:
    """Register a client; a confidential client's secret is printed this once."""
    if public is None:
        raise click.UsageError("choose --public or --confidential")
    if public and auth_method is not None:
        raise click.UsageError("--auth-method is for confidential clients")
    body: dict[str, Any] = {
        "name": name,
        "client_type": "public" if public else "confidential",
        "redirect_uris": list(redirect_uris),
        "first_party": first_party,
    }
    if auth_method is not None:
        body["token_endpoint_auth_method"] = auth_method
    if grant_types:
        body["grant_types"] = list(grant_types)
    if scopes:
        body["scopes"] = list(scopes)
    if id_token_alg is not None:
        body["id_token_signed_response_alg"] = id_token_alg
    body.update(_logout_fields(post_logout_uris, backchannel_logout_uri, backchannel_sid))
    body.update(key_fields(jwks_file, jwks_uri))
    body.update(par_fields(require_par))
    _show_client(Remote(url).call("POST", "/clients", body=body), as_json)


@client.command("list")
@remote_options
def client_list(url: str, as_json: bool) -> None:
    """List the registered clients."""
    clients = Remote(url).call("GET", "/clients")["clients"]
    if as_json:
        print_json(clients)
        return
    rows = [
        [
            str(c["client_id"]),
            str(c["name"]),
            str(c["client_type"]),
            ",".join(c["grant_types"]),
            " ".join(c["scopes"]),
        ]
        for c in clients
    ]
    print_table(["CLIENT ID", "NAME", "TYPE", "GRANT TYPES", "SCOPES"], rows)


@client.command("show")
@click.argument("client_id")
@remote_options
def client_show(client_id: str, url: str, as_json: bool) -> None:
    """Show one client."""
    _show_client(Remote(url).call("GET", f"/clients/{path_segment(client_id)}"), as_json)


@client.command("update")
@click.argument("client_id")
@click.option("--name", default=None)
@click.option("--redirect-uri", "redirect_uris", multiple=True, help="Replaces the list.")
@click.option("--auth-method", type=_method_choice, default=None)
@click.option(
    "--grant-type", "grant_types", type=_grant_choice, multiple=True, help="Replaces the list."
)
@click.option("--scope", "scopes", multiple=True, help="Replaces the list.")
@click.option("--first-party/--third-party", "first_party", default=None)
@click.option("--id-token-alg", type=_alg_choice, default=None)
@_logout_options
@key_options
@par_option
@remote_options
def client_update(
    client_id: str,
    name: str | None,
    redirect_uris: tuple[str, ...],
    auth_method: str | None,
    grant_types: tuple[str, ...],
    scopes: tuple[str, ...],
    first_party: bool | None,
    id_token_alg: str | None,
    post_logout_uris: tuple[str, ...],
    backchannel_logout_uri: str | None,
    backchannel_sid: bool | None,
    jwks_file: str | None,
    jwks_uri: str | None,
    require_par: bool | None,
    url: str,
    as_json: bool,
) -> None:
    """Change a client; repeatable options replace the whole list."""
    changes: dict[str, Any] = {
        "name": name,
        "redirect_uris": list(redirect_uris) or None,
        "token_endpoint_auth_method": auth_method,
        "grant_types": list(grant_types) or None,
        "scopes": list(scopes) or None,
        "first_party": first_party,
        "id_token_signed_response_alg": id_token_alg,
    }
    body = {k: v for k, v in changes.items() if v is not None}
    body.update(_logout_fields(post_logout_uris, backchannel_logout_uri, backchannel_sid))
    body.update(key_fields(jwks_file, jwks_uri))
    body.update(par_fields(require_par))
    if not body:
        raise click.UsageError("nothing to change; see --help")
    path = f"/clients/{path_segment(client_id)}"
    _show_client(Remote(url).call("PATCH", path, body=body), as_json)


@client.command("delete")
@click.argument("client_id")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@remote_options
def client_delete(client_id: str, yes: bool, url: str, as_json: bool) -> None:
    """Delete a client (its refresh tokens stop working)."""
    if not yes:
        click.confirm(f"Delete client {client_id}?", abort=True, err=True)
    Remote(url).call("DELETE", f"/clients/{path_segment(client_id)}")
    if as_json:
        print_json({"deleted": client_id})
    else:
        click.echo(f"Deleted client {client_id}.")


@client.command("rotate-secret")
@click.argument("client_id")
@remote_options
def client_rotate_secret(client_id: str, url: str, as_json: bool) -> None:
    """Replace a confidential client's secret; the old one stops working at once."""
    path = f"/clients/{path_segment(client_id)}/rotate-secret"
    answer = Remote(url).call("POST", path)
    if as_json:
        print_json(answer)
        return
    print_fields([("client_id", answer["client_id"]), ("client_secret", answer["client_secret"])])
    _secret_notice()


COMMANDS = (login, logout, status, client)
