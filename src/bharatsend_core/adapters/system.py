"""The real clock, id generator and CPU placement (the only place that reads time or
entropy, or asks the kernel where this process runs)."""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime

from bharatsend_core.domain.errors import InvalidArgument
from bharatsend_core.domain.ids import format_id

__all__ = ["SystemClock", "SystemIds", "parse_cpu_list", "pin_process"]


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


#: Linux numbers CPUs below 8,192 (its largest NR_CPUS); a longer range is a typo.
_MAX_CPU = 8191


def parse_cpu_list(text: str) -> frozenset[int]:
    """CPU numbers from a list such as ``1``, ``0,2`` or ``0-3`` (``taskset -c``'s format)."""
    cpus: set[int] = set()
    for item in str(text).split(","):
        low, sep, high = item.strip().partition("-")
        try:
            first = int(low)
            last = int(high) if sep else first
        except ValueError:
            raise InvalidArgument(
                f"cpus must be a list such as 1 or 0,2 or 0-3, got {text!r}", field="cpus"
            ) from None
        if first < 0 or last < first or last > _MAX_CPU:
            raise InvalidArgument(f"cpus: {item.strip()!r} is not a CPU range", field="cpus")
        cpus.update(range(first, last + 1))
    return frozenset(cpus)


def pin_process(cpus: Iterable[int]) -> frozenset[int]:
    """Run every thread of this process, and every thread and child it starts later, on ``cpus``.

    Why: Python runs one thread at a time (the interpreter lock), so a worker
    or an application with an embedded worker uses about one core however
    many it may run on, and its threads (senders, dispatch loop, recorder,
    SMPP session, receipt inbox) hand the lock to each other thousands of
    times a second. Across two cores each hand-over wakes the other core and
    moves the interpreter's hot data with it; on one core it is a plain
    context switch. Measured on a two-core host (``docs/operations.md``):
    OTPs sent one at a time with the worker in the process went from 718 to
    998 a second, and the end-to-end pipeline from 1,944-2,059 to 2,200-2,408
    delivered a second. Leave the other cores to the database and the rest.

    Linux only (per-thread ``sched_setaffinity``). Returns the set applied.
    ``InvalidArgument`` for an empty set, a value that is not a CPU number,
    a CPU this process may not run on (outside its cpuset), or another
    platform.
    """
    wanted: set[int] = set()
    for cpu in cpus:
        if isinstance(cpu, bool) or not isinstance(cpu, int) or cpu < 0:
            raise InvalidArgument(f"cpus must be CPU numbers, got {cpu!r}", field="cpus")
        wanted.add(cpu)
    if not wanted:
        raise InvalidArgument("cpus must name at least one CPU", field="cpus")
    getaffinity = getattr(os, "sched_getaffinity", None)
    setaffinity = getattr(os, "sched_setaffinity", None)
    if getaffinity is None or setaffinity is None or not os.path.isdir("/proc/self/task"):
        raise InvalidArgument("pinning to CPUs needs Linux (sched_setaffinity)", field="cpus")
    # The calling thread first: the kernel refuses a set with no usable CPU and
    # narrows one that is partly outside this process's cpuset; either way
    # the thread gets its old set back and nothing else has moved.
    before = getaffinity(0)
    try:
        setaffinity(0, wanted)
    except OSError:
        raise InvalidArgument(
            f"cpus {sorted(wanted)}: none is available to this process", field="cpus"
        ) from None
    got = getaffinity(0)
    if got != wanted:
        setaffinity(0, before)
        raise InvalidArgument(
            f"cpus {sorted(wanted - got)} are not available to this process", field="cpus"
        )
    # Twice: a thread started while the first pass ran, by a thread not yet
    # moved, is caught by the second (threads inherit their creator's set).
    for _pass in range(2):
        for task in os.listdir("/proc/self/task"):
            try:
                setaffinity(int(task), wanted)
            except ProcessLookupError:
                continue  # the thread ended meanwhile
    return frozenset(wanted)
