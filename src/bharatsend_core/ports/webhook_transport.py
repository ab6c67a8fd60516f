"""The webhook transport port: one signed POST to a receiver, and what came of it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from attrs import frozen

__all__ = ["TransportResult", "WebhookTransport"]


@frozen
class TransportResult:
    """How one POST ended: a status, or no response and why."""

    #: The HTTP status, or None when no response came.
    status: int | None
    latency_ms: int
    #: Why no response came (``timeout``, ``connect_failed``, ``forbidden_address:loopback``...).
    error: str | None = None
    #: The first characters of the response body (at most 512).
    body_snippet: str | None = None


class WebhookTransport(Protocol):
    """Posts a webhook; never follows redirects; never raises for network faults."""

    def post(self, url: str, headers: Mapping[str, str], body: bytes) -> TransportResult:
        """POST ``body`` with ``headers``; network faults come back as ``error``."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...
