"""A ready tenant on in-memory storage, with a fake clock at noon IST."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bharatsend_core import BharatSend
from bharatsend_core.testing import FakeClock, SequentialIds

from .world import NOON_IST, PEPPER, World, make_world


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOON_IST)


@pytest.fixture
def world(clock: FakeClock) -> Iterator[World]:
    bs = BharatSend.in_memory(clock=clock, ids=SequentialIds(), key_pepper=PEPPER)
    yield make_world(bs, clock)
    bs.close()
