"""An in-process webhook transport: records every POST and answers as scripted (tests)."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Mapping

from attrs import frozen

from bharatsend_core.ports.webhook_transport import TransportResult

__all__ = ["MemoryTransport", "Posted"]


@frozen
class Posted:
    """One POST the transport received."""

    url: str
    headers: Mapping[str, str]
    body: bytes


class MemoryTransport:
    """Answers 200 unless :meth:`script` queued other results (a status or an error string)."""

    def __init__(self) -> None:
        self.posted: list[Posted] = []
        self._script: deque[int | str] = deque()
        self._lock = threading.Lock()

    def script(self, *results: int | str) -> None:
        """Queue answers for the next posts: an int is a status, a str a network error."""
        with self._lock:
            self._script.extend(results)

    def post(self, url: str, headers: Mapping[str, str], body: bytes) -> TransportResult:
        """Record the post and answer the next scripted result (200 by default)."""
        with self._lock:
            self.posted.append(Posted(url, dict(headers), body))
            result = self._script.popleft() if self._script else 200
        if isinstance(result, str):
            return TransportResult(None, 1, result)
        return TransportResult(result, 1, None, "ok")

    def close(self) -> None:
        """Nothing to release."""
