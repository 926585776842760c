"""Fixtures of the domain tests: a settable clock (tests/support/fakes.py) and the
memory session store on it."""

from __future__ import annotations

import pytest

from authly.backends.memory import MemorySessionStore
from tests.support.fakes import Clock


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(clock: Clock) -> MemorySessionStore:
    return MemorySessionStore(clock=clock)
