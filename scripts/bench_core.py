#!/usr/bin/env python3
"""Core HTTP benchmark for Authly.

Scenarios (each at every --concurrency level unless noted):

- ``health``   GET /health (one SQLite round trip)
- ``jwks``     GET /.well-known/jwks.json
- ``login``    POST /api/v1/auth/login (argon2id verify + RS256 signing + SQLite insert)
- ``refresh``  POST /api/v1/oauth/token grant_type=refresh_token; every worker logs in
  once during set-up and then follows its own rotation chain (each refresh token is
  single use, the response carries the next one)
- ``health_under_login``  GET /health at concurrency 1 while --bg-login-concurrency
  logins run without pause in another process: shows whether argon2 runs off the event
  loop (compare its p99 with ``health`` at concurrency 1)
- ``client_credentials``  POST /api/v1/oauth/token grant_type=client_credentials, the
  confidential client ``bench-svc`` authenticating with HTTP Basic (RFC 6749 §2.3.1)
- ``introspection``  POST /api/v1/oauth/introspect token=<access token> with Basic auth
  of ``bench-svc``; every worker gets its access token once during set-up, and an
  answer without ``"active": true`` counts as an error
- ``code_flow``  complete authorization-code + PKCE (S256) flows of the first-party
  public client ``bench-spa`` with a logged-in browser session: GET
  /api/v1/oauth/authorize with the session cookie (a 302 to the redirect URI carrying
  ``code`` and the same ``state`` is the expected answer), then POST /api/v1/oauth/token
  grant_type=authorization_code with the code_verifier. Every worker logs in once during
  set-up through the HTML login form (hidden fields, CSRF token included). One request
  of the table = one complete flow (two HTTP requests); p50/p99 are per flow

By default the script starts its own server (``python -m authly serve`` on a free port,
SQLite in a temporary directory, AUTHLY_LOGIN_RATE_LIMIT=1000000 so the login bench is
not rate limited, AUTHLY_TOKEN_RATE_LIMIT=10000000 so the token endpoint's per-client
and per-IP budget is not either) and stops it with SIGTERM at the end. For the OAuth
scenarios it registers ``bench-svc`` (client_secret_basic, client_credentials, random
secret) and ``bench-spa`` (public, first party, redirect URI http://127.0.0.1:9/cb, never
contacted) in the SQLite file before the server starts. ``--url`` targets a running
server instead (login and refresh then need --username/--password; the OAuth scenarios
are skipped, their clients only exist in a self-started server's database).

Load comes from separate OS processes (multiprocessing; ``--procs`` per scenario, 1 by
default) running trio. The default client (``--client raw``) is a minimal HTTP/1.1
keep-alive client on raw trio sockets, which costs a few tens of microseconds per
request; ``--client httpx`` uses httpx.AsyncClient, which costs several times more. Every
load process reports the CPU it used; the table shows it next to the server's, and a
note flags any load process that kept one core busy (the figures are then client-bound).

Every scenario stops after --requests (--login-requests for logins) OR --max-seconds,
whichever comes first; each request has its own --timeout. Before the clock starts,
every worker opens its connection with one warm-up GET (jwks: the JWKS itself, so the
table shows a warm cache; a slow warm-up is noted under the table). Any non-2xx answer,
timeout, connection error or malformed token response counts as an error: it is in the
table's ``errors`` column and broken down under the table. ``req/s`` counts 2xx answers
only; p50/p99 are over 2xx answers. The exit status is 1 if anything failed.

Examples:
    .venv/bin/python scripts/bench_core.py
    .venv/bin/python scripts/bench_core.py --markdown --workers 2 --procs 2
    .venv/bin/python scripts/bench_core.py --scenarios health,jwks --concurrency 1,8,32
    .venv/bin/python scripts/bench_core.py --url http://127.0.0.1:8000 \\
        --username admin --password "$AUTHLY_ADMIN_PASSWORD"
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import html.parser
import json
import math
import multiprocessing as mp
import os
import queue as queue_module
import resource
import secrets
import shlex
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urljoin, urlsplit

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchlib.py, next to this file
import benchlib

OAUTH_SCENARIOS = ("client_credentials", "introspection", "code_flow")
SCENARIOS = ("health", "jwks", "login", "refresh", "health_under_login", *OAUTH_SCENARIOS)
LOGIN_PATH = "/api/v1/auth/login"
TOKEN_PATH = "/api/v1/oauth/token"
INTROSPECT_PATH = "/api/v1/oauth/introspect"
AUTHORIZE_PATH = "/api/v1/oauth/authorize"
JSON_TYPE = "application/json"
FORM_TYPE = "application/x-www-form-urlencoded"

SERVICE_CLIENT_ID = "bench-svc"  # confidential: client_credentials, introspection
SPA_CLIENT_ID = "bench-spa"  # public, first party: code_flow
SPA_REDIRECT_URI = "http://127.0.0.1:9/cb"  # never contacted: the 302 Location is parsed
SPA_SCOPE = "profile email"
TOKEN_RATE_LIMIT = "10000000"  # the maximum AUTHLY_TOKEN_RATE_LIMIT accepts
BROWSER_LOGIN_STEPS = 4  # requests of one browser login (set-up): see browser_login

SETUP_SECONDS = 60.0  # bound on per-scenario set-up (connections, the refresh logins)
IDLE_RECONNECT_SECONDS = 2.0  # hypercorn closes idle keep-alive connections after 5 s
SLOW_WARMUP_SECONDS = 0.5  # a warm-up slower than this is worth a note
SATURATED_CORE = 0.90  # a load process above this share of one core is client-bound
BACKGROUND_LOGIN_CAP = 100_000  # count bound of the background logins (time stops them)


# --------------------------------------------------------------------------- jobs


@dataclass(frozen=True)
class Target:
    host: str
    port: int

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


@dataclass(frozen=True)
class Job:
    """What one load-generator process does; picklable."""

    target: Target
    kind: str  # health | jwks | login | refresh | client_credentials | introspection | code_flow
    workers: int
    requests: int
    max_seconds: float
    timeout: float
    client: str  # raw | httpx
    username: str
    password: str
    start_delay: float = 0.0
    follower: bool = False  # stop as soon as the scenario's stop event is set
    leader: bool = False  # set the scenario's stop event when done
    client_secret: str = ""  # bench-svc's (client_credentials, introspection)


@dataclass
class ProcResult:
    latencies: list[float] = field(default_factory=list)  # seconds, 2xx answers only
    requests: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    setup_errors: Counter[str] = field(default_factory=Counter)
    relogins: int = 0
    t_start: float = 0.0  # time.monotonic(), comparable across processes on Linux
    t_end: float = 0.0
    cpu_seconds: float = 0.0
    cut_by_time: bool = False
    warmup_max: float = 0.0  # seconds, slowest warm-up request
    crashed: str | None = None


class BadResponse(Exception):
    """An answer the scenario cannot use; the message is the error kind shown."""


class ProtocolError(Exception):
    pass


# ------------------------------------------------------------------ HTTP clients


class RawClient:
    """One keep-alive HTTP/1.1 connection on a trio socket.

    Just enough HTTP for this benchmark (Content-Length, chunked and read-to-close
    bodies), so the load generator costs far less per request than the server does.
    Any failure drops the connection; the next request opens a new one.
    """

    def __init__(self, target: Target) -> None:
        self._target = target
        self._host_header = target.base_url.removeprefix("http://")
        self._stream: trio.SocketStream | None = None
        self._buf = bytearray()
        self._last_used = 0.0
        self.last_headers: list[tuple[str, str]] = []  # of the last answer; names lowercase

    def drop(self) -> None:
        if self._stream is not None:
            self._stream.socket.close()
            self._stream = None
        self._buf.clear()

    async def aclose(self) -> None:
        self.drop()

    async def request(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        content_type: str | None = None,
        headers: Sequence[tuple[str, str]] = (),
    ) -> tuple[int, bytes]:
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {self._host_header}\r\n"
            "User-Agent: authly-bench\r\nAccept: */*\r\n"
        )
        if content_type is not None:
            head += f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
        for name, value in headers:
            head += f"{name}: {value}\r\n"
        data = head.encode("ascii") + b"\r\n" + body
        if self._stream is not None and time.monotonic() - self._last_used > IDLE_RECONNECT_SECONDS:
            self.drop()
        if self._stream is None:
            self._stream = await trio.open_tcp_stream(self._target.host, self._target.port)
        try:
            await self._stream.send_all(data)
            status, payload, keep_alive = await self._read_response()
        except BaseException:
            self.drop()
            raise
        if keep_alive:
            self._last_used = time.monotonic()
        else:
            self.drop()
        return status, payload

    async def _fill(self) -> None:
        assert self._stream is not None
        chunk = await self._stream.receive_some(65536)
        if not chunk:
            raise ProtocolError("server closed the connection")
        self._buf += chunk

    async def _read_exact(self, n: int) -> bytes:
        while len(self._buf) < n:
            await self._fill()
        data = bytes(self._buf[:n])
        del self._buf[:n]
        return data

    async def _read_line(self) -> bytes:
        while (end := self._buf.find(b"\r\n")) < 0:
            if len(self._buf) > 65536:
                raise ProtocolError("line too long")
            await self._fill()
        line = bytes(self._buf[:end])
        del self._buf[: end + 2]
        return line

    async def _read_response(self) -> tuple[int, bytes, bool]:
        while (end := self._buf.find(b"\r\n\r\n")) < 0:
            if len(self._buf) > 65536:
                raise ProtocolError("response head too long")
            await self._fill()
        lines = bytes(self._buf[:end]).decode("latin-1").split("\r\n")
        del self._buf[: end + 4]
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/"):
            raise ProtocolError(f"bad status line {lines[0][:60]!r}")
        status = int(parts[1])
        keep_alive = parts[0] == "HTTP/1.1"
        length: int | None = None
        chunked = False
        self.last_headers = []
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            self.last_headers.append((name, value.strip()))
            value = value.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding":
                chunked = "chunked" in value
            elif name == "connection":
                keep_alive = "close" not in value and (keep_alive or "keep-alive" in value)
        if 100 <= status < 200:  # interim answer: the real one follows
            return await self._read_response()
        if chunked:
            body = bytearray()
            while True:
                size = int(((await self._read_line()).split(b";")[0]).strip() or b"0", 16)
                if size == 0:
                    while await self._read_line():  # trailers
                        pass
                    break
                body += await self._read_exact(size)
                await self._read_exact(2)
            return status, bytes(body), keep_alive
        if length is not None:
            return status, await self._read_exact(length), keep_alive
        if status in (204, 304):
            return status, b"", keep_alive
        assert self._stream is not None
        while chunk := await self._stream.receive_some(65536):  # read to close
            self._buf += chunk
        body = bytes(self._buf)
        self._buf.clear()
        return status, body, False


class HttpxClient:
    """httpx.AsyncClient (one per load process, shared by its workers)."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.last_headers: list[tuple[str, str]] = []  # of the last answer; names lowercase

    def drop(self) -> None:
        pass  # httpx's pool discards broken connections by itself

    async def request(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        content_type: str | None = None,
        headers: Sequence[tuple[str, str]] = (),
    ) -> tuple[int, bytes]:
        sent = {"User-Agent": "authly-bench"}
        if content_type is not None:
            sent["Content-Type"] = content_type
        sent.update(headers)
        response = await self._client.request(
            method, path, content=body if content_type is not None else None, headers=sent
        )
        # The shared client's cookie jar must not mix the workers' sessions: each worker
        # sends its own Cookie header (an explicit one wins over the jar's).
        self._client.cookies.clear()
        self.last_headers = [(k.lower(), v) for k, v in response.headers.multi_items()]
        return response.status_code, response.content


