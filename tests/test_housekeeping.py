"""The housekeeping task purges expired rows (security review defect 7; foundation
issue item 3), counted in ``authly_store_purged_total{kind}``."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
import trio

from authly.store import codes as code_repo
from authly.store import refresh_tokens as refresh_repo
from authly.store import revocations as revocation_repo
from authly.store.codes import CodeGrant
from authly.store.refresh_tokens import Grant
from tests.conftest import services_of
from tests.web.helpers import create_user, running_app

HOUR = 3600.0


def _count(table: str) -> Any:
    def run(conn: Any) -> int:
        return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])  # noqa: S608

    return run


async def _seed(app: Any) -> None:
    """Expired and live rows of every kind, written straight into the store."""
    db = services_of(app).db
    user = await create_user(app, "alice", "alice-password-1")
    now = time.time()
    past, future = now - HOUR, now + HOUR

    def family(conn: Any, family_id: str, expiries: list[float]) -> None:
        grant = Grant(user.id, "authly", "profile", family_id)
        for i, expires_at in enumerate(expiries):
            refresh_repo.insert(conn, f"{family_id}-{i}", grant, now - 2 * HOUR, expires_at)

    def seed(conn: Any) -> None:
        family(conn, "dead", [past - 10, past])  # every token expired: goes
        family(conn, "alive", [past, future])  # its newest token lives: stays, rotated too
        code = CodeGrant("app", user.id, "https://app.example/cb", "profile", "x" * 43)
        code_repo.insert(conn, "expired-unused", code, past - 60, past)
        code_repo.insert(conn, "expired-used-live-token", code, past - 60, past)
        code_repo.record_issue(conn, "expired-used-live-token", None, "jti-1", future)
        code_repo.insert(conn, "live", code, now, future)
        revocation_repo.add(conn, [("gone", past), ("kept", future)])

    await db.run(seed)


def _purged(metrics: str, kind: str) -> float:
    found = re.search(rf'^authly_store_purged_total{{kind="{kind}"}} (\S+)$', metrics, re.M)
    assert found is not None, metrics
    return float(found.group(1))


pytestmark = pytest.mark.both_stores


async def test_expired_rows_are_purged_and_live_ones_kept(settings_factory: Any) -> None:
    async with running_app(settings_factory(purge_interval=0)) as app:
        assert services_of(app).housekeeper is None  # 0 disables the task
        await _seed(app)
    async with running_app(settings_factory(purge_interval=3600)) as app:
        services = services_of(app)
        assert services.housekeeper is not None
        await services.housekeeper.wait_pass(1)  # the first pass runs at start
        db = services.db
        assert await db.run(_count("refresh_tokens")) == 2  # the live family, both rows
        assert await db.run(refresh_repo.lookup, "alive-0", time.time()) is not None
        remaining = await db.run(
            lambda conn: sorted(
                r[0] for r in conn.execute("SELECT code_hash FROM authorization_codes")
            )
        )
        assert remaining == ["expired-used-live-token", "live"]
        assert await db.run(revocation_repo.is_revoked, "kept")
        assert await db.run(_count("revoked_tokens")) == 1
        metrics = (await (await app.test_client().get("/metrics")).get_data()).decode()
        assert _purged(metrics, "refresh_tokens") == 2
        assert _purged(metrics, "authorization_codes") == 1
        assert _purged(metrics, "revoked_tokens") == 1


async def test_two_instances_purge_one_store_together(settings_factory: Any) -> None:
    """Two servers on one store run a pass at the same moment, batch against batch:
    every expired row goes exactly once (the counts add up), nothing live goes, and
    neither fails."""
    now = time.time()
    expired = [(f"jti-{i}", now - HOUR) for i in range(1_234)]
    settings = settings_factory(purge_interval=3600)
    async with running_app(settings) as first, running_app(settings) as second:
        keepers = [services_of(app).housekeeper for app in (first, second)]
        for keeper in keepers:
            assert keeper is not None
            await keeper.wait_pass(1)
        await services_of(first).db.run(revocation_repo.add, [*expired, ("kept", now + HOUR)])
        results: list[dict[str, int]] = []

        async def purge(keeper: Any) -> None:
            results.append(await keeper.purge_once())

        async with trio.open_nursery() as nursery:
            for keeper in keepers:
                nursery.start_soon(purge, keeper)
        assert sum(r["revoked_tokens"] for r in results) == len(expired)
        totals = 0.0
        for app in (first, second):
            metrics = (await (await app.test_client().get("/metrics")).get_data()).decode()
            totals += _purged(metrics, "revoked_tokens")
        assert totals == len(expired)
        assert await services_of(first).db.run(_count("revoked_tokens")) == 1


async def test_a_failed_pass_is_retried_not_fatal(settings_factory: Any) -> None:
    """A store error during a pass is logged; the task lives on for the next pass."""
    async with running_app(settings_factory(purge_interval=3600)) as app:
        housekeeper = services_of(app).housekeeper
        assert housekeeper is not None
        await housekeeper.wait_pass(1)
        await services_of(app).db.run(lambda conn: conn.execute("DROP TABLE revoked_tokens"))
        purged = await housekeeper.purge_once()  # logs, does not raise
        assert purged.get("revoked_tokens", 0) == 0
        assert housekeeper.passes == 2
