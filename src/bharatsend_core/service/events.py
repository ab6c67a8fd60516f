"""In-process listeners for what happened, called after the change committed.

The webhook outbox is the durable, cross-process way to learn about status
changes; this hub is the in-process one (Django signals, metrics, tests). A
listener runs on the thread that made the change, after its transaction
committed, so it never sees a change that later rolls back, and an exception
in it is logged without touching the change. Only changes made in this
process are seen: a message delivered by a worker on another host reaches
that host's listeners.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

from attrs import frozen

from bharatsend_core.domain.webhooks import WebhookEvent
from bharatsend_core.ports.storage import DeliveryAttempt

__all__ = ["EventHub", "StatusListener", "WebhookFailure", "WebhookFailureListener"]

_log = logging.getLogger(__name__)


@frozen
class WebhookFailure:
    """A webhook delivery attempt that failed; ``final`` once it is given up (dead letter)."""

    tenant_id: str
    event_id: str
    event_type: str
    endpoint_id: str
    attempt: DeliveryAttempt
    final: bool


StatusListener = Callable[[Sequence[WebhookEvent]], None]
WebhookFailureListener = Callable[[WebhookFailure], None]


class EventHub:
    """Subscribers to status events and webhook failures (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._status: tuple[StatusListener, ...] = ()
        self._failures: tuple[WebhookFailureListener, ...] = ()
        self._queued: tuple[Callable[[], None], ...] = ()

    def on_webhooks_queued(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call ``listener`` after a commit that queued webhook deliveries; returns the unsubscribe.

        A worker's delivery loop waits on it, so it takes the database's
        write lock only when there is something to deliver.
        """
        with self._lock:
            self._queued = (*self._queued, listener)

        def unsubscribe() -> None:
            with self._lock:
                self._queued = tuple(x for x in self._queued if x is not listener)

        return unsubscribe

    def publish_queued(self) -> None:
        """Tell the delivery loops that webhook rows were committed."""
        for listener in self._queued:
            try:
                listener()
            except Exception:
                _log.exception("a webhook-queued listener failed")

    @property
    def wants_status(self) -> bool:
        """Whether anyone listens for status events (skip building them otherwise)."""
        return bool(self._status)

    @property
    def wants_failures(self) -> bool:
        """Whether anyone listens for webhook failures."""
        return bool(self._failures)

    def on_status(self, listener: StatusListener) -> Callable[[], None]:
        """Call ``listener`` with each committed batch of events; returns the unsubscribe."""
        with self._lock:
            self._status = (*self._status, listener)

        def unsubscribe() -> None:
            with self._lock:
                self._status = tuple(x for x in self._status if x is not listener)

        return unsubscribe

    def on_webhook_failure(self, listener: WebhookFailureListener) -> Callable[[], None]:
        """Call ``listener`` for each failed delivery attempt; returns the unsubscribe."""
        with self._lock:
            self._failures = (*self._failures, listener)

        def unsubscribe() -> None:
            with self._lock:
                self._failures = tuple(x for x in self._failures if x is not listener)

        return unsubscribe

    def publish_status(self, events: Sequence[WebhookEvent]) -> None:
        """Hand committed events to every status listener."""
        for listener in self._status:
            try:
                listener(events)
            except Exception:
                _log.exception("a status listener failed")

    def publish_failure(self, failure: WebhookFailure) -> None:
        """Hand a failed delivery attempt to every failure listener."""
        for listener in self._failures:
            try:
                listener(failure)
            except Exception:
                _log.exception("a webhook failure listener failed")