Client = RawClient | HttpxClient


# ------------------------------------------------------------------ one request


def _check(status: int) -> None:
    if not 200 <= status < 300:
        raise BadResponse(f"HTTP {status}")


def _token_field(body: bytes, name: str) -> str:
    """A non-empty string field of a 2xx token response, or BadResponse."""
    try:
        token = json.loads(body)[name]
    except (ValueError, KeyError, TypeError):
        token = None
    if not isinstance(token, str) or not token:
        article = "an" if name[0] in "aeiou" else "a"
        raise BadResponse(f"2xx without {article} {name}")
    return token


def _refresh_token_of(body: bytes) -> str:
    return _token_field(body, "refresh_token")


async def do_login(client: Client, job: Job) -> str:
    body = json.dumps({"username": job.username, "password": job.password}).encode()
    status, payload = await client.request("POST", LOGIN_PATH, body, JSON_TYPE)
    _check(status)
    return _refresh_token_of(payload)


async def do_refresh(client: Client, token: str) -> str:
    body = urlencode({"grant_type": "refresh_token", "refresh_token": token}).encode()
    status, payload = await client.request("POST", TOKEN_PATH, body, FORM_TYPE)
    _check(status)
    return _refresh_token_of(payload)


async def do_get(client: Client, path: str) -> None:
    status, _ = await client.request("GET", path)
    _check(status)


