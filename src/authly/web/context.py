"""What every blueprint needs from the request: the Services bundle, the caller's
address, its bearer token, and the token endpoint's context."""

from __future__ import annotations

import ipaddress

from quart import current_app, request

from authly.errors import InvalidToken
from authly.oauth.device import DeviceGrants
from authly.oauth.grants import TokenContext, TokenLimits
from authly.services import EXTENSION_KEY, Services


def services() -> Services:
    return current_app.extensions[EXTENSION_KEY]  # type: ignore[no-any-return]


def client_ip() -> str:
    """The peer address; X-Forwarded-For is honoured only from AUTHLY_TRUSTED_PROXIES.

    Walks the forwarded chain from the right and returns the first address that is
    not a trusted proxy, so a client cannot choose its own rate-limit key.
    """
    peer = request.remote_addr or "unknown"
    trusted = services().settings.trusted_proxies
    if not trusted or not _is_trusted(peer, trusted):
        return peer
    chain = [p.strip() for p in request.headers.get("X-Forwarded-For", "").split(",")]
    for hop in reversed([p for p in chain if p]):
        if not _is_trusted(hop, trusted):
            return hop
    return peer


def _is_trusted(
    address: str, networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def bearer_token() -> str:
    """The token from ``Authorization: Bearer <token>`` (RFC 6750 §2.1)."""
    header = request.headers.get("Authorization", "")
    if not header:
        raise InvalidToken(missing=True)
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidToken("The Authorization header must be 'Bearer <token>'.")
    return token.strip()


def token_context(s: Services) -> TokenContext:
    return TokenContext(
        db=s.db,
        login=s.login,
        tokens=s.tokens,
        limiter=s.rate_limit,
        limits=TokenLimits(s.settings.token_rate_limit, s.settings.token_rate_window),
        client_ip=client_ip(),
        id_tokens=s.id_tokens,
        profiles=s.profiles,
        authorization=request.headers.get("Authorization"),
        client_auth=s.client_auth,
        devices=device_grants(s),
    )


def device_grants(s: Services) -> DeviceGrants:
    """Pending device grants (RFC 8628) in the session slot, in a pool as large as the
    pending authorization requests' (AUTHLY_PENDING_REQUESTS_MAX)."""
    return DeviceGrants(s.sessions, max_entries=s.settings.pending_requests_max)
