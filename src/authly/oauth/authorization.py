"""Authorization requests (RFC 6749 §4.1.1 as profiled by OAuth 2.1) and codes.

Validation happens in two stages, because where an error may be sent depends on it:

1. ``client_id`` and ``redirect_uri`` — until both are known good, an error must NOT be
   redirected anywhere (an open redirector otherwise): ``UnsafeAuthorizationError``,
   which the web layer shows as an HTML page.
2. everything else — errors go back to the client's redirect URI with ``error``,
   ``state`` and ``iss`` (RFC 9207): ``RedirectableError``.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass

from authly.errors import AuthlyError, InvalidRequest, OAuthError
from authly.oauth import pkce
from authly.oauth.clients import redirect_uri_matches
from authly.oauth.dpop_binding import check_jkt_parameter
from authly.oauth.resources import resolve as resolve_resources
from authly.oauth.scopes import describe_scope, format_scope, parse_scope
from authly.oidc.claims import STANDARD_CLAIMS, parse_claims_request
from authly.oidc.discovery import PROMPT_VALUES
from authly.store import clients as client_repo
from authly.store import codes as code_repo
from authly.store import scopes as scope_repo
from authly.store.codes import CodeGrant, LoginEvent
from authly.store.db import Database

CODE_TTL = 60.0
MAX_STATE = 1024
MAX_NONCE = 512
MAX_LOGIN_HINT = 255


class UnsafeAuthorizationError(AuthlyError):
    """Raised when the client or redirect URI is unknown: show a page, never redirect."""

    def __init__(self, description: str) -> None:
        self.description = description
        super().__init__(description)


# How the answer travels (OAuth 2.0 Multiple Response Types §2.1, Form Post Response
# Mode): in the redirect's query, or as an auto-submitted HTML form.
RESPONSE_MODES = ("query", "form_post")


class RedirectableError(AuthlyError):
    """An error to send back to the (verified) redirect URI."""

    def __init__(
        self,
        error: str,
        description: str,
        redirect_uri: str,
        state: str | None,
        response_mode: str = "query",
    ):
        self.error = error
        self.description = description
        self.redirect_uri = redirect_uri
        self.state = state
        self.response_mode = response_mode
        super().__init__(description)


@dataclass(frozen=True)
class AuthorizationRequest:
    client_id: str
    client_name: str
    first_party: bool
    redirect_uri: str  # where to send the answer
    redirect_uri_given: str  # as sent ("" if omitted): must be repeated at the token endpoint
    scope: str
    state: str
    code_challenge: str
    # OpenID Connect (empty when not asked for): nonce, prompt values, max_age, login_hint
    nonce: str = ""
    prompt: str = ""
    max_age: int | None = None
    login_hint: str = ""
    # The claims parameter (Core §5.5): standard claims asked for by name, per target.
    claims_userinfo: str = ""
    claims_id_token: str = ""
    response_mode: str = "query"
    # The resources asked for (RFC 8707, oauth/resources.py), space-separated.
    resources: str = ""
    # DPoP (RFC 9449 §10): the key the code is for ('' = any, or none).
    dpop_jkt: str = ""

    def error(self, error: str, description: str) -> RedirectableError:
        """An error answer to this (verified) request."""
        return RedirectableError(
            error, description, self.redirect_uri, self.state or None, self.response_mode
        )

    @property
    def is_openid(self) -> bool:
        return "openid" in self.scope.split(" ")

    def prompts(self, value: str) -> bool:
        return value in self.prompt.split(" ")

    def to_session(self) -> dict[str, str]:
        data = asdict(self)
        data["first_party"] = "1" if self.first_party else ""
        data["max_age"] = "" if self.max_age is None else str(self.max_age)
        return data

    @classmethod
    def from_session(cls, data: Mapping[str, str]) -> AuthorizationRequest:
        return cls(
            client_id=data["client_id"],
            client_name=data["client_name"],
            first_party=bool(data.get("first_party")),
            redirect_uri=data["redirect_uri"],
            redirect_uri_given=data["redirect_uri_given"],
            scope=data["scope"],
            state=data["state"],
            code_challenge=data["code_challenge"],
            nonce=data.get("nonce", ""),
            prompt=data.get("prompt", ""),
            max_age=int(data["max_age"]) if data.get("max_age") else None,
            login_hint=data.get("login_hint", ""),
            claims_userinfo=data.get("claims_userinfo", ""),
            claims_id_token=data.get("claims_id_token", ""),
            response_mode=data.get("response_mode", "query"),
            resources=data.get("resources", ""),
            dpop_jkt=data.get("dpop_jkt", ""),
        )


@dataclass(frozen=True)
class _OpenID:
    nonce: str
    prompt: str
    max_age: int | None
    login_hint: str
    claims_userinfo: str
    claims_id_token: str


def _openid_parameters(params: Mapping[str, str]) -> _OpenID:
    """nonce, prompt, max_age, login_hint (OIDC Core §3.1.2.1) and claims (§5.5);
    InvalidRequest if one is bad."""
    nonce = params.get("nonce") or ""
    if len(nonce) > MAX_NONCE:
        raise InvalidRequest(f"nonce is longer than {MAX_NONCE} characters.")
    prompts = (params.get("prompt") or "").split()
    unknown = [p for p in prompts if p not in PROMPT_VALUES]
    if unknown:
        raise InvalidRequest(
            f"Unsupported prompt value {unknown[0][:32]!r}; supported: {', '.join(PROMPT_VALUES)}."
        )
    if "none" in prompts and len(set(prompts)) > 1:
        raise InvalidRequest("prompt=none cannot be combined with other values.")
    max_age_text = params.get("max_age")
    max_age = None
    if max_age_text:
        if not max_age_text.isdigit() or len(max_age_text) > 10:
            raise InvalidRequest("max_age must be a whole number of seconds.")
        max_age = int(max_age_text)
    hint = (params.get("login_hint") or "")[:MAX_LOGIN_HINT]
    claims = parse_claims_request(params.get("claims"))

    def asked(target: str) -> str:
        return " ".join(sorted(claims.names(target) & STANDARD_CLAIMS)) if claims else ""

    prompt = " ".join(dict.fromkeys(prompts))
    return _OpenID(nonce, prompt, max_age, hint, asked("userinfo"), asked("id_token"))


async def validate_authorization_request(
    db: Database,
    params: Mapping[str, str],
    *,
    pushed: bool = False,
    require_pushed: bool = False,
    resources: Sequence[str] = (),
) -> AuthorizationRequest:
    """Check an authorization request; see the module docstring for error kinds.

    ``pushed``: it was sent to the pushed authorization request endpoint (RFC 9126,
    oauth/par.py). A request that was not is refused (``invalid_request``) when
    ``require_pushed`` (AUTHLY_REQUIRE_PAR) or the client's own
    ``require_pushed_authorization_requests`` says every request must be pushed.
    """
    client_id = params.get("client_id") or ""
    client = await db.run(client_repo.get, client_id) if 0 < len(client_id) <= 128 else None
    if client is None:
        raise UnsafeAuthorizationError("Unknown client.")
    given = params.get("redirect_uri") or ""
    if given:
        if not redirect_uri_matches(client, given):
            raise UnsafeAuthorizationError("The redirect_uri is not registered for this client.")
        redirect_uri = given
    elif len(client.redirect_uris) == 1:
        redirect_uri = client.redirect_uris[0]
    else:
        raise UnsafeAuthorizationError(
            "redirect_uri is required: the client has no single registered redirect URI."
        )
    state = params.get("state") or ""
    mode = params.get("response_mode") or "query"
    known_mode = mode if mode in RESPONSE_MODES else "query"

    def fail(error: str, description: str) -> RedirectableError:
        return RedirectableError(error, description, redirect_uri, state or None, known_mode)

    if len(state) > MAX_STATE:
        raise RedirectableError(
            "invalid_request", "state is too long.", redirect_uri, None, known_mode
        )
    if mode not in RESPONSE_MODES:
        raise fail("invalid_request", f"response_mode must be one of: {', '.join(RESPONSE_MODES)}.")
    if not pushed and (require_pushed or client.require_pushed_authorization_requests):
        raise fail(
            "invalid_request",
            "Authorization requests must be pushed first (RFC 9126): use request_uri.",
        )
    if not params.get("response_type"):
        raise fail("invalid_request", "response_type is required.")
    if params.get("response_type") != "code":
        raise fail("unsupported_response_type", "Only response_type=code is supported.")
    if "authorization_code" not in client.grant_types:
        raise fail("unauthorized_client", "This client may not use the authorization code grant.")
    try:
        challenge = pkce.check_challenge(
            params.get("code_challenge"), params.get("code_challenge_method")
        )
        requested = parse_scope(params.get("scope"))
        oidc = _openid_parameters(params)
        dpop_jkt = check_jkt_parameter(params.get("dpop_jkt"))
    except OAuthError as exc:
        raise fail(exc.error, exc.description) from None
    allowed = frozenset(client.scopes)
    if requested is None:
        registry = await db.run(scope_repo.list_all)
        requested = frozenset(s.name for s in registry if s.is_default) & allowed
    extra = requested - allowed
    if extra:
        raise fail("invalid_scope", f"Scope not allowed for this client: {describe_scope(extra)}")
    try:  # RFC 8707: the resources named, and the scope they allow
        targets = await resolve_resources(db, resources)
        requested = targets.check(requested, explicit=bool(params.get("scope")))
    except OAuthError as exc:
        raise fail(exc.error, exc.description) from None
    return AuthorizationRequest(
        client_id=client.client_id,
        client_name=client.name,
        first_party=client.first_party,
        redirect_uri=redirect_uri,
        redirect_uri_given=given,
        scope=format_scope(requested),
        state=state,
        code_challenge=challenge,
        nonce=oidc.nonce,
        prompt=oidc.prompt,
        max_age=oidc.max_age,
        login_hint=oidc.login_hint,
        claims_userinfo=oidc.claims_userinfo,
        claims_id_token=oidc.claims_id_token,
        response_mode=mode,
        resources=" ".join(targets.resources),
        dpop_jkt=dpop_jkt,
    )


def hash_code(code: str) -> str:
    return hashlib.sha256(code.encode("utf-8")).hexdigest()


class AuthorizationCodes:
    def __init__(
        self, db: Database, *, ttl: float = CODE_TTL, now: Callable[[], float] = time.time
    ) -> None:
        self._db = db
        self._ttl = ttl
        self._now = now

    async def create(
        self, request: AuthorizationRequest, user_id: str, login: LoginEvent | None = None
    ) -> str:
        """A fresh single-use code for ``request`` approved by ``user_id``, who signed
        in as ``login`` describes (what the ID token will say about it)."""
        code = secrets.token_urlsafe(32)
        grant = CodeGrant(
            client_id=request.client_id,
            user_id=user_id,
            redirect_uri=request.redirect_uri_given,
            scope=request.scope,
            code_challenge=request.code_challenge,
            nonce=request.nonce or None,
            auth_time=login.auth_time if login else None,
            session_sid=login.sid if login else None,
            claims_userinfo=request.claims_userinfo,
            claims_id_token=request.claims_id_token,
            resources=tuple(request.resources.split()),
            dpop_jkt=request.dpop_jkt or None,
        )
        now = self._now()
        await self._db.run(code_repo.insert, hash_code(code), grant, now, now + self._ttl)
        return code


def check_code_text(code: str | None) -> str:
    if not code or len(code) > 256:
        raise InvalidRequest("Missing or malformed parameter: code.")
    return code