def _basic_auth(client_id: str, secret: str) -> tuple[str, str]:
    """RFC 6749 §2.3.1: both parts form-encoded, then Basic."""
    pair = f"{quote(client_id, safe='')}:{quote(secret, safe='')}"
    return ("Authorization", "Basic " + base64.b64encode(pair.encode()).decode("ascii"))


def _access_token_of(body: bytes) -> str:
    return _token_field(body, "access_token")


async def do_client_credentials(client: Client, job: Job) -> str:
    body = urlencode({"grant_type": "client_credentials"}).encode()
    auth = _basic_auth(SERVICE_CLIENT_ID, job.client_secret)
    status, payload = await client.request("POST", TOKEN_PATH, body, FORM_TYPE, (auth,))
    _check(status)
    return _access_token_of(payload)


async def do_introspect(client: Client, job: Job, token: str) -> None:
    body = urlencode({"token": token}).encode()
    auth = _basic_auth(SERVICE_CLIENT_ID, job.client_secret)
    status, payload = await client.request("POST", INTROSPECT_PATH, body, FORM_TYPE, (auth,))
    _check(status)
    try:
        active = json.loads(payload)["active"]
    except (ValueError, KeyError, TypeError):
        raise BadResponse("2xx without an active member") from None
    if active is not True:
        raise BadResponse("introspection answered active != true")


# ------------------------------------------------------- the authorization-code flow


def _pkce_pair() -> tuple[str, str]:
    """(code_verifier, S256 code_challenge), RFC 7636 §4.1-4.2."""
    verifier = secrets.token_urlsafe(48)  # 64 characters
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _authorize_path(challenge: str, state: str) -> str:
    query = urlencode(
        {
            "response_type": "code",
            "client_id": SPA_CLIENT_ID,
            "redirect_uri": SPA_REDIRECT_URI,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "state": state,
        }
    )
    return f"{AUTHORIZE_PATH}?{query}"


def _header(client: Client, name: str) -> str | None:
    return next((v for k, v in client.last_headers if k == name), None)


def _code_from(location: str | None, state: str) -> str:
    """The code of a redirect to the client (RFC 6749 §4.1.2); BadResponse otherwise."""
    if location is None:
        raise BadResponse("authorize: redirect without a Location")
    parts = urlsplit(location)
    if location.split("?", 1)[0] != SPA_REDIRECT_URI:
        raise BadResponse(f"authorize: redirect to {parts.scheme}://{parts.netloc}{parts.path}")
    query = parse_qs(parts.query)
    if "error" in query:
        raise BadResponse(f"authorize: redirected with error={query['error'][0][:40]}")
    if query.get("state") != [state]:
        raise BadResponse("authorize: redirect with another state")
    code = query.get("code", [""])[0]
    if not code:
        raise BadResponse("authorize: redirect without a code")
    return code


async def _redeem(client: Client, code: str, verifier: str) -> None:
    body = urlencode(
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": SPA_REDIRECT_URI,
            "client_id": SPA_CLIENT_ID,
            "code_verifier": verifier,
        }
    ).encode()
    status, payload = await client.request("POST", TOKEN_PATH, body, FORM_TYPE)
    if not 200 <= status < 300:
        raise BadResponse(f"token: HTTP {status}")
    _access_token_of(payload)


async def do_code_flow(client: Client, cookie: str) -> None:
    """One complete flow with a logged-in browser session (``cookie``: its Cookie
    header): GET authorize -> 302 to the redirect URI with a code, then the exchange."""
    verifier, challenge = _pkce_pair()
    state = secrets.token_urlsafe(16)
    path = _authorize_path(challenge, state)
    status, _ = await client.request("GET", path, headers=(("Cookie", cookie),))
    if status != 302:
        lost = " (login page: the session is gone)" if status == 200 else ""
        raise BadResponse(f"authorize: HTTP {status}{lost}")
    await _redeem(client, _code_from(_header(client, "location"), state), verifier)


class _Cookies:
    """Just enough of a browser's cookie jar: name -> (value, path), one host."""

    def __init__(self) -> None:
        self._jar: dict[str, tuple[str, str]] = {}

    def update(self, headers: list[tuple[str, str]]) -> None:
        for name, value in headers:
            if name != "set-cookie":
                continue
            pair, *attributes = value.split(";")
            cookie, sep, cookie_value = pair.partition("=")
            if not sep:
                continue
            path = "/"
            gone = False
            for attribute in attributes:
                key, _, arg = attribute.strip().partition("=")
                key = key.lower()
                if key == "path" and arg.startswith("/"):
                    path = arg
                elif key == "max-age":
                    with contextlib.suppress(ValueError):
                        gone = gone or int(arg) <= 0
                elif key == "expires":
                    gone = gone or "1970" in arg
            if gone:
                self._jar.pop(cookie.strip(), None)
            else:
                self._jar[cookie.strip()] = (cookie_value.strip().strip('"'), path)

    def names(self) -> list[str]:
        return list(self._jar)

    def header(self, request_path: str) -> str:
        path = request_path.split("?", 1)[0]
        return "; ".join(
            f"{name}={value}"
            for name, (value, cookie_path) in self._jar.items()
            if path == cookie_path or path.startswith(cookie_path.rstrip("/") + "/")
        )


