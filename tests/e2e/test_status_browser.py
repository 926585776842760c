"""The status page in a real browser (Debian's chromium): it shows the switch to the
fallbacks when the test kills Redis, and the switch back when Redis returns, by
refreshing itself. With AUTHLY_SAVE_SCREENSHOTS=1 it also saves docs/status.png (the
README shows it); otherwise the screenshot goes to the test's tmp_path."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import trio

from tests.e2e.server import authly_env
from tests.e2e.test_browser_flow import CHROMIUM, chromium  # noqa: F401
from tests.redis_server import requires_redis
from tests.support.processes import RedisProcess, ServerProcess

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.redis,
    requires_redis,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium is missing"),
]

SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "status.png"
WAIT_MS = 30_000  # a hang detector, not a timing assertion


def test_the_status_page_follows_an_outage(
    tmp_path: Path,
    spawn: Any,
    chromium: Any,  # noqa: F811
) -> None:
    redis = RedisProcess(tmp_path / "redis.log")
    # A plain test (Playwright's sync API runs its own loop): Redis is driven with
    # short trio runs of its own.
    trio.run(redis.start)
    try:
        env = authly_env(
            tmp_path / "authly.db",
            AUTHLY_REDIS_URL=redis.url,
            AUTHLY_REDIS_RATE_LIMIT="true",
            AUTHLY_REDIS_CACHE="true",
            AUTHLY_REDIS_SESSION="true",
        )
        server: ServerProcess = spawn(env=env)
        server.wait_healthy()
        context = chromium.new_context(viewport={"width": 1000, "height": 900})
        try:
            page = context.new_page()
            page.goto(server.url("/status"))
            assert page.title() == "Status · Authly"
            cell = "#feature-rate_limit td.backend"
            assert page.inner_text(cell) == "redis"
            redis.close()  # SIGKILL
            page.wait_for_selector(f"{cell}.backend-memory", timeout=WAIT_MS)
            page.wait_for_selector("#feature-session td.backend-database", timeout=WAIT_MS)
            assert "down" in page.inner_text("#redis")
            assert "health probe failed" in page.inner_text("#switches") or (
                "request failed" in page.inner_text("#switches")
            )
            trio.run(redis.start)
            page.wait_for_selector(f"{cell}.backend-redis", timeout=WAIT_MS)
            page.wait_for_selector("#feature-session td.backend-redis", timeout=WAIT_MS)
            page.wait_for_function(
                "document.querySelector('#switches').innerText.includes('redis recovered')",
                timeout=WAIT_MS,
            )
            keep = os.environ.get("AUTHLY_SAVE_SCREENSHOTS") == "1"
            page.screenshot(
                path=str(SCREENSHOT if keep else tmp_path / "status.png"), full_page=True
            )
        finally:
            context.close()
        assert server.log_problems() == [], server.output()
    finally:
        redis.close()
