"""Back-channel logout deliveries (OpenID Connect Back-Channel Logout 1.0 §2.5, §2.8).

When a user's sessions end, whatever the reason (RP-initiated logout, the admin ending
them, a password change or reset, the user disabled or deleted), every client that had
a refresh-token family in them and registered a ``backchannel_logout_uri`` is sent
``logout_token=<JWT>`` by form POST: ``LogoutNotifier`` works out who, one notice per
client and browser session (``sid``; a family whose browser session is not known gets
a token with ``sub`` alone, which means all of the user's sessions at that client).

The request that ended the session only *enqueues* notices (``notify`` never waits): a bounded
memory channel feeds a long-lived sender task in the app's nursery, which owns its
cancel scope (handed back through ``task_status.started``) and delivers with a few
workers, so one slow client does not hold up the others.

Each delivery has a deadline per attempt (``timeout``) and is retried with exponential
backoff on connection errors, timeouts and 5xx answers; a 2xx is ``delivered``; any
other answer (4xx, and 3xx: redirects are never followed) or running out of attempts
is ``failed``; a full queue is ``dropped``. Each result is reported to ``on_result``
(the ``authly_backchannel_logout_total{result}`` metric). Delivery is best effort:
notices still queued when the server stops are lost.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import httpx
import trio

from authly.oidc.id_tokens import IdTokens
from authly.store import clients as client_repo
from authly.store.clients import ClientRow
from authly.store.db import Database
from authly.users.accounts import EndedSession

log = logging.getLogger("authly.oidc.backchannel")

QUEUE_SIZE = 1000
WORKERS = 4
TIMEOUT = 5.0
ATTEMPTS = 4
BACKOFF = 0.5  # seconds before the 2nd attempt; doubled each time


@dataclass(frozen=True)
class LogoutNotice:
    """One logout token to deliver to one client."""

    uri: str
    client_id: str
    alg: str
    subject: str
    sid: str | None  # None: the token names only the user (all their sessions there)


class _Retry(Exception):
    """A failed attempt worth repeating (5xx, connection error, timeout)."""


class BackchannelSender:
    def __init__(
        self,
        id_tokens: IdTokens,
        *,
        on_result: Callable[[str], None],
        queue_size: int = QUEUE_SIZE,
        workers: int = WORKERS,
        timeout: float = TIMEOUT,
        attempts: int = ATTEMPTS,
        backoff: float = BACKOFF,
    ) -> None:
        self._id_tokens = id_tokens
        self._on_result = on_result
        self._send, self._receive = trio.open_memory_channel[LogoutNotice](queue_size)
        self._workers = workers
        self._timeout = timeout
        self._attempts = attempts
        self._backoff = backoff
        self.settled = 0  # notices delivered, failed or dropped
        self._settled_event = trio.Event()

    def notify(self, notice: LogoutNotice) -> None:
        """Queue ``notice`` for delivery; never waits (a full queue drops it)."""
        try:
            self._send.send_nowait(notice)
        except trio.WouldBlock:
            log.warning("back-channel logout queue full; notice to %s dropped", notice.client_id)
            self._settle("dropped")

    async def run(self, *, task_status: trio.TaskStatus[trio.CancelScope]) -> None:
        with trio.CancelScope() as scope:
            task_status.started(scope)
            limits = httpx.Limits(max_connections=self._workers * 2)
            async with (
                httpx.AsyncClient(follow_redirects=False, limits=limits) as http,
                trio.open_nursery() as nursery,
            ):
                for _ in range(self._workers):
                    nursery.start_soon(self._work, http)

    async def _work(self, http: httpx.AsyncClient) -> None:
        async for notice in self._receive:
            self._settle(await self.deliver(http, notice))

    async def deliver(self, http: httpx.AsyncClient, notice: LogoutNotice) -> str:
        """Deliver one notice with retries; ``delivered`` or ``failed``."""
        token = self._id_tokens.logout_token(
            client_id=notice.client_id, alg=notice.alg, subject=notice.subject, sid=notice.sid
        )
        for attempt in range(self._attempts):
            if attempt:
                await trio.sleep(self._backoff * 2 ** (attempt - 1))
            try:
                return await self._attempt(http, notice, token)
            except _Retry as exc:
                log.info(
                    "back-channel logout to %s: attempt %d failed: %s",
                    notice.client_id,
                    attempt + 1,
                    exc,
                )
        log.warning(
            "back-channel logout to %s failed after %d attempts", notice.client_id, self._attempts
        )
        return "failed"

    async def _attempt(self, http: httpx.AsyncClient, notice: LogoutNotice, token: str) -> str:
        try:
            with trio.fail_after(self._timeout):
                response = await http.post(
                    notice.uri,
                    data={"logout_token": token},
                    headers={"Cache-Control": "no-store"},
                    timeout=self._timeout,
                )
        except (trio.TooSlowError, httpx.TimeoutException):
            raise _Retry("timed out") from None
        except httpx.TransportError as exc:
            raise _Retry(type(exc).__name__) from None
        if response.status_code >= 500:
            raise _Retry(f"status {response.status_code}")
        if 200 <= response.status_code < 300:
            return "delivered"
        log.warning(
            "back-channel logout to %s refused: status %d", notice.client_id, response.status_code
        )
        return "failed"

    def _settle(self, result: str) -> None:
        self._on_result(result)
        self.settled += 1
        self._settled_event.set()
        self._settled_event = trio.Event()

    async def wait_settled(self, count: int) -> None:
        """Wait until at least ``count`` notices have been delivered, failed or dropped."""
        while self.settled < count:
            await self._settled_event.wait()


class LogoutNotifier:
    """Which clients to tell that sessions ended, queued on the sender."""

    def __init__(self, db: Database, sender: BackchannelSender) -> None:
        self._db = db
        self._sender = sender

    async def sessions_ended(self, subject: str, ended: Iterable[EndedSession]) -> int:
        """Queue a logout token about ``subject`` for each distinct (client, ``sid``)
        of ``ended`` whose client registered a ``backchannel_logout_uri``; returns how
        many were queued. Never waits for a delivery."""
        clients: dict[str, ClientRow | None] = {}
        queued = 0
        for client_id, sid in sorted({(e.client_id, e.sid) for e in ended}, key=_order):
            if client_id not in clients:
                clients[client_id] = await self._db.run(client_repo.get, client_id)
            client = clients[client_id]
            if client is None or not client.backchannel_logout_uri:
                continue
            self._sender.notify(
                LogoutNotice(
                    uri=client.backchannel_logout_uri,
                    client_id=client.client_id,
                    alg=client.id_token_signed_response_alg,
                    subject=subject,
                    sid=sid,
                )
            )
            queued += 1
        return queued


def _order(pair: tuple[str, str | None]) -> tuple[str, str]:
    return pair[0], pair[1] or ""
