"""Races on one-shot things, interleaved on purpose (security review, defects 5 and 6).

- Five consent posts for one pending request, all past the CSRF check before any of
  them answers: exactly one code.
- A code replayed while its first redemption is still issuing tokens: the tokens that
  redemption issued are revoked anyway (RFC 9700 §4.5), in either order.

Each runs with sessions in memory and in a real redis-server.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio

from authly.factory import create_app
from authly.oauth.pending import PendingRequests
from tests.conftest import services_of
from tests.support.fakes import ReadGate
from tests.web.browser import (
    Browser,
    answer,
    auth_params,
    exchange,
    html_of,
    pkce_pair,
    with_web_client_and_alice,
)
from tests.web.helpers import json_of, me, refresh

# Races for one code or one token: forced on SQLite and on PostgreSQL alike.
pytestmark = pytest.mark.both_stores


@pytest.fixture
async def race_app(backend_settings: Any) -> AsyncIterator[Any]:
    async with create_app(backend_settings).test_app() as test_app:
        yield await with_web_client_and_alice(test_app)


async def _consent_form(app: Any, racers: int) -> tuple[Browser, Any]:
    """A signed-in browser on the consent page, and its form; from now on every read
    of the pending request waits for ``racers`` readers."""
    services = services_of(app)
    gate = ReadGate(services.sessions, racers, "authz:")
    services.pending = PendingRequests(gate)  # type: ignore[arg-type]
    browser = Browser(app)
    _, challenge = pkce_pair()
    response = await browser.sign_in(await browser.authorize(auth_params(challenge)))
    consent = await browser.form(response, "/authorize/consent")
    gate.closed = True
    return browser, consent


async def test_simultaneous_consent_posts_give_one_code(race_app: Any) -> None:
    browser, consent = await _consent_form(race_app, 5)
    results: list[Any] = []

    async def post() -> None:
        results.append(await browser.submit(consent, "approve"))

    async with trio.open_nursery() as nursery:
        for _ in range(5):
            nursery.start_soon(post)
    codes = [answer(r)["code"] for r in results if r.status_code == 303]
    assert len(codes) == 1
    refused = [r for r in results if r.status_code != 303]
    assert len(refused) == 4
    for r in refused:
        assert "expired or was already used" in await html_of(r, 400)


async def test_approve_and_deny_racing_give_one_answer(race_app: Any) -> None:
    browser, consent = await _consent_form(race_app, 2)
    results: list[Any] = []

    async def post(decision: str) -> None:
        results.append(await browser.submit(consent, decision))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(post, "approve")
        nursery.start_soon(post, "deny")
    redirected = [answer(r) for r in results if r.status_code == 303]
    assert len(redirected) == 1
    assert ("code" in redirected[0]) != ("error" in redirected[0])


async def _code(browser: Browser) -> tuple[str, str]:
    verifier, challenge = pkce_pair()
    result = await browser.code_for(auth_params(challenge))
    return result["code"], verifier


class HeldIssue:
    """Holds the first token issue until released, and keeps what every issue made."""

    def __init__(self, tokens: Any) -> None:
        self._issue = tokens.issue
        self.issued: list[dict[str, Any]] = []
        self.release = trio.Event()
        self.holding = trio.Event()
        self._held = False
        tokens.issue = self

    async def __call__(self, **kwargs: Any) -> Any:
        hold = not self._held
        self._held = True
        result = await self._issue(**kwargs)
        self.issued.append(result[0])
        if hold:
            self.holding.set()
            await self.release.wait()
        return result


async def _dead(browser: Browser, body: dict[str, Any]) -> None:
    """Neither the access token nor the refresh token of ``body`` works any more."""
    assert (await me(browser.client, f"Bearer {body['access_token']}")).status_code == 401
    refreshed = await refresh(browser.client, body["refresh_token"], client_id="app")
    assert (await json_of(refreshed, 400))["error"] == "invalid_grant"


async def test_replay_while_the_first_redemption_is_issuing(race_app: Any) -> None:
    """The replay arrives after the code is marked used but before the first
    redemption recorded its tokens: the first redemption revokes them itself."""
    browser = Browser(race_app)
    code, verifier = await _code(browser)
    held = HeldIssue(services_of(race_app).tokens)
    first: list[dict[str, Any]] = []

    async def redeem() -> None:
        first.append(await exchange(browser.client, code, verifier, status=400))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(redeem)
        await held.holding.wait()  # the first redemption holds its fresh tokens
        replay = await exchange(browser.client, code, verifier, status=400)
        assert replay["error"] == "invalid_grant"
        held.release.set()
    assert first[0]["error"] == "invalid_grant"
    assert "already used" in first[0]["error_description"]
    await _dead(browser, held.issued[0])


async def test_five_concurrent_exchanges_leave_no_live_token(race_app: Any) -> None:
    browser = Browser(race_app)
    code, verifier = await _code(browser)
    held = HeldIssue(services_of(race_app).tokens)
    statuses: list[int] = []
    four_answered = trio.Event()

    async def redeem() -> None:
        response = await browser.client.post(
            "/api/v1/oauth/token",
            form={
                "grant_type": "authorization_code",
                "code": code,
                "code_verifier": verifier,
                "client_id": "app",
                "redirect_uri": "https://app.example/cb",
            },
        )
        statuses.append(response.status_code)
        if len(statuses) == 4:
            four_answered.set()

    async with trio.open_nursery() as nursery:
        for _ in range(5):
            nursery.start_soon(redeem)
        await held.holding.wait()
        await four_answered.wait()  # the replays, while the winner holds its tokens
        held.release.set()
    assert statuses.count(400) == 5
    assert len(held.issued) == 1
    await _dead(browser, held.issued[0])
