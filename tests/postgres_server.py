"""A private PostgreSQL server for the test session, and a new database per test.

``postgres_server`` (session scope, sync: trio fixtures must be function-scoped) starts
tests/support/postgres.py's ``PostgresProcess`` once — initdb into a temporary directory
and pg_ctl on a free port, never the machine's shared server on 5432 — and stops it at
the end. ``postgres_url`` gives each test its own empty database on it. Tests that need
PostgreSQL are skipped when its binaries are absent (CI installs them; see .ci/run).

``database_url`` is the store a test runs on: SQLite in the test's tmp_path by default;
a module or test marked ``both_stores`` runs once on SQLite and once on PostgreSQL, and
``AUTHLY_TEST_STORE=postgresql`` runs every other test on PostgreSQL too.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.postgres import AVAILABLE, PostgresProcess

requires_postgres = pytest.mark.skipif(not AVAILABLE, reason="PostgreSQL binaries not installed")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "both_stores: run the test on SQLite and again on PostgreSQL"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "store_kind" in metafunc.fixturenames and metafunc.definition.get_closest_marker(
        "both_stores"
    ):
        metafunc.parametrize("store_kind", ["sqlite", "postgresql"], indirect=True)


@contextlib.contextmanager
def own_postgres_server() -> Iterator[PostgresProcess]:
    """A started PostgresProcess, stopped and deleted afterwards (skips the test when the
    binaries are absent)."""
    if not AVAILABLE:
        pytest.skip("PostgreSQL binaries not installed")
    server = PostgresProcess()
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresProcess]:
    with own_postgres_server() as server:
        yield server


@pytest.fixture
def postgres_url(postgres_server: PostgresProcess) -> str:
    return postgres_server.create_database()


@pytest.fixture
def store_kind(request: pytest.FixtureRequest) -> str:
    return getattr(request, "param", os.environ.get("AUTHLY_TEST_STORE", "sqlite"))


@pytest.fixture
def database_url(store_kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if store_kind == "postgresql":
        return str(request.getfixturevalue("postgres_url"))
    return f"sqlite:///{tmp_path / 'authly.db'}"
