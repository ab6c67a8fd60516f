"""Dispatch wake-ups inside one process, shared by the storage adapters."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

__all__ = ["DispatchSignal", "run_callbacks"]

_log = logging.getLogger(__name__)


class DispatchSignal:
    """In-process wake-ups for dispatch waiters: a condition over a generation counter.

    Each waiting thread remembers the generation it last saw, so a wake-up
    that lands between two of its waits is not lost: the next wait returns at
    once. A thread's first wait counts every wake-up since the storage began.
    """

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._generation = 0
        self._seen = threading.local()

    def notify(self) -> None:
        """Wake every waiter (and the next wait of every thread not waiting now)."""
        with self._condition:
            self._generation += 1
            self._condition.notify_all()

    def wait(self, timeout: float) -> bool:
        """True once the generation moved past what this thread saw; False on timeout."""
        with self._condition:
            seen: int = getattr(self._seen, "generation", 0)
            if self._generation == seen and timeout > 0:
                self._condition.wait_for(lambda: self._generation != seen, timeout)
            woke = self._generation != seen
            self._seen.generation = self._generation
            return woke


def run_callbacks(callbacks: list[Callable[[], None]]) -> None:
    """Run after-commit callbacks in order; one failing is logged and the rest still run."""
    for callback in callbacks:
        try:
            callback()
        except Exception:
            _log.exception("an after-commit callback failed")
