"""Let hypercorn finish a response's close step: shield the last ``send`` of a response.

Proven with hypercorn 0.18.0, quart-trio 0.12.0, quart 0.22.0, trio 0.35.0 (pinned in
pyproject.toml; re-check this module before moving any of them).

What goes wrong without it. When the app sends the last body message of a response
(``http.response.body`` without ``more_body``), hypercorn does the whole end of the
request inside that ``send()``: ``HTTPStream._send_closed`` writes the end of the
message, then ``H11Protocol._maybe_recycle`` first hands the app ``http.disconnect``
(``HTTPStream.handle(StreamClosed)`` -> ``app_put``) and only *then* either closes the
socket (``Connection: close``, HTTP/1.0: ``send(Closed())`` -> ``TCPServer._close``) or
re-arms the keep-alive idle timer (``send(Updated(idle=True))``).

quart-trio's ``TrioASGIHTTPConnection`` runs ``handle_messages`` (reads ``receive()``)
and ``handle_request`` (calls ``send()``) in one nursery, and ``handle_messages`` cancels
that nursery as soon as it sees ``http.disconnect``. The disconnect is delivered at the
checkpoint inside ``app_put``; the cancellation then lands on the next checkpoint of the
still-running ``send()``: ``trio.SocketStream.send_eof`` in ``TCPServer._close`` (so
``aclose`` is never reached), or the lock in ``TrioSingleTask.restart`` (so the idle timer
is never re-armed). hypercorn sets ``HTTPStream.closed`` before handing over the
disconnect, so nothing retries: the socket stays open until the peer closes it, and
one-request clients that wait for EOF leak one descriptor each until ``accept`` fails
with EMFILE. A bare ASGI callable is not affected: nothing cancels its ``send()``.

The fix: run the message that ends the response under a shielded cancel scope, so the
close step runs to completion; the nursery cancellation then takes effect right after.
The shielded part does not wait on the peer beyond what hypercorn already shields
(``TCPServer.protocol_send`` shields ``send_all``); ``send_eof``/``aclose`` and re-arming
the idle timer do not block.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import trio

Message = MutableMapping[str, Any]
Send = Callable[[Message], Awaitable[None]]


def ends_response(message: Message) -> bool:
    """Whether hypercorn runs its close step inside the ``send`` of ``message``.

    Hypercorn closes the stream after the last body message, or, for a response that
    announced trailers, after the last trailers message; shielding a final body message
    that is followed by trailers is harmless.
    """
    kind = message.get("type")
    if kind == "http.response.body":
        return not message.get("more_body", False)
    if kind == "http.response.trailers":
        return not message.get("more_trailers", False)
    return False


def shield_final_send(send: Send) -> Send:
    """Wrap an HTTP scope's ``send`` so the message that ends the response is shielded."""

    async def shielded_send(message: Message) -> None:
        if ends_response(message):
            with trio.CancelScope(shield=True):
                await send(message)
        else:
            await send(message)

    return shielded_send
