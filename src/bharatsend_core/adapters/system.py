"""The real clock and id generator (the only place that reads time or entropy)."""

from __future__ import annotations

import secrets
import threading
import time
from datetime import UTC, datetime

from bharatsend_core.domain.ids import format_id

__all__ = ["SystemClock", "SystemIds"]


class SystemClock:
    """Wall time in UTC and the monotonic clock."""

    def now(self) -> datetime:
        """The current time, aware UTC."""
        return datetime.now(UTC)

    def monotonic(self) -> float:
        """Seconds that never go backwards."""
        return time.monotonic()


class SystemIds:
    """Time-sortable ids (48-bit milliseconds + 80 random bits) and secure random bytes.

    Ids made in the same millisecond by this process stay in order: the random
    part is incremented instead of redrawn, as the ULID scheme suggests.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_ms = -1
        self._last_random = 0

    def new_id(self, prefix: str) -> str:
        """A new id such as ``msg_01jd…``."""
        with self._lock:
            ms = time.time_ns() // 1_000_000
            if ms <= self._last_ms:
                ms = self._last_ms
                self._last_random = (self._last_random + 1) % (1 << 80)
            else:
                self._last_ms = ms
                self._last_random = int.from_bytes(secrets.token_bytes(10))
            random80 = self._last_random
        return format_id(prefix, ms, random80.to_bytes(10))

    def random_bytes(self, n: int) -> bytes:
        """``n`` bytes from the operating system's CSPRNG."""
        return secrets.token_bytes(n)

    def jitter(self) -> float:
        """A uniform number in [0, 1)."""
        return secrets.randbelow(1 << 53) / (1 << 53)
