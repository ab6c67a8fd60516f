"""Django signals for what the core does in this process.

- ``message_accepted(sender, event)``: a message was accepted (after its commit).
- ``message_status_changed(sender, event)``: any later status change (sent,
  delivered, failed, retrying), with ``event.receipt`` holding the stored
  delivery receipt that caused it, when one did.
- ``webhook_failed(sender, failure)``: a webhook delivery attempt failed;
  ``failure.final`` once it is dead-lettered.

``sender`` is the :class:`~bharatsend_core.BharatSend` facade. Signals fire in
the process that made the change: ``message_accepted`` where ``send_sms`` or
the API ran, status changes and webhook failures in the worker process
(``manage.py bharatsend_worker``), so connect receivers in an ``AppConfig.ready``
that every process runs.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import attrs
from django.dispatch import Signal

__all__ = ["StatusEvent", "message_accepted", "message_status_changed", "webhook_failed"]

message_accepted = Signal()
message_status_changed = Signal()
webhook_failed = Signal()


@attrs.frozen
class StatusEvent:
    """A normalised status event (like anymail's tracking event); never the message text."""

    #: ``sms.accepted``, ``sms.sent``, ``sms.delivered``, ``sms.failed``, ``sms.retrying``.
    event_type: str
    #: The event id, stable across retries of the same change (``evt_…``).
    event_id: str
    message_id: str
    tenant_id: str
    client_message_id: str | None
    #: The message status after the change.
    status: str
    timestamp: datetime
    #: ``{"code", "reason", "carrier_code"}`` for ``sms.failed``; None otherwise.
    error: dict[str, Any] | None
    #: The metadata the message was sent with.
    metadata: dict[str, Any]
    #: The webhook payload of the event, as receivers of the webhooks get it.
    payload: dict[str, Any]
    #: The stored delivery receipt behind a delivered/failed event, if one caused it.
    receipt: Any = None
