"""The values a client or scope may be registered with: parse and check (pure).

A client's registrable values are the fields of ``ClientRow.public()`` (what the admin
API shows is what it accepts): ``name``, ``client_type``, ``token_endpoint_auth_method``,
``redirect_uris``, ``grant_types``, ``scopes``, ``first_party``,
``id_token_signed_response_alg``, and for OpenID Connect logout
``post_logout_redirect_uris`` (the same strict form as redirect URIs),
``backchannel_logout_uri`` (``https``, or ``http`` on a loopback host; null to remove)
and ``backchannel_logout_session_required``, and for ``private_key_jwt`` ``jwks`` or
``jwks_uri`` (oauth/client_keys.py; null to remove),
``require_pushed_authorization_requests`` (RFC 9126 §6), and
``dpop_bound_access_tokens`` (RFC 9449 §5.2: every token request needs a DPoP proof).
Unknown fields are refused, so a typo (``redirect_uri``) is an error rather than a silent no-op.

Rules (checked on every create and update, against the whole resulting client):

- public clients authenticate with ``none`` and may not use ``client_credentials``;
  confidential ones use ``client_secret_basic`` (default), ``client_secret_post``,
  ``client_secret_jwt`` or ``private_key_jwt`` (RFC 7523 §2.2; no secret, but exactly one
  of ``jwks`` and ``jwks_uri``, which no other client may have);
- ``authorization_code`` needs at least one redirect URI (RFC 6749 §3.1.2; OAuth 2.1
  requires registration); ``refresh_token`` needs a grant that issues refresh tokens;
- the device code grant (``urn:ietf:params:oauth:grant-type:device_code``, RFC 8628)
  needs no redirect URI and suits public and confidential clients alike; it issues
  refresh tokens;
- ``require_pushed_authorization_requests`` needs ``authorization_code`` (it is about
  the authorization endpoint);
- ``password`` and the ``admin`` scope are for first-party clients only: the first
  hands the user's password to the client, the second lets it administer the server;
- every scope must be in the registry; a client's type cannot change (create a new
  client instead: a public client turned confidential would keep old public tokens).

Every failure is InvalidRequest (400) naming the problem.
"""

from __future__ import annotations

import re
import secrets
import string
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from authly.errors import InvalidRequest
from authly.oauth import redirect_uris
from authly.oauth.client_keys import JWT_METHODS, check_jwks, check_jwks_uri, check_method_keys
from authly.oauth.grants import GRANTS
from authly.oidc.id_tokens import ID_TOKEN_ALGS
from authly.store.clients import ClientRow
from authly.store.scopes import Scope
from authly.users.roles import ADMIN_SCOPE

MAX_NAME = 200
MAX_REDIRECT_URIS = 20
MAX_REDIRECT_URI = 2000
MAX_CLIENT_SCOPES = 50
MAX_SCOPE_NAME = 64
MAX_DESCRIPTION = 200
MAX_CLIENT_ID = 128
CLIENT_ID_LENGTH = 22
_ID_ALPHABET = string.ascii_letters + string.digits

DEFAULT_GRANT_TYPES = ("authorization_code", "refresh_token")
CONFIDENTIAL_METHODS = ("client_secret_basic", "client_secret_post", *JWT_METHODS)
FIRST_PARTY_GRANTS = frozenset(g.name for g in GRANTS.values() if g.first_party_only)
CONFIDENTIAL_GRANTS = frozenset(g.name for g in GRANTS.values() if g.confidential_only)
REFRESH_ISSUING_GRANTS = frozenset(g.name for g in GRANTS.values() if g.issues_refresh)
FIRST_PARTY_SCOPES = frozenset({ADMIN_SCOPE})
# Scopes the server's own code gives meaning to: never deleted through the API.
BUILT_IN_SCOPES = frozenset(
    {"openid", "profile", "email", "address", "phone", "offline_access", ADMIN_SCOPE}
)

