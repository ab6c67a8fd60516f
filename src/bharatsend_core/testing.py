"""The test kit for host applications: a controllable clock and predictable ids.

``BharatSend.in_memory(clock=FakeClock(), ids=SequentialIds())`` gives a
complete instance whose time only moves when the test says so.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from bharatsend_core.domain.errors import InvalidArgument
from bharatsend_core.domain.ids import format_id

__all__ = ["FakeClock", "SequentialIds"]


class FakeClock:
    """A clock that stands still until :meth:`advance` or :meth:`set` moves it."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 1, 6, 30, tzinfo=UTC)
        if self._now.tzinfo is None:
            raise InvalidArgument("start must be timezone-aware", field="start")
        self._mono = 0.0
        self._lock = threading.Lock()

    def now(self) -> datetime:
        """The current fake time."""
        with self._lock:
            return self._now

    def monotonic(self) -> float:
        """Seconds advanced so far."""
        with self._lock:
            return self._mono

    def advance(self, delta: timedelta | float) -> datetime:
        """Move forward by ``delta`` (seconds or a timedelta); return the new time."""
        step = delta if isinstance(delta, timedelta) else timedelta(seconds=delta)
        if step < timedelta(0):
            raise InvalidArgument("a clock only moves forward", field="delta")
        with self._lock:
            self._now += step
            self._mono += step.total_seconds()
            return self._now

    def set(self, when: datetime) -> None:
        """Jump to ``when`` (forward or back: wall clocks do jump)."""
        if when.tzinfo is None:
            raise InvalidArgument("when must be timezone-aware", field="when")
        with self._lock:
            self._now = when


class SequentialIds:
    """Ids that count up (``msg_…0001``, ``msg_…0002``), and reproducible 'random' bytes."""

    def __init__(self, seed: int = 0) -> None:
        self._counter = 0
        self._state = seed
        self._lock = threading.Lock()

    def new_id(self, prefix: str) -> str:
        """The next id (time part fixed, counter in the random part)."""
        with self._lock:
            self._counter += 1
            n = self._counter
        return format_id(prefix, 1_767_225_600_000, n.to_bytes(10))

    def random_bytes(self, n: int) -> bytes:
        """Deterministic bytes from a simple generator (tests only, never for secrets)."""
        out = bytearray()
        with self._lock:
            for _ in range(n):
                self._state = (self._state * 6364136223846793005 + 1442695040888963407) % 2**64
                out.append(self._state >> 56)
        return bytes(out)

    def jitter(self) -> float:
        """Always 0.5: retries land in the middle of their window."""
        return 0.5
