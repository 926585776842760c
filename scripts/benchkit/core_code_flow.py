"""The code-flow scenarios of scripts/bench_core.py: complete authorization-code + PKCE
(S256) flows with a logged-in browser session. ``code_flow``: the first-party public
client bench-spa (OAuth only); ``oidc_flow``: the first-party public client bench-rp with
``scope=openid profile email`` and a nonce, whose token response must carry an ID token
with that nonce.

Set-up, once per worker (``browser_login``): log a browser session in the way a user
does, through the HTML login form. Measured (``code_flow``, ``oidc_flow``): GET the
authorize endpoint with the session cookie (a 302 to the redirect URI with ``code`` and
the same ``state``), then redeem the code with the code_verifier. One request of the
table = one flow.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import html.parser
import json
import secrets
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

from benchkit.core_requests import (
    FORM_TYPE,
    RP_CLIENT_ID,
    RP_SCOPE,
    TOKEN_PATH,
    BadResponse,
    token_field,
)
from benchkit.httpclient import Client

if TYPE_CHECKING:
    from benchkit.core_load import Job

AUTHORIZE_PATH = "/api/v1/oauth/authorize"
SPA_CLIENT_ID = "bench-spa"  # public, first party
SPA_REDIRECT_URI = "http://127.0.0.1:9/cb"  # never contacted: the 302 Location is parsed
SPA_SCOPE = "profile email"
BROWSER_LOGIN_STEPS = 4  # requests of one browser login (set-up): see browser_login


def pkce_pair() -> tuple[str, str]:
    """(code_verifier, S256 code_challenge), RFC 7636 §4.1-4.2."""
    verifier = secrets.token_urlsafe(48)  # 64 characters
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def authorize_path(challenge: str, state: str, client_id: str = SPA_CLIENT_ID, **oidc: str) -> str:
    """The authorization request; ``oidc``: extra parameters (scope, nonce)."""
    query = urlencode(
        {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": SPA_REDIRECT_URI,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "state": state,
            **oidc,
        }
    )
    return f"{AUTHORIZE_PATH}?{query}"


def header_of(client: Client, name: str) -> str | None:
    return next((v for k, v in client.last_headers if k == name), None)


def code_from(location: str | None, state: str) -> str:
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


async def redeem(client: Client, code: str, verifier: str, client_id: str = SPA_CLIENT_ID) -> bytes:
    """The code exchange; the token response (it must carry an access token)."""
    body = urlencode(
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": SPA_REDIRECT_URI,
            "client_id": client_id,
            "code_verifier": verifier,
        }
    ).encode()
    status, payload = await client.request("POST", TOKEN_PATH, body, FORM_TYPE)
    if not 200 <= status < 300:
        raise BadResponse(f"token: HTTP {status}")
    token_field(payload, "access_token")
    return payload


async def flow(client: Client, cookie: str | None, client_id: str, **oidc: str) -> bytes:
    """One complete flow with a logged-in browser session (``cookie``: its Cookie
    header): GET authorize -> 302 to the redirect URI with a code, then the exchange.
    Returns the token response."""
    assert cookie is not None
    verifier, challenge = pkce_pair()
    state = secrets.token_urlsafe(16)
    path = authorize_path(challenge, state, client_id, **oidc)
    status, _ = await client.request("GET", path, headers=(("Cookie", cookie),))
    if status != 302:
        lost = " (login page: the session is gone)" if status == 200 else ""
        raise BadResponse(f"authorize: HTTP {status}{lost}")
    code = code_from(header_of(client, "location"), state)
    return await redeem(client, code, verifier, client_id)


async def code_flow(client: Client, job: Job, cookie: str | None) -> None:
    """An OAuth code flow of bench-spa (no scope parameter: the client's default)."""
    await flow(client, cookie, SPA_CLIENT_ID)


def id_token_claims(payload: bytes) -> dict[str, object]:
    """The claims of the token response's ID token, not verified (the bench only checks
    that one came back, for this request)."""
    token = token_field(payload, "id_token")
    try:
        part = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except (IndexError, ValueError):
        raise BadResponse("token: id_token is not a JWT") from None
    if not isinstance(claims, dict):
        raise BadResponse("token: id_token claims are not an object")
    return claims


async def oidc_flow(client: Client, job: Job, cookie: str | None) -> None:
    """An OpenID Connect code flow of bench-rp (scope openid profile email, a nonce);
    the token response must carry an ID token with that nonce."""
    nonce = secrets.token_urlsafe(16)
    payload = await flow(client, cookie, RP_CLIENT_ID, scope=RP_SCOPE, nonce=nonce)
    if id_token_claims(payload).get("nonce") != nonce:
        raise BadResponse("token: id_token without the request's nonce")


class Cookies:
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


class LoginForm(html.parser.HTMLParser):
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


async def browser_login(client: Client, job: Job, token: str | None = None) -> str:
    """Log a browser session in the way a user does, once per worker (set-up): GET
    authorize (-> the login page and the browser binding cookie), POST its form with the
    hidden fields (request id, CSRF token) and the credentials (-> 303 and the session
    cookie), GET where that points (-> 302 to the client with a code), redeem the code.
    Returns the Cookie header the flows send to the authorize endpoint."""
    cookies = Cookies()
    verifier, challenge = pkce_pair()
    state = secrets.token_urlsafe(16)
    path = authorize_path(challenge, state)
    status, page = await client.request("GET", path)
    cookies.update(client.last_headers)
    if status != 200:
        raise BadResponse(f"login page: HTTP {status} (expected 200)")
    form = LoginForm()
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
    location = header_of(client, "location")
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
    await redeem(client, code_from(header_of(client, "location"), state), verifier)
    return cookies.header(AUTHORIZE_PATH)