CLIENT_FIELDS = frozenset(
    {
        "name",
        "client_type",
        "token_endpoint_auth_method",
        "redirect_uris",
        "grant_types",
        "scopes",
        "first_party",
        "id_token_signed_response_alg",
        "post_logout_redirect_uris",
        "backchannel_logout_uri",
        "backchannel_logout_session_required",
        "jwks",
        "jwks_uri",
        "require_pushed_authorization_requests",
        "dpop_bound_access_tokens",
    }
)
SCOPE_FIELDS = frozenset({"name", "description", "default"})

# scope-token = 1*( %x21 / %x23-5B / %x5D-7E )  (RFC 6749 §3.3)
_SCOPE_TOKEN = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]+$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check_fields(body: Mapping[str, Any], allowed: frozenset[str]) -> None:
    """InvalidRequest naming the fields of an admin API body that are not ``allowed``."""
    unknown = sorted(set(body) - allowed)
    if unknown:
        shown = ", ".join(repr(name[:64]) for name in unknown[:5])
        raise InvalidRequest(f"Unknown or read-only field(s): {shown}.")


def _text(value: Any, field: str, max_length: int) -> str:
    if not isinstance(value, str):
        raise InvalidRequest(f"Field {field} must be a string.")
    text = value.strip()
    if not 1 <= len(text) <= max_length:
        raise InvalidRequest(f"Field {field} must be 1 to {max_length} characters.")
    if _CONTROL.search(text):
        raise InvalidRequest(f"Field {field} must not contain control characters.")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from a JSON \uD800 escape
        raise InvalidRequest(f"Field {field} is not valid Unicode text.") from None
    return text


