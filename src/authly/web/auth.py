"""First-party JSON login and logout (`/api/v1/auth/*`)."""

from __future__ import annotations

from quart import Blueprint, Response, request

from authly.errors import InvalidGrant, InvalidToken
from authly.oauth.grants import first_party_client, limit_ip, password_grant
from authly.oauth.logout import logout as end_session
from authly.oauth.logout import presents_credentials
from authly.tokens.refresh import MAX_REFRESH_TOKEN_LENGTH
from authly.users.login import MAX_PASSWORD, MAX_USERNAME
from authly.web.context import bearer_token, services, token_context
from authly.web.parsing import optional_string_field, read_json_object, string_field
from authly.web.render import NO_STORE, json_response

bp = Blueprint("auth", __name__, url_prefix="/api/v1/auth")

# client_id (<= 128, checked later), client_secret, client assertions (RFC 7523)
CLIENT_FIELDS = {
    "client_id": 512,
    "client_secret": 512,
    "client_assertion_type": 512,
    "client_assertion": 8192,
}


@bp.post("/login")
async def login() -> Response:
    body = await read_json_object()
    username = string_field(body, "username", MAX_USERNAME)
    password = string_field(body, "password", MAX_PASSWORD)
    scope = optional_string_field(body, "scope", 1024)
    s = services()
    ctx = token_context(s)
    client = await first_party_client(s.db)
    try:
        tokens = await password_grant(ctx, client, username, password, scope)
    except InvalidGrant as exc:
        # Bad credentials are 401 on this first-party endpoint (DESIGN §7).
        raise InvalidGrant(exc.description, status_code=401) from None
    return json_response(tokens, headers=NO_STORE)


@bp.post("/logout")
async def logout() -> Response:
    """A public client's token needs no credentials; a confidential client's needs that
    client's (Basic, ``client_id`` + ``client_secret``, or ``client_assertion_type`` +
    ``client_assertion`` in the JSON body)."""
    body = await read_json_object()
    token = string_field(body, "refresh_token", MAX_REFRESH_TOKEN_LENGTH)
    params = {
        name: value
        for name, max_length in CLIENT_FIELDS.items()
        if (value := optional_string_field(body, name, max_length)) is not None
    }
    s = services()
    authorization = request.headers.get("Authorization")
    if presents_credentials(authorization, params):
        # As at /oauth/revoke: client authentications count against the address.
        await limit_ip(token_context(s))
    # Same answer whether or not the token was known (as RFC 7009 §2.2 does).
    await end_session(s.client_auth, s.tokens, token, authorization, params)
    return json_response({"status": "logged_out"}, headers=NO_STORE)


@bp.get("/session")
async def session() -> Response:
    """The login session behind the bearer access token (its ``sid``)."""
    s = services()
    claims = await s.tokens.verify_access(bearer_token())
    record = await s.tokens.session(claims.session_id) if claims.session_id else None
    if record is None or record.get("user_id") != claims.subject:
        raise InvalidToken("The login session has ended.")
    return json_response({"session_id": claims.session_id, **record}, headers=NO_STORE)