class _LoginForm(html.parser.HTMLParser):
    """The first POST form of a page: its action, hidden fields and the names of its
    text and password inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.hidden: dict[str, str] = {}
        self.user_field: str | None = None
        self.password_field: str | None = None
        self._inside = False
        self._done = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and not self._done and a.get("method", "get").lower() == "post":
            self._inside = True
            self.action = a.get("action", "")
        elif tag == "input" and self._inside and a.get("name"):
            kind = a.get("type", "text").lower()
            if kind == "hidden":
                self.hidden[a["name"]] = a.get("value", "")
            elif kind == "password":
                self.password_field = self.password_field or a["name"]
            elif kind in ("text", "email") and self.user_field is None:
                self.user_field = a["name"]

    def handle_endtag(self, tag: str) -> None:
        if tag == "form" and self._inside:
            self._inside = False
            self._done = True


async def browser_login(client: Client, job: Job) -> str:
    """Log a browser session in the way a user does, once per worker (set-up): GET
    authorize (-> the login page and the browser binding cookie), POST its form with the
    hidden fields (request id, CSRF token) and the credentials (-> 303 and the session
    cookie), GET where that points (-> 302 to the client with a code), redeem the code.
    Returns the Cookie header the flows send to the authorize endpoint."""
    cookies = _Cookies()
    verifier, challenge = _pkce_pair()
    state = secrets.token_urlsafe(16)
    path = _authorize_path(challenge, state)
    status, page = await client.request("GET", path)
    cookies.update(client.last_headers)
    if status != 200:
        raise BadResponse(f"login page: HTTP {status} (expected 200)")
    form = _LoginForm()
    form.feed(page.decode("utf-8", "replace"))
    if not form.action or not form.user_field or not form.password_field:
        raise BadResponse("login page: no login form with username and password fields")
    action = urlsplit(urljoin(path, form.action))
    action_path = action.path + (f"?{action.query}" if action.query else "")
    fields = {**form.hidden, form.user_field: job.username, form.password_field: job.password}
    status, _ = await client.request(
        "POST",
        action_path,
        urlencode(fields).encode(),
        FORM_TYPE,
        (("Cookie", cookies.header(action_path)),),
    )
    cookies.update(client.last_headers)
    location = _header(client, "location")
    if status not in (302, 303) or location is None:
        raise BadResponse(f"login form: HTTP {status} (expected a redirect)")
    if not any("session" in name for name in cookies.names()):
        raise BadResponse("login form: redirect without a session cookie")
    target = urlsplit(urljoin(action_path, location))
    next_path = target.path + (f"?{target.query}" if target.query else "")
    status, _ = await client.request(
        "GET", next_path, headers=(("Cookie", cookies.header(next_path)),)
    )
    cookies.update(client.last_headers)
    if status != 302:
        raise BadResponse(f"after login: HTTP {status} (expected 302 to the client)")
    await _redeem(client, _code_from(_header(client, "location"), state), verifier)
    return cookies.header(AUTHORIZE_PATH)


def _error_kind(exc: BaseException) -> str:
    if isinstance(exc, BadResponse):
        return str(exc)
    if isinstance(exc, trio.TooSlowError):
        return "timeout"
    return f"{type(exc).__name__}: {exc}"[:80]


# ------------------------------------------------------------------ load process


@dataclass
class _State:
    issued: int = 0
    deadline: float = math.inf  # trio.current_time(), not time.monotonic()


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _worker(
    job: Job,
    client: Client,
    token: list[str | None],
    state: _State,
    result: ProcResult,
    stop_event: Any,
) -> None:
    while state.issued < job.requests and trio.current_time() < state.deadline:
        if job.follower and stop_event.is_set():
            return
        state.issued += 1
        started = time.perf_counter()
        try:
            with trio.fail_after(job.timeout):
                if job.kind == "health":
                    await do_get(client, "/health")
                elif job.kind == "jwks":
                    await do_get(client, "/.well-known/jwks.json")
                elif job.kind == "login":
                    await do_login(client, job)
                elif job.kind == "client_credentials":
                    await do_client_credentials(client, job)
                elif job.kind == "introspection":
                    assert token[0] is not None
                    await do_introspect(client, job, token[0])
                elif job.kind == "code_flow":
                    assert token[0] is not None
                    await do_code_flow(client, token[0])
                else:
                    assert token[0] is not None
                    token[0] = await do_refresh(client, token[0])
        except Exception as exc:
            result.requests += 1
            result.errors[_error_kind(exc)] += 1
            client.drop()
            if job.kind == "refresh":
                # The chain is broken: start a new one (not counted as a request).
                try:
                    with trio.fail_after(job.timeout):
                        token[0] = await do_login(client, job)
                    result.relogins += 1
                except Exception as exc2:
                    result.setup_errors[f"re-login: {_error_kind(exc2)}"] += 1
                    return
            continue
        result.latencies.append(time.perf_counter() - started)
        result.requests += 1


async def _prepare(job: Job, client: Client, token: list[str | None], result: ProcResult) -> None:
    """Open the connection with one warm-up GET (the scenario's own endpoint for jwks,
    /health otherwise) and, for refresh, start a token chain; for introspection, get the
    access token to introspect; for code_flow, log the browser session in. Not measured,
    but the slowest warm-up is reported when it is slow (a cold cache shows up there)."""
    path = "/.well-known/jwks.json" if job.kind == "jwks" else "/health"
    try:
        started = time.perf_counter()
        with trio.fail_after(job.timeout):
            await do_get(client, path)
        result.warmup_max = max(result.warmup_max, time.perf_counter() - started)
        if job.kind == "refresh":
            with trio.fail_after(job.timeout):
                token[0] = await do_login(client, job)
        elif job.kind == "introspection":
            with trio.fail_after(job.timeout):
                token[0] = await do_client_credentials(client, job)
        elif job.kind == "code_flow":
            with trio.fail_after(job.timeout * BROWSER_LOGIN_STEPS):
                token[0] = await browser_login(client, job)
    except Exception as exc:
        result.setup_errors[f"set-up: {_error_kind(exc)}"] += 1
        client.drop()


async def run_job(job: Job, barrier: Any, stop_event: Any) -> ProcResult:
    result = ProcResult()
    async with contextlib.AsyncExitStack() as stack:
        clients: list[Client]
        if job.client == "httpx":
            import httpx

            shared = await stack.enter_async_context(
                httpx.AsyncClient(
                    base_url=job.target.base_url,
                    timeout=job.timeout,
                    limits=httpx.Limits(
                        max_connections=job.workers, max_keepalive_connections=job.workers
                    ),
                )
            )
            clients = [HttpxClient(shared) for _ in range(job.workers)]
        else:
            clients = [RawClient(job.target) for _ in range(job.workers)]
            for c in clients:
                stack.push_async_callback(c.aclose)
        tokens: list[list[str | None]] = [[None] for _ in clients]

        with trio.move_on_after(SETUP_SECONDS):
            async with trio.open_nursery() as nursery:
                for client, token in zip(clients, tokens, strict=True):
                    nursery.start_soon(_prepare, job, client, token, result)
        if job.kind in ("refresh", "introspection", "code_flow"):
            # Workers whose chain, token or session could not start do not run.
            live = [(c, t) for c, t in zip(clients, tokens, strict=True) if t[0] is not None]
        else:
            live = list(zip(clients, tokens, strict=True))

        await trio.to_thread.run_sync(barrier.wait, SETUP_SECONDS + 30)
        if not live:
            return result  # every set-up failed (counted); t_end == 0 marks "did not run"
        if job.start_delay:
            await trio.sleep(job.start_delay)

        state = _State()
        cpu0 = _cpu_seconds()
        result.t_start = time.monotonic()
        state.deadline = trio.current_time() + job.max_seconds  # trio's clock
        # Hard stop: each request is bounded by --timeout, so this only fires if a
        # re-login hangs; anything cut here is counted as an error, never dropped.
        with trio.move_on_at(state.deadline + 2 * job.timeout + 1) as hard_stop:
            async with trio.open_nursery() as nursery:
                for client, token in live:
                    nursery.start_soon(_worker, job, client, token, state, result, stop_event)
        if hard_stop.cancelled_caught:
            in_flight = state.issued - result.requests
            result.errors["cancelled in flight at the hard deadline"] += in_flight
            result.requests += in_flight
        result.t_end = time.monotonic()
        result.cpu_seconds = _cpu_seconds() - cpu0
        result.cut_by_time = state.issued < job.requests and not (
            job.follower and stop_event.is_set()
        )
        if job.leader:
            stop_event.set()
    return result


def child_main(index: int, job: Job, barrier: Any, stop_event: Any, results: Any) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
    try:
        result = trio.run(run_job, job, barrier, stop_event)
    except BaseException as exc:
        result = ProcResult(crashed=f"{type(exc).__name__}: {exc}"[:200])
        with contextlib.suppress(Exception):
            barrier.abort()
        if job.leader:
            stop_event.set()
    results.put((index, result))


# ------------------------------------------------------------------ the server


def _machine_busy_seconds() -> float | None:
    """CPU seconds all cores spent busy (not idle or iowait) since boot, from /proc/stat."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except (OSError, IndexError):
        return None
    ticks = [int(f) for f in fields]
    busy = sum(ticks) - ticks[3] - (ticks[4] if len(ticks) > 4 else 0)
    return busy / os.sysconf("SC_CLK_TCK")