def _flag(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidRequest(f"Field {field} must be true or false.")
    return value


def _strings(value: Any, field: str, max_items: int, max_length: int) -> tuple[str, ...]:
    """A JSON array of non-empty strings, duplicates dropped, order kept."""
    if not isinstance(value, list):
        raise InvalidRequest(f"Field {field} must be an array of strings.")
    if len(value) > max_items:
        raise InvalidRequest(f"Field {field} may hold at most {max_items} entries.")
    items: list[str] = []
    for item in value:
        if not isinstance(item, str) or not item or len(item) > max_length:
            raise InvalidRequest(
                f"Field {field} must hold strings of 1 to {max_length} characters."
            )
        if item not in items:
            items.append(item)
    return tuple(items)


def check_redirect_uri(uri: str) -> str:
    """A registrable redirect URI (see oauth/redirect_uris.py)."""
    return redirect_uris.check_registrable(uri)


def check_backchannel_uri(uri: str) -> str:
    """A back-channel logout URI (Back-Channel Logout §2.2): the redirect URIs' strict
    form, and ``https`` (``http`` only on a loopback host)."""
    checked = redirect_uris.check_registrable(uri)
    if redirect_uris.parse(checked).scheme not in ("http", "https"):
        raise InvalidRequest("Field backchannel_logout_uri must be an https URI.")
    return checked


def check_scope_name(value: Any) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_SCOPE_NAME:
        raise InvalidRequest(f"Field name must be 1 to {MAX_SCOPE_NAME} characters.")
    if not _SCOPE_TOKEN.match(value):
        raise InvalidRequest(
            "A scope name is printable ASCII without spaces, quotes or backslashes (RFC 6749 §3.3)."
        )
    return value


@dataclass(frozen=True)
class ClientValues:
    """The registrable values of one client, before the rules are checked."""

    name: str
    confidential: bool
    auth_method: str
    redirect_uris: tuple[str, ...]
    grant_types: tuple[str, ...]
    scopes: tuple[str, ...]
    first_party: bool
    id_token_alg: str = "RS256"  # noqa: S105 (an algorithm name)
    post_logout_redirect_uris: tuple[str, ...] = ()
    backchannel_logout_uri: str | None = None
    backchannel_logout_session_required: bool = False
    jwks: str | None = None
    jwks_uri: str | None = None
    require_pushed_authorization_requests: bool = False
    dpop_bound_access_tokens: bool = False

    @classmethod
    def of(cls, row: ClientRow) -> ClientValues:
        return cls(
            name=row.name,
            confidential=row.is_confidential,
            auth_method=row.auth_method,
            redirect_uris=row.redirect_uris,
            grant_types=row.grant_types,
            scopes=row.scopes,
            first_party=row.first_party,
            id_token_alg=row.id_token_signed_response_alg,
            post_logout_redirect_uris=row.post_logout_redirect_uris,
            backchannel_logout_uri=row.backchannel_logout_uri,
            backchannel_logout_session_required=row.backchannel_logout_session_required,
            jwks=row.jwks,
            jwks_uri=row.jwks_uri,
            require_pushed_authorization_requests=row.require_pushed_authorization_requests,
            dpop_bound_access_tokens=row.dpop_bound_access_tokens,
        )


def _client_type(value: Any) -> bool:
    """True for confidential."""
    if value not in ("public", "confidential"):
        raise InvalidRequest("Field client_type must be 'public' or 'confidential'.")
    return bool(value == "confidential")


def _auth_method(value: Any, confidential: bool) -> str:
    allowed = CONFIDENTIAL_METHODS if confidential else ("none",)
    if value not in allowed:
        kind = "confidential" if confidential else "public"
        raise InvalidRequest(
            f"A {kind} client's token_endpoint_auth_method must be one of: {', '.join(allowed)}."
        )
    return str(value)


def _apply(values: ClientValues, body: Mapping[str, Any]) -> ClientValues:
    """``values`` with the fields present in ``body`` replaced (each parsed)."""
    changes: dict[str, Any] = {}
    if "name" in body:
        changes["name"] = _text(body["name"], "name", MAX_NAME)
    if "token_endpoint_auth_method" in body:
        changes["auth_method"] = _auth_method(
            body["token_endpoint_auth_method"], values.confidential
        )
    if "redirect_uris" in body:
        uris = _strings(body["redirect_uris"], "redirect_uris", MAX_REDIRECT_URIS, MAX_REDIRECT_URI)
        changes["redirect_uris"] = tuple(check_redirect_uri(u) for u in uris)
    if "grant_types" in body:
        changes["grant_types"] = _strings(body["grant_types"], "grant_types", 10, 64)
    if "scopes" in body:
        changes["scopes"] = _strings(body["scopes"], "scopes", MAX_CLIENT_SCOPES, 64)
    if "first_party" in body:
        changes["first_party"] = _flag(body["first_party"], "first_party")
    if "id_token_signed_response_alg" in body:
        alg = body["id_token_signed_response_alg"]
        if alg not in ID_TOKEN_ALGS:
            raise InvalidRequest(
                f"Field id_token_signed_response_alg must be one of: {', '.join(ID_TOKEN_ALGS)}."
            )
        changes["id_token_alg"] = str(alg)
    if "post_logout_redirect_uris" in body:
        field = "post_logout_redirect_uris"
        uris = _strings(body[field], field, MAX_REDIRECT_URIS, MAX_REDIRECT_URI)
        changes[field] = tuple(check_redirect_uri(u) for u in uris)
    if "backchannel_logout_uri" in body:
        uri = body["backchannel_logout_uri"]
        if uri is not None and (not isinstance(uri, str) or len(uri) > MAX_REDIRECT_URI):
            raise InvalidRequest(
                f"Field backchannel_logout_uri must be a URI of at most {MAX_REDIRECT_URI}"
                " characters, or null."
            )
        changes["backchannel_logout_uri"] = None if uri is None else check_backchannel_uri(uri)
    if "backchannel_logout_session_required" in body:
        field = "backchannel_logout_session_required"
        changes[field] = _flag(body[field], field)
    if "jwks" in body:
        changes["jwks"] = None if body["jwks"] is None else check_jwks(body["jwks"])
    if "jwks_uri" in body:
        uri = body["jwks_uri"]
        changes["jwks_uri"] = None if uri is None else check_jwks_uri(uri)
    for field in ("require_pushed_authorization_requests", "dpop_bound_access_tokens"):
        if field in body:
            changes[field] = _flag(body[field], field)
    return replace(values, **changes)


def parse_new_client(body: Mapping[str, Any], default_scopes: tuple[str, ...]) -> ClientValues:
    """The values of a client to create from an admin request body."""
    check_fields(body, CLIENT_FIELDS)
    if "name" not in body:
        raise InvalidRequest("Missing field: name.")
    if "client_type" not in body:
        raise InvalidRequest("Missing field: client_type ('public' or 'confidential').")
    confidential = _client_type(body["client_type"])
    base = ClientValues(
        name="",
        confidential=confidential,
        auth_method="client_secret_basic" if confidential else "none",
        redirect_uris=(),
        grant_types=DEFAULT_GRANT_TYPES,
        scopes=default_scopes,
        first_party=False,
    )
    return _apply(base, body)


def parse_changes(current: ClientRow, body: Mapping[str, Any]) -> ClientValues:
    """``current`` with an update request's fields applied."""
    check_fields(body, CLIENT_FIELDS)
    values = ClientValues.of(current)
    if "client_type" in body and _client_type(body["client_type"]) != values.confidential:
        raise InvalidRequest(
            "client_type cannot change; register a new client and delete this one."
        )
    return _apply(values, body)


def check_client(values: ClientValues, registered_scopes: frozenset[str]) -> None:
    """The cross-field rules in this module's docstring; InvalidRequest if one fails."""
    grants = set(values.grant_types)
    if not grants:
        raise InvalidRequest("A client needs at least one grant type.")
    unknown = sorted(grants - set(GRANTS))
    if unknown:
        raise InvalidRequest(
            f"Unsupported grant type(s): {', '.join(g[:64] for g in unknown)}; "
            f"choose from {', '.join(GRANTS)}."
        )
    needs_secret = sorted(grants & CONFIDENTIAL_GRANTS)
    if needs_secret and not values.confidential:
        raise InvalidRequest(f"{needs_secret[0]} is for confidential clients only.")
    if "refresh_token" in grants and not grants & REFRESH_ISSUING_GRANTS:
        raise InvalidRequest(
            "refresh_token needs authorization_code (or password, or the device code grant)."
        )
    if "authorization_code" in grants and not values.redirect_uris:
        raise InvalidRequest("authorization_code needs at least one redirect URI.")
    if values.require_pushed_authorization_requests and "authorization_code" not in grants:
        raise InvalidRequest("require_pushed_authorization_requests needs authorization_code.")
    check_method_keys(values.auth_method, values.jwks, values.jwks_uri)
    if not values.first_party:
        if grants & FIRST_PARTY_GRANTS:
            raise InvalidRequest("The password grant is for first-party clients only.")
        if set(values.scopes) & FIRST_PARTY_SCOPES:
            raise InvalidRequest(f"The {ADMIN_SCOPE} scope is for first-party clients only.")
    missing = sorted(set(values.scopes) - registered_scopes)
    if missing:
        raise InvalidRequest(
            f"Unknown scope(s): {', '.join(s[:64] for s in missing)}; create them first."
        )


def new_client_id() -> str:
    """22 random letters and digits (~131 bits). Not base64url: an id starting with '-'
    would read as an option on a command line (``authly admin client show -x...``)."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(CLIENT_ID_LENGTH))


def parse_scope(body: Mapping[str, Any]) -> Scope:
    """A scope to create from an admin request body."""
    check_fields(body, SCOPE_FIELDS)
    if "name" not in body:
        raise InvalidRequest("Missing field: name.")
    if "description" not in body:
        raise InvalidRequest("Missing field: description.")
    return Scope(
        name=check_scope_name(body["name"]),
        description=_text(body["description"], "description", MAX_DESCRIPTION),
        is_default=_flag(body.get("default", False), "default"),
    )
