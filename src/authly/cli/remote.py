"""The admin CLI's side of the admin API: where the server is, the stored session
handle, HTTP calls, and turning every failure into one line on stderr (exit 1).

The session handle is the only thing kept locally, in
``$XDG_CONFIG_HOME/authly/admin-sessions.json`` (or ``~/.config/authly/...``), one
handle per server URL; the directory is 0700 and the file 0600, written whole to a
temporary file and renamed into place so a crash never leaves half a file.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import sys
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import quote, urlsplit

import click
import httpx

DEFAULT_URL = "http://127.0.0.1:8000"
SESSION_FILE = "admin-sessions.json"
TIMEOUT = 30.0


def fail(message: str) -> NoReturn:
    """Print ``authly: message`` on stderr and exit 1."""
    click.echo(f"authly: {message}", err=True)
    sys.exit(1)


def normalize_url(url: str) -> str:
    text = url.strip().rstrip("/")
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise click.BadParameter(f"{url!r} is not an http:// or https:// URL", param_hint="--url")
    if parts.query or parts.fragment:
        raise click.BadParameter("must not have a query or fragment", param_hint="--url")
    return text


def is_plain_remote(url: str) -> bool:
    """True for http:// to anything but loopback (credentials would cross in clear)."""
    parts = urlsplit(url)
    if parts.scheme != "http":
        return False
    host = parts.hostname or ""
    if host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True


def config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME", "")
    # XDG: a relative XDG_CONFIG_HOME is invalid and must be ignored.
    root = Path(base) if base and os.path.isabs(base) else Path.home() / ".config"
    return root / "authly"


class SessionFile:
    """Session handles by server URL."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory if directory is not None else config_dir()
        self.path = self.directory / SESSION_FILE

    def _load(self) -> dict[str, str]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            fail(f"cannot read {self.path}; delete it and log in again")
        sessions = data.get("sessions") if isinstance(data, dict) else None
        if not isinstance(sessions, dict):
            return {}
        return {k: v for k, v in sessions.items() if isinstance(k, str) and isinstance(v, str)}

    def get(self, url: str) -> str | None:
        return self._load().get(url)

    def put(self, url: str, handle: str) -> None:
        sessions = self._load()
        sessions[url] = handle
        self._save(sessions)

    def remove(self, url: str) -> bool:
        sessions = self._load()
        if sessions.pop(url, None) is None:
            return False
        self._save(sessions)
        return True

    def _save(self, sessions: dict[str, str]) -> None:
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(self.directory, 0o700)
            text = json.dumps({"sessions": sessions}, indent=2) + "\n"
            temporary = self.path.with_name(f".{SESSION_FILE}.{os.getpid()}.tmp")
            with contextlib.suppress(FileNotFoundError):
                temporary.unlink()
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
            fd = os.open(temporary, flags, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(text)
            os.replace(temporary, self.path)
        except OSError as exc:
            fail(f"cannot write {self.path}: {exc.strerror or exc}")


class Remote:
    """One admin API server: JSON requests with the stored session (or none)."""

    def __init__(self, url: str, sessions: SessionFile | None = None) -> None:
        self.url = normalize_url(url)
        self.sessions = sessions if sessions is not None else SessionFile()

    def handle(self) -> str:
        handle = self.sessions.get(self.url)
        if handle is None:
            fail(f"not logged in to {self.url}; run 'authly admin login'")
        return handle

    def send(
        self, method: str, path: str, *, body: dict[str, Any] | None, bearer: str | None
    ) -> httpx.Response:
        """The server's response, whatever its status; exit 1 if there is none."""
        headers = {"Accept": "application/json"}
        if bearer is not None:
            headers["Authorization"] = f"Bearer {bearer}"
        try:
            with httpx.Client(timeout=TIMEOUT, follow_redirects=False) as client:
                return client.request(
                    method, f"{self.url}/api/v1/admin{path}", json=body, headers=headers
                )
        except httpx.ConnectError:
            fail(f"cannot connect to {self.url}: is Authly running there? (see --url)")
        except httpx.TimeoutException:
            fail(f"{self.url} did not answer within {TIMEOUT:.0f} s")
        except httpx.HTTPError as exc:
            fail(f"request to {self.url} failed: {exc.__class__.__name__}")

    def call(
        self,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        authenticated: bool = True,
    ) -> Any:
        """The decoded JSON answer (None for 204), or exit 1 with the server's reason."""
        bearer = self.handle() if authenticated else None
        response = self.send(method, path, body=body, bearer=bearer)
        if response.status_code == 204:
            return None
        try:
            data = response.json()
        except ValueError:
            data = None
        if response.is_success and data is not None:
            return data
        fail(error_message(response.status_code, data, authenticated=authenticated))


def error_message(status: int, data: Any, *, authenticated: bool) -> str:
    """The server's error_description, or a line naming the HTTP status."""
    reason = data.get("error_description") if isinstance(data, dict) else None
    if not isinstance(reason, str) or not reason:
        reason = f"the server answered HTTP {status}"
    reason = " ".join(reason.split())  # one line, whatever the server sent
    if status == 401 and authenticated:
        reason += " (run 'authly admin login')"
    return reason


def path_segment(value: str) -> str:
    """A value quoted for use as one path segment (a scope may contain '/')."""
    return quote(value, safe="")


def print_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


def print_table(headers: list[str], rows: list[list[str]]) -> None:
    """Columns aligned with two spaces; the last column is not padded."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    for line in [headers, *rows]:
        cells = [cell.ljust(w) for cell, w in zip(line[:-1], widths, strict=False)]
        click.echo("  ".join([*cells, line[-1]]).rstrip())


def print_fields(pairs: list[tuple[str, str]]) -> None:
    width = max(len(name) for name, _ in pairs) + 1
    for name, value in pairs:
        click.echo(f"{(name + ':').ljust(width)} {value}".rstrip())


def duration(seconds: int) -> str:
    hours, rest = divmod(max(0, int(seconds)), 3600)
    return f"{hours}h {rest // 60:02d}m"