def _proc_tree_cpu(root: int) -> float:
    """utime + stime (s) of ``root`` and all its descendants, from /proc."""
    stats: dict[int, tuple[int, float]] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            text = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        fields = text.rsplit(")", 1)[1].split()
        stats[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick)
    wanted = {root}
    changed = True
    while changed:
        changed = False
        for pid, (ppid, _) in stats.items():
            if ppid in wanted and pid not in wanted:
                wanted.add(pid)
                changed = True
    return sum(stats[pid][1] for pid in wanted if pid in stats)


class Server(benchlib.AuthlyServer):
    """``python -m authly serve`` in its own session, SQLite in a temporary directory."""

    def __init__(self, workers: int, host: str, launcher: str, with_clients: bool = False) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="authly-bench-")
        super().__init__(Path(self._tmp.name, "server.log"), host)
        self.workers = workers
        self.launcher = launcher
        self.with_clients = with_clients  # register bench-svc and bench-spa before start
        self.client_secret = secrets.token_urlsafe(32)
        self.version = "?"
        self.inherited = sorted(
            k
            for k in os.environ
            if k.startswith("AUTHLY_") and k not in ("AUTHLY_HOST", "AUTHLY_PORT")
        )
        self.stop_note = ""

    @property
    def target(self) -> Target:
        return Target(self.host, self.port)

    def command(self) -> list[str]:
        if self.launcher == "hypercorn":
            # `authly.app:create_app()`: hypercorn evals the name in the module's
            # namespace, which never reaches the lazy module __getattr__ for `app`.
            bind = f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"
            return [
                sys.executable,
                "-m",
                "hypercorn",
                "-k",
                "trio",
                "-w",
                str(self.workers),
                "-b",
                bind,
                "--graceful-timeout",
                "1",
                "authly.app:create_app()",
            ]
        return [*self.serve_command(), "--workers", str(self.workers)]

    @property
    def db_path(self) -> str:
        return f"{self._tmp.name}/bench.db"

    def register_clients(self) -> None:
        """Create the schema and the OAuth scenarios' clients in the server's SQLite file
        (the server migrates it again at start: nothing left to do)."""
        from authly.oauth.clients import hash_secret
        from authly.store import clients as client_repo
        from authly.store.clients import ClientRow
        from authly.store.db import connect
        from authly.store.migrations import migrate

        now = time.time()
        conn = connect(self.db_path)
        try:
            migrate(conn)
            client_repo.insert(
                conn,
                ClientRow(
                    client_id=SERVICE_CLIENT_ID,
                    name="bench service client",
                    secret_hash=hash_secret(self.client_secret),
                    auth_method="client_secret_basic",
                    redirect_uris=(),
                    grant_types=("client_credentials",),
                    scopes=tuple(SPA_SCOPE.split()),
                    first_party=False,
                    created_at=now,
                    updated_at=now,
                ),
            )
            client_repo.insert(
                conn,
                ClientRow(
                    client_id=SPA_CLIENT_ID,
                    name="bench single-page app",
                    secret_hash=None,
                    auth_method="none",
                    redirect_uris=(SPA_REDIRECT_URI,),
                    grant_types=("authorization_code", "refresh_token"),
                    scopes=tuple(SPA_SCOPE.split()),
                    first_party=True,
                    created_at=now,
                    updated_at=now,
                ),
            )
        finally:
            conn.close()

    def start(self) -> None:
        env = dict(os.environ)
        env.update(
            AUTHLY_DATABASE_URL=f"sqlite:///{self.db_path}",
            AUTHLY_ADMIN_USERNAME=self.username,
            AUTHLY_ADMIN_PASSWORD=self.password,
            AUTHLY_LOGIN_RATE_LIMIT="1000000",
            AUTHLY_TOKEN_RATE_LIMIT=TOKEN_RATE_LIMIT,
            AUTHLY_LOG_LEVEL="WARNING",
        )
        if self.with_clients:
            self.register_clients()
        self.launch(self.command(), env)
        try:
            health = self.wait_healthy()
        except benchlib.ServerError as exc:
            self.stop()
            raise SystemExit(f"bench: {exc}") from None
        self.version = str(health.get("version", "?"))

    def cpu_seconds(self) -> float | None:
        if self.proc is None or self.proc.poll() is not None:
            return None
        return _proc_tree_cpu(self.proc.pid)

    def stop(self) -> str:
        if self.proc is None:
            return self.stop_note
        if self.proc.poll() is None:
            self.stop_note = super().stop()
        if self.proc.returncode not in (0, -signal.SIGTERM) and not self.stop_note.startswith(
            "did NOT"
        ):
            self.stop_note += f" (exit status {self.proc.returncode})"
        return self.stop_note

    def cleanup(self) -> None:
        self._tmp.cleanup()


