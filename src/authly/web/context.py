"""Per-request access to the Services bundle and the caller's address."""

from __future__ import annotations

import ipaddress

from quart import current_app, request

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


def _is_trusted(address: str, networks: tuple[ipaddress._BaseNetwork, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)
