"""RFC 7591 client metadata: parse and check what a client registers for itself, and the
metadata document the registration endpoints answer with (pure, no store).

The metadata is mapped onto Authly's own client fields and then checked by the rules
every client obeys (oauth/registration.py: ``parse_new_client``, ``check_client``). On
top of those, a client that registers itself:

- is never first-party, and gets neither the ``password`` grant nor a first-party scope
  (``admin``); with open registration (no initial access token) not
  ``client_credentials`` either: nobody vouched for it, and no user would consent to
  the scopes it would give itself;
- registers redirect URIs that are ``https``, ``http`` on a loopback host
  (``127.0.0.1``, ``[::1]``, ``localhost``; RFC 8252 §7.3), or, for public clients
  (``none``) only, a private-use scheme in reverse domain-name form such as
  ``com.example.app:/callback`` (RFC 8252 §7.1);
- registers a ``jwks_uri`` and ``backchannel_logout_uri`` (URLs the server itself
  calls) only as ``https`` on a host that is not ``localhost`` nor a loopback, private,
  link-local or reserved IP literal.

Metadata the server does not understand (``client_uri``, ``logo_uri``, ``contacts``,
``software_statement``, ...) is ignored, as RFC 7591 §2 requires, and so are members
set to ``null``. Errors are RFC 7591 §3.2.2: ``invalid_redirect_uri`` for the
``redirect_uris`` member, ``invalid_client_metadata`` for everything else.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from authly.errors import InvalidRequest, OAuthError
from authly.oauth import redirect_uris
from authly.oauth.clients import AUTH_METHODS
from authly.oauth.grants import GRANTS
from authly.oauth.registration import (
    FIRST_PARTY_GRANTS,
    FIRST_PARTY_SCOPES,
    MAX_CLIENT_SCOPES,
    MAX_NAME,
    MAX_REDIRECT_URI,
    MAX_REDIRECT_URIS,
    ClientValues,
    check_client,
    check_scope_name,
    parse_new_client,
)
from authly.store.clients import ClientRow
from authly.store.scopes import Scope


class InvalidRedirectURI(OAuthError):
    """Raised when a registered redirect URI is refused (RFC 7591 §3.2.2)."""

    error = "invalid_redirect_uri"
    status_code = 400
    default_description = "A redirect URI is invalid."


class InvalidClientMetadata(OAuthError):
    """Raised when a client metadata member is refused (RFC 7591 §3.2.2)."""

    error = "invalid_client_metadata"
    status_code = 400
    default_description = "The client metadata is invalid."


DEFAULT_AUTH_METHOD = "client_secret_basic"  # RFC 7591 §2
DEFAULT_GRANT_TYPES = ("authorization_code",)  # RFC 7591 §2
RESPONSE_TYPES = ("code",)
DYNAMIC_GRANTS = tuple(g for g in GRANTS if g not in FIRST_PARTY_GRANTS)
CLIENT_CREDENTIALS = "client_credentials"
# RFC 7591 / OpenID Connect members mapped to Authly fields with the same meaning.
PASSED_THROUGH = (
    "id_token_signed_response_alg",
    "post_logout_redirect_uris",
    "backchannel_logout_uri",
    "backchannel_logout_session_required",
    "jwks",
    "jwks_uri",
    "require_pushed_authorization_requests",
    "dpop_bound_access_tokens",  # RFC 9449 §5.2
)
KNOWN = frozenset(
    {
        "redirect_uris",
        "token_endpoint_auth_method",
        "grant_types",
        "response_types",
        "client_name",
        "scope",
        *PASSED_THROUGH,
    }
)
# RFC 8252 §7.1: a private-use scheme is a reverse domain name (at least one dot).
_PRIVATE_USE_SCHEME = re.compile(r"^[a-z][a-z0-9\-]*(\.[a-z0-9\-]+)+$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check_redirect_uri(uri: str, *, public: bool) -> str:
    """A redirect URI a client may register for itself (see the module docstring);
    InvalidRequest naming the problem."""
    checked = redirect_uris.check_registrable(uri)
    scheme = redirect_uris.parse(checked).scheme
    if scheme in ("https", "http"):  # check_registrable allows http on loopback only
        return checked
    if not public:
        raise InvalidRequest(
            f"The redirect URI scheme {scheme!r} is for native public clients only"
            " (token_endpoint_auth_method none); use https."
        )
    if not _PRIVATE_USE_SCHEME.match(scheme):
        raise InvalidRequest(
            f"The redirect URI scheme {scheme!r} is not a reverse domain name such as"
            " com.example.app (RFC 8252 §7.1)."
        )
    return checked


def check_outbound_uri(field: str, value: Any) -> str:
    """A URL the server itself will call (``jwks_uri``, ``backchannel_logout_uri``):
    ``https`` on a host that is not ``localhost`` nor an internal IP literal."""
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_REDIRECT_URI:
        raise InvalidClientMetadata(
            f"Field {field} must be a URI of at most {MAX_REDIRECT_URI} characters."
        )
    try:
        parsed = redirect_uris.parse(value)
    except InvalidRequest as exc:
        raise InvalidClientMetadata(f"Field {field}: {exc.description}") from None
    if parsed.scheme != "https":
        raise InvalidClientMetadata(f"Field {field} must be an https URI.")
    host = parsed.host.strip("[]")
    try:
        internal = not ipaddress.ip_address(host).is_global
    except ValueError:
        internal = host == "localhost" or host.endswith(".localhost")
    if internal:
        raise InvalidClientMetadata(
            f"Field {field} must not name localhost or a loopback, private or reserved address."
        )
    return value


def _string_list(value: Any, field: str, max_items: int, error: type[OAuthError]) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise error(f"Field {field} must be an array of non-empty strings.")
    if len(value) > max_items:
        raise error(f"Field {field} may hold at most {max_items} entries.")
    return list(dict.fromkeys(value))


def _redirect_uris(value: Any, public: bool) -> list[str]:
    uris = _string_list(value, "redirect_uris", MAX_REDIRECT_URIS, InvalidRedirectURI)
    for uri in uris:
        try:
            check_redirect_uri(uri, public=public)
        except InvalidRequest as exc:
            raise InvalidRedirectURI(f"{exc.description} ({uri[:100]!r})") from None
    return uris


def _grants(fields: Mapping[str, Any], open_registration: bool) -> list[str]:
    value = fields.get("grant_types", list(DEFAULT_GRANT_TYPES))
    grants = _string_list(value, "grant_types", 10, InvalidClientMetadata)
    refused = [g[:64] for g in grants if g not in DYNAMIC_GRANTS]
    if refused:
        raise InvalidClientMetadata(
            f"Unsupported grant type(s): {', '.join(refused)}; choose from"
            f" {', '.join(DYNAMIC_GRANTS)}."
        )
    if open_registration and CLIENT_CREDENTIALS in grants:
        raise InvalidClientMetadata(
            "client_credentials needs an initial access token: this server registers"
            " clients without one only for grants a user consents to."
        )
    response_types = fields.get("response_types")
    if response_types is not None:
        types = _string_list(response_types, "response_types", 5, InvalidClientMetadata)
        unknown = [t[:64] for t in types if t not in RESPONSE_TYPES]
        if unknown:
            raise InvalidClientMetadata(
                f"Unsupported response type(s): {', '.join(unknown)}; only code is supported."
            )
        if ("code" in types) != ("authorization_code" in grants):
            raise InvalidClientMetadata(
                "response_types and grant_types disagree: response type code goes with"
                " the authorization_code grant, and only with it."
            )
    return grants


def _scopes(fields: Mapping[str, Any], registry: Iterable[Scope]) -> list[str]:
    known = {s.name: s for s in registry}
    if "scope" not in fields:
        return [s.name for s in known.values() if s.is_default and s.name not in FIRST_PARTY_SCOPES]
    value = fields["scope"]
    if not isinstance(value, str):
        raise InvalidClientMetadata("Field scope must be a string of space-separated scopes.")
    names = list(dict.fromkeys(value.split()))
    if len(names) > MAX_CLIENT_SCOPES:
        raise InvalidClientMetadata(f"Field scope may hold at most {MAX_CLIENT_SCOPES} scopes.")
    try:
        for name in names:
            check_scope_name(name)
    except InvalidRequest as exc:
        raise InvalidClientMetadata(f"Field scope: {exc.description}") from None
    reserved = [n for n in names if n in FIRST_PARTY_SCOPES]
    if reserved:
        raise InvalidClientMetadata(
            f"Not available to dynamically registered clients: scope {', '.join(reserved)}."
        )
    unknown = [n[:64] for n in names if n not in known]
    if unknown:
        raise InvalidClientMetadata(f"Unknown scope(s): {', '.join(unknown)}.")
    return names


def _client_name(fields: Mapping[str, Any], client_id: str) -> str:
    name = fields.get("client_name")
    if name is None:
        return f"Client {client_id}"
    if not isinstance(name, str) or not 1 <= len(name.strip()) <= MAX_NAME:
        raise InvalidClientMetadata(
            f"Field client_name must be a string of 1 to {MAX_NAME} characters."
        )
    if _CONTROL.search(name):
        raise InvalidClientMetadata("Field client_name must not contain control characters.")
    return name


def parse_metadata(
    body: Mapping[str, Any],
    *,
    registry: Iterable[Scope],
    client_id: str,
    open_registration: bool,
) -> ClientValues:
    """The client values a registration (or an RFC 7592 update, which replaces them
    all) asks for; InvalidRedirectURI or InvalidClientMetadata if they are refused."""
    fields = {k: v for k, v in body.items() if k in KNOWN and v is not None}
    method = fields.get("token_endpoint_auth_method", DEFAULT_AUTH_METHOD)
    if method not in AUTH_METHODS:
        raise InvalidClientMetadata(
            f"Field token_endpoint_auth_method must be one of: {', '.join(AUTH_METHODS)}."
        )
    public = method == "none"
    uris = _redirect_uris(fields.get("redirect_uris", []), public)
    grants = _grants(fields, open_registration)
    if "authorization_code" in grants and not uris:
        raise InvalidRedirectURI("redirect_uris is required for the authorization_code grant.")
    for field in ("jwks_uri", "backchannel_logout_uri"):
        if field in fields:
            check_outbound_uri(field, fields[field])
    registry = list(registry)
    values = {
        "name": _client_name(fields, client_id),
        "client_type": "public" if public else "confidential",
        "token_endpoint_auth_method": method,
        "redirect_uris": uris,
        "grant_types": grants,
        "scopes": _scopes(fields, registry),
        "first_party": False,
        **{k: fields[k] for k in PASSED_THROUGH if k in fields},
    }
    field = "post_logout_redirect_uris"
    for uri in _string_list(fields.get(field, []), field, MAX_REDIRECT_URIS, InvalidClientMetadata):
        try:
            check_redirect_uri(uri, public=public)
        except InvalidRequest as exc:
            raise InvalidClientMetadata(f"Field {field}: {exc.description}") from None
    try:
        parsed = parse_new_client(values, ())
        check_client(parsed, frozenset(s.name for s in registry))
    except InvalidRequest as exc:
        raise InvalidClientMetadata(exc.description) from None
    return parsed


def metadata_of(client: ClientRow) -> dict[str, Any]:
    """The client's registered metadata in RFC 7591 names (§3.2.1), without the secret,
    the registration access token and the registration client URI."""
    document: dict[str, Any] = {
        "client_id": client.client_id,
        "client_id_issued_at": int(client.created_at),
    }
    if client.secret_hash is not None:
        document["client_secret_expires_at"] = 0  # secrets do not expire
    document |= {
        "client_name": client.name,
        "token_endpoint_auth_method": client.auth_method,
        "redirect_uris": list(client.redirect_uris),
        "grant_types": list(client.grant_types),
        "response_types": ["code"] if "authorization_code" in client.grant_types else [],
        "scope": " ".join(client.scopes),
        "id_token_signed_response_alg": client.id_token_signed_response_alg,
        "post_logout_redirect_uris": list(client.post_logout_redirect_uris),
        "backchannel_logout_session_required": client.backchannel_logout_session_required,
        "require_pushed_authorization_requests": client.require_pushed_authorization_requests,
        "dpop_bound_access_tokens": client.dpop_bound_access_tokens,
    }
    if client.backchannel_logout_uri is not None:
        document["backchannel_logout_uri"] = client.backchannel_logout_uri
    if client.jwks is not None:
        document["jwks"] = json.loads(client.jwks)
    if client.jwks_uri is not None:
        document["jwks_uri"] = client.jwks_uri
    return document