# ------------------------------------------------------------------ scenarios


@dataclass(frozen=True)
class Group:
    """One table row: ``concurrency`` workers doing ``kind``, split over processes."""

    label: str
    kind: str
    concurrency: int
    requests: int
    procs: int
    start_delay: float = 0.0
    follower: bool = False
    leader: bool = False
    extra_seconds: float = 0.0  # added to --max-seconds (a follower outlasts its leader)


@dataclass
class Row:
    label: str
    concurrency: int
    requests: int
    errors: int
    ok: int
    elapsed: float
    p50: float | None
    p99: float | None
    client_cpu: float | None  # share of one core, summed over load processes
    client_peak: float | None  # the busiest load process, share of one core
    procs: int
    server_cpu: float | None
    other_cpu: float | None  # the rest of the machine during the scenario (noise)
    notes: list[str] = field(default_factory=list)

    @property
    def rps(self) -> float:
        return self.ok / self.elapsed if self.elapsed > 0 else 0.0


def _split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def _percentile(sorted_values: list[float], p: float) -> float | None:
    if not sorted_values:
        return None
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def run_scenario(groups: list[Group], opts: argparse.Namespace, server: Server | None) -> list[Row]:
    ctx = mp.get_context("fork")
    jobs: list[tuple[int, Job]] = []
    for gi, group in enumerate(groups):
        procs = max(1, min(group.procs, group.concurrency))
        workers = _split(group.concurrency, procs)
        counts = [round(group.requests * w / group.concurrency) for w in workers]
        counts[-1] = group.requests - sum(counts[:-1])
        for w, n in zip(workers, counts, strict=True):
            job = Job(
                target=opts.target,
                kind=group.kind,
                workers=w,
                requests=n,
                max_seconds=opts.max_seconds + group.extra_seconds,
                timeout=opts.timeout,
                client=opts.client,
                username=opts.username or "",
                password=opts.password or "",
                start_delay=group.start_delay,
                follower=group.follower,
                leader=group.leader,
                client_secret=opts.client_secret,
            )
            jobs.append((gi, job))
    barrier = ctx.Barrier(len(jobs) + 1)
    stop_event = ctx.Event()
    results_q = ctx.Queue()
    procs = [
        ctx.Process(target=child_main, args=(i, job, barrier, stop_event, results_q), daemon=True)
        for i, (_, job) in enumerate(jobs)
    ]
    for p in procs:
        p.start()
    results: dict[int, ProcResult] = {}
    try:
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait(SETUP_SECONDS + 30)
        srv0 = server.cpu_seconds() if server else None
        busy0 = _machine_busy_seconds()
        t0 = time.monotonic()
        limit = t0 + opts.max_seconds + 2 * opts.timeout + 35
        while len(results) < len(jobs) and time.monotonic() < limit:
            try:
                index, result = results_q.get(timeout=max(0.1, limit - time.monotonic()))
            except queue_module.Empty:
                break
            results[index] = result
        srv1 = server.cpu_seconds() if server else None
        busy1 = _machine_busy_seconds()
        t1 = time.monotonic()
    finally:
        for p in procs:
            p.join(5)
            if p.is_alive():
                p.terminate()
                p.join(5)
    server_cpu = srv1 - srv0 if srv0 is not None and srv1 is not None else None
    # Everything else the machine did meanwhile (other people's work = noise).
    other_cpu = None
    if server_cpu is not None and busy0 is not None and busy1 is not None and t1 > t0:
        clients = sum(r.cpu_seconds for r in results.values())
        other_cpu = max(0.0, (busy1 - busy0) - server_cpu - clients) / (t1 - t0)

    rows = []
    for gi, group in enumerate(groups):
        mine = [(i, job) for i, (g, job) in enumerate(jobs) if g == gi]
        got = [results[i] for i, _ in mine if i in results]
        notes = []
        errors: Counter[str] = Counter()
        setup: Counter[str] = Counter()
        latencies: list[float] = []
        requests = relogins = 0
        for i, _ in mine:
            r = results.get(i)
            if r is None:
                notes.append(f"load process {i} returned no result (killed or hung)")
            elif r.crashed:
                notes.append(f"load process {i} crashed: {r.crashed}")
        for r in got:
            errors.update(r.errors)
            setup.update(r.setup_errors)
            latencies.extend(r.latencies)
            requests += r.requests
            relogins += r.relogins
        ran = [r for r in got if r.t_end > 0]
        elapsed = max(r.t_end for r in ran) - min(r.t_start for r in ran) if ran else 0.0
        cpu = sum(r.cpu_seconds for r in ran)
        # CPU shares over very short windows are meaningless (rusage ticks).
        peak = max(
            (r.cpu_seconds / (r.t_end - r.t_start) for r in ran if r.t_end - r.t_start >= 0.2),
            default=None,
        )
        if got and not ran:
            notes.append("no worker could start: every set-up failed")
        warmup = max((r.warmup_max for r in got), default=0.0)
        if warmup >= SLOW_WARMUP_SECONDS:
            notes.append(f"slowest warm-up request (not measured) took {warmup * 1000:.0f} ms")
        if any(r.cut_by_time for r in ran):
            notes.append(
                f"stopped by --max-seconds ({opts.max_seconds:g} s) "
                f"before {group.requests} requests"
            )
        if relogins:
            notes.append(f"{relogins} re-login(s) after a broken refresh chain (not counted)")
        for kind, n in sorted(errors.items(), key=lambda kv: -kv[1]):
            notes.append(f"error x{n}: {kind}")
        for kind, n in sorted(setup.items(), key=lambda kv: -kv[1]):
            notes.append(f"set-up error x{n} (also in errors): {kind}")
        if peak is not None and peak >= SATURATED_CORE:
            notes.append(
                f"a load process used {peak:.0%} of a core: this figure is bound by the client"
            )
        latencies.sort()
        rows.append(
            Row(
                label=group.label,
                concurrency=group.concurrency,
                requests=requests,
                errors=sum(errors.values()) + sum(setup.values()),
                ok=len(latencies),
                elapsed=elapsed,
                p50=_percentile(latencies, 50),
                p99=_percentile(latencies, 99),
                client_cpu=cpu / elapsed if elapsed >= 0.2 else None,
                client_peak=peak,
                procs=len(mine),
                server_cpu=server_cpu / (t1 - t0) if server_cpu is not None and t1 > t0 else None,
                other_cpu=other_cpu,
                notes=notes,
            )
        )
    return rows


