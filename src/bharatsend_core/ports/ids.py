"""IdGenerator port: ids and random numbers come from here, never from the domain."""

from __future__ import annotations

from typing import Protocol

__all__ = ["IdGenerator"]


class IdGenerator(Protocol):
    """New ids, random bytes for secrets, and jitter for backoff."""

    def new_id(self, prefix: str) -> str:
        """A new time-sortable id with this prefix (``msg``, ``ten``...)."""
        ...

    def random_bytes(self, n: int) -> bytes:
        """``n`` bytes from a cryptographically secure source (key secrets)."""
        ...

    def jitter(self) -> float:
        """A number in [0, 1) for retry jitter."""
        ...
