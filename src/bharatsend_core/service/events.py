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
from datetime import datetime

from attrs import frozen

from bharatsend_core.domain.message import Message
from bharatsend_core.domain.webhooks import WebhookEvent
from bharatsend_core.ports.storage import DeliveryAttempt

__all__ = [
    "EventHub",
    "HandOff",
    "Handed",
    "StatusListener",
    "WebhookFailure",
    "WebhookFailureListener",
]

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


@frozen
class Handed:
    """A just-accepted message a dispatcher in this process claimed inside the accept transaction.

    The accept path stores ``message`` (already ``submitting`` on a route)
    instead of the accepted one, queues its dispatch row leased to ``owner``
    until ``lease_expires_at``, and calls ``submit`` after the commit.
    """

    message: Message
    owner: str
    lease_expires_at: datetime
    submit: Callable[[], None]


#: Offered each message ``send()`` accepts, inside its transaction; None declines.
HandOff = Callable[[Message, datetime], Handed | None]

StatusListener = Callable[[Sequence[WebhookEvent]], None]
WebhookFailureListener = Callable[[WebhookFailure], None]


class _Listeners:
    """One kind of listener: an immutable tuple swapped under a lock, so publishing
    iterates a snapshot without locking; a failing listener is logged and skipped.
    """

    def __init__(self, what: str) -> None:
        self._what = what
        self._lock = threading.Lock()
        self.listeners: tuple[Callable[..., None], ...] = ()

    def add(self, listener: Callable[..., None]) -> Callable[[], None]:
        with self._lock:
            self.listeners = (*self.listeners, listener)

        def unsubscribe() -> None:
            with self._lock:
                self.listeners = tuple(x for x in self.listeners if x is not listener)

        return unsubscribe

    def call(self, *args: object) -> None:
        for listener in self.listeners:
            try:
                listener(*args)
            except Exception:
                _log.exception("a %s listener failed", self._what)


class EventHub:
    """Subscribers to status events, webhook failures and queued webhooks (thread-safe)."""

    def __init__(self) -> None:
        self._status = _Listeners("status")
        self._failures = _Listeners("webhook failure")
        self._queued = _Listeners("webhook-queued")
        self._hand_off: HandOff | None = None
        self._hand_off_lock = threading.Lock()

    @property
    def hand_off(self) -> HandOff | None:
        """The running worker's offer for freshly accepted messages, if one is registered."""
        return self._hand_off

    def set_hand_off(self, hand_off: HandOff) -> Callable[[], None]:
        """Offer accepted messages to ``hand_off`` (the newest wins); returns its removal.

        A worker registers here so that an OTP accepted in its process is
        claimed in the accept transaction and submitted right after the
        commit, with no claim transaction in between.
        """
        with self._hand_off_lock:
            self._hand_off = hand_off

        def remove() -> None:
            with self._hand_off_lock:
                if self._hand_off is hand_off:
                    self._hand_off = None

        return remove

    @property
    def wants_status(self) -> bool:
        """Whether anyone listens for status events (skip building them otherwise)."""
        return bool(self._status.listeners)

    @property
    def wants_failures(self) -> bool:
        """Whether anyone listens for webhook failures."""
        return bool(self._failures.listeners)

    def on_status(self, listener: StatusListener) -> Callable[[], None]:
        """Call ``listener`` with each committed batch of events; returns the unsubscribe."""
        return self._status.add(listener)

    def on_webhook_failure(self, listener: WebhookFailureListener) -> Callable[[], None]:
        """Call ``listener`` for each failed delivery attempt; returns the unsubscribe."""
        return self._failures.add(listener)

    def on_webhooks_queued(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call ``listener`` after a commit that queued webhook deliveries; returns the unsubscribe.

        A worker's delivery loop waits on it, so it takes the database's
        write lock only when there is something to deliver.
        """
        return self._queued.add(listener)

    def publish_status(self, events: Sequence[WebhookEvent]) -> None:
        """Hand committed events to every status listener."""
        self._status.call(events)

    def publish_failure(self, failure: WebhookFailure) -> None:
        """Hand a failed delivery attempt to every failure listener."""
        self._failures.call(failure)

    def publish_queued(self) -> None:
        """Tell the delivery loops that webhook rows were committed."""
        self._queued.call()