def plan(opts: argparse.Namespace) -> Iterator[tuple[str, list[Group]]]:
    for kind in ("health", "jwks", "login", "refresh"):
        if kind not in opts.scenarios:
            continue
        n = opts.login_requests if kind == "login" else opts.requests
        for c in opts.concurrency:
            yield f"{kind} c={c}", [Group(kind, kind, c, n, opts.procs)]
    if "health_under_login" in opts.scenarios:
        bg = opts.bg_login_concurrency
        yield (
            f"health_under_login (c=1, {bg} logins in the background)",
            [
                Group(
                    "health, logins running",
                    "health",
                    1,
                    opts.requests,
                    1,
                    start_delay=0.5,  # let the background logins get going first
                    leader=True,
                ),
                Group(
                    "login, in background",
                    "login",
                    bg,
                    BACKGROUND_LOGIN_CAP,
                    opts.procs,
                    follower=True,
                    extra_seconds=2.0,  # runs until the health measurement ends
                ),
            ],
        )
    for kind in OAUTH_SCENARIOS:
        if kind in opts.scenarios:
            for c in opts.concurrency:
                yield f"{kind} c={c}", [Group(kind, kind, c, opts.requests, opts.procs)]


# ------------------------------------------------------------------ output


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.2f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


HEADERS = (
    "scenario",
    "concurrency",
    "requests",
    "errors",
    "req/s",
    "p50 ms",
    "p99 ms",
    "client CPU",
    "server CPU",
    "other CPU",
)


def _cells(row: Row) -> list[str]:
    return [
        row.label,
        str(row.concurrency),
        str(row.requests),
        str(row.errors),
        f"{row.rps:.0f}",
        _ms(row.p50),
        _ms(row.p99),
        _pct(row.client_cpu),
        _pct(row.server_cpu),
        _pct(row.other_cpu),
    ]


def _summary_notes(rows: list[Row]) -> list[str]:
    notes = []
    base = next((r for r in rows if r.label == "health" and r.concurrency == 1), None)
    busy = next((r for r in rows if r.label == "health, logins running"), None)
    if base and busy and base.p99 and busy.p99:
        notes.append(
            f"/health p99 at concurrency 1: {_ms(base.p99)} ms alone, {_ms(busy.p99)} ms while "
            f"logins run ({busy.p99 / base.p99:.1f}x); p50 {_ms(base.p50)} -> {_ms(busy.p50)} ms"
        )
    return notes


def render(
    rows: list[Row],
    opts: argparse.Namespace,
    server: Server | None,
    machine: dict[str, str],
    started: datetime,
    extra: list[str],
) -> str:
    table = [list(HEADERS)] + [_cells(r) for r in rows]
    client = (
        "raw trio-socket HTTP/1.1 client" if opts.client == "raw" else "httpx.AsyncClient on trio"
    )
    setup = [
        f"load generator: {client}, up to {opts.procs} process(es) per scenario; "
        f"limits: {opts.requests} requests ({opts.login_requests} for login) or "
        f"{opts.max_seconds:g} s per scenario, {opts.timeout:g} s per request",
    ]
    if server:
        inherited = ", ".join(server.inherited) or "none"
        how = (
            f"python -m authly serve --workers {server.workers}"
            if server.launcher == "serve"
            else f"python -m hypercorn -k trio -w {server.workers} 'authly.app:create_app()'"
        )
        setup.append(
            f"server: self-started `{how}` "
            f"(authly {server.version}), SQLite in a temp dir, AUTHLY_LOGIN_RATE_LIMIT=1000000, "
            f"AUTHLY_TOKEN_RATE_LIMIT={TOKEN_RATE_LIMIT}, "
            f"AUTHLY_LOG_LEVEL=WARNING; AUTHLY_* inherited from the environment: {inherited}"
        )
    else:
        setup.append(f"server: {opts.url} (not started by this script; server CPU not measured)")
    setup.append(
        "req/s counts 2xx answers; p50/p99 over 2xx answers; errors = non-2xx, timeouts, "
        "connection errors, unusable bodies (set-up included); CPU = share of one core "
        "(client: all load processes; server: its whole process tree; other: the rest "
        f"of the machine, out of {machine['nproc']} cores: other people's load = noise)"
    )
    if any(r.label == "code_flow" for r in rows):
        setup.append(
            "code_flow: one request = one complete flow (GET authorize with the session "
            "cookie -> 302 with a code, then POST token with the code_verifier); req/s = "
            "flows/s, p50/p99 per flow; any other answer to either step is an error"
        )
    notes = []
    for r in rows:
        notes += [f"{r.label.strip()} c={r.concurrency}: {n}" for n in r.notes]
    notes += _summary_notes(rows) + extra

    out: list[str] = []
    if opts.markdown:
        out.append(
            f"**Machine:** {machine['nproc']} CPUs ({machine['cpu']}), {machine['os']}, "
            f"Python {machine['python']} · **Date:** {started:%Y-%m-%d %H:%M} UTC · "
            f"**Command:** `{shlex.join(sys.orig_argv)}`"
        )
        out.append("")
        out += [f"- {s}" for s in setup]
        out.append(f"- load average at start: {machine['load']}")
        out.append("")
        out.append("| " + " | ".join(table[0]) + " |")
        out.append("|" + "|".join(["---"] + ["---:"] * (len(HEADERS) - 1)) + "|")
        for cells in table[1:]:
            out.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        if notes:
            out.append("")
            out += [f"- {n}" for n in notes]
    else:
        widths = [max(len(row[i]) for row in table) for i in range(len(HEADERS))]
        for i, cells in enumerate(table):
            out.append(
                "  ".join(
                    c.ljust(w) if j == 0 else c.rjust(w)
                    for j, (c, w) in enumerate(zip(cells, widths, strict=True))
                )
            )
            if i == 0:
                out.append("  ".join("-" * w for w in widths))
        out.append("")
        out.append(
            f"machine: {machine['nproc']} CPUs ({machine['cpu']}), {machine['os']}, "
            f"Python {machine['python']}, load average at start {machine['load']}"
        )
        out.append(f"date: {started:%Y-%m-%d %H:%M:%S} UTC")
        out.append(f"command: {shlex.join(sys.orig_argv)}")
        out += setup
        if notes:
            out.append("notes:")
            out += [f"  - {n}" for n in notes]
    return "\n".join(out)


# ------------------------------------------------------------------ main


def _scenario_list(text: str) -> list[str]:
    values = [p.strip() for p in text.split(",") if p.strip()]
    unknown = [v for v in values if v not in SCENARIOS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown scenario(s) {unknown}; pick from {SCENARIOS}")
    return values


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Benchmark Authly's core endpoints.",
        epilog=__doc__.split("Examples:")[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--url", help="bench this running server instead of starting one")
    p.add_argument("--username", help="login for --url (default admin)")
    p.add_argument(
        "--password",
        default=os.environ.get("AUTHLY_BENCH_PASSWORD"),
        help="password for --url (default $AUTHLY_BENCH_PASSWORD); without it, login "
        "scenarios are skipped. The server needs a high AUTHLY_LOGIN_RATE_LIMIT (the "
        "default 5 lets at most 5 logins be in flight per IP: the rest get 429)",
    )
    p.add_argument("--workers", type=int, default=1, help="server worker processes (default 1)")
    p.add_argument("--host", default="127.0.0.1", help="address a self-started server binds")
    p.add_argument(
        "--launcher",
        choices=("serve", "hypercorn"),
        default="serve",
        help="how to start the server: `python -m authly serve` (default) or "
        "`python -m hypercorn -k trio -w N 'authly.app:create_app()'`",
    )
    p.add_argument(
        "--concurrency", type=benchlib.int_list(), default=[1, 32], help="levels (default 1,32)"
    )
    p.add_argument(
        "--scenarios",
        type=_scenario_list,
        default=list(SCENARIOS),
        help=f"comma-separated subset of {','.join(SCENARIOS)}",
    )
    p.add_argument("--requests", type=int, default=2000, help="per scenario (default 2000)")
    p.add_argument(
        "--login-requests", type=int, default=200, help="per login scenario (default 200)"
    )
    p.add_argument("--max-seconds", type=float, default=15.0, help="per scenario (default 15)")
    p.add_argument("--timeout", type=float, default=10.0, help="per request (default 10 s)")
    p.add_argument(
        "--bg-login-concurrency",
        type=int,
        default=8,
        help="background logins in health_under_login (default 8)",
    )
    p.add_argument(
        "--procs",
        type=int,
        default=1,
        help="load-generator processes per scenario, concurrency split between them (default 1)",
    )
    p.add_argument("--client", choices=("raw", "httpx"), default="raw")
    p.add_argument("--markdown", action="store_true", help="print a Markdown table")
    opts = p.parse_args(argv)
    for name in ("requests", "login_requests", "workers", "procs", "bg_login_concurrency"):
        if getattr(opts, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    if opts.max_seconds <= 0 or opts.timeout <= 0:
        p.error("--max-seconds and --timeout must be positive")
    if opts.url:
        parts = urlsplit(opts.url)
        if parts.scheme != "http" or not parts.hostname:
            p.error("--url must be http://host:port (https is not supported)")
        opts.target = Target(parts.hostname, parts.port or 80)
        opts.username = opts.username or "admin"
    return opts


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    machine = benchlib.machine()
    started = datetime.now(UTC)
    extra: list[str] = []
    server: Server | None = None
    if opts.url:
        status, body = benchlib.http_get(opts.target.host, opts.target.port, "/health")
        if status != 200:
            print(f"bench: {opts.url}/health answered {status or body.decode()}", file=sys.stderr)
            return 2
        if not opts.password:
            skipped = [s for s in opts.scenarios if s in ("login", "refresh", "health_under_login")]
            if skipped:
                extra.append(f"skipped {', '.join(skipped)}: no --password for {opts.url}")
                opts.scenarios = [s for s in opts.scenarios if s not in skipped]
        skipped = [s for s in opts.scenarios if s in OAUTH_SCENARIOS]
        if skipped:
            extra.append(
                f"skipped {', '.join(skipped)}: their clients are registered only in the "
                "database of a server this script starts"
            )
            opts.scenarios = [s for s in opts.scenarios if s not in skipped]
        opts.client_secret = ""
    else:
        with_clients = any(s in OAUTH_SCENARIOS for s in opts.scenarios)
        server = Server(opts.workers, opts.host, opts.launcher, with_clients)
        opts.target = server.target
        opts.username, opts.password = server.username, server.password
        opts.client_secret = server.client_secret
    rows: list[Row] = []
    interrupted = False
    try:
        if server:
            print(f"bench: starting {shlex.join(server.command())}", file=sys.stderr)
            server.start()
        for title, groups in plan(opts):
            print(f"bench: {title} ...", file=sys.stderr, flush=True)
            new = run_scenario(groups, opts, server)
            for r in new:
                print(
                    f"bench:   {r.label.strip()}: {r.requests} requests, {r.errors} errors, "
                    f"{r.rps:.0f} req/s, p99 {_ms(r.p99)} ms",
                    file=sys.stderr,
                    flush=True,
                )
            rows += new
            if server and server.proc and server.proc.poll() is not None:
                extra.append(f"the server exited with {server.proc.returncode} during {title}")
                break
    except KeyboardInterrupt:
        interrupted = True
        extra.append("interrupted (Ctrl-C): the table is partial")
    finally:
        if server:
            server.stop()
            extra.append(f"server {server.stop_note}")
            problems = server.log_problems()
            if problems:
                extra.append(f"server logged {len(problems)} error line(s), first: {problems[0]}")
            server.cleanup()
    print(render(rows, opts, server, machine, started, extra))
    if interrupted:
        return 130
    failed = any(r.errors for r in rows) or any("NOT" in e or "exited" in e for e in extra)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
