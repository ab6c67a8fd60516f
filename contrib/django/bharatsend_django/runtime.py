"""The one facade per process, built lazily from settings, and the signal and outbox wiring."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import attrs
from django.conf import settings as django_settings

from bharatsend_core import BharatSend
from bharatsend_core.app import storage_for_url
from bharatsend_core.domain.errors import ConfigurationError
from bharatsend_core.domain.webhooks import WebhookEvent
from bharatsend_core.http import ApiApp
from bharatsend_core.service.events import WebhookFailure
from bharatsend_django import signals
from bharatsend_django.conf import DjangoSettings, load

__all__ = [
    "OutboxMessage",
    "api",
    "check_not_in_shared_sqlite_atomic",
    "clear_outbox",
    "config",
    "facade",
    "outbox",
    "reset",
]

_lock = threading.RLock()
_state: dict[str, Any] = {}

#: Messages accepted while ``BHARATSEND["OUTBOX"]`` is on (tests assert on it, like mail.outbox).
outbox: list[OutboxMessage] = []


@attrs.frozen
class OutboxMessage:
    """A message accepted in outbox mode, with its text (kept in memory for tests only)."""

    id: str
    tenant_id: str
    phone_number: str
    content: str = attrs.field(repr=False)
    header: str
    dlt_template_id: str
    client_message_id: str | None
    metadata: dict[str, Any]
    sandbox: bool
    created_at: datetime


def config() -> DjangoSettings:
    """``settings.BHARATSEND``, validated (cached until :func:`reset`)."""
    with _lock:
        if "config" not in _state:
            _state["config"] = load(
                getattr(django_settings, "BHARATSEND", None), django_settings.DATABASES
            )
        result: DjangoSettings = _state["config"]
        return result


def facade() -> BharatSend:
    """The configured :class:`~bharatsend_core.BharatSend` of this process."""
    with _lock:
        bs: BharatSend | None = _state.get("facade")
        if bs is None:
            conf = config()
            core = conf.core
            storage = storage_for_url(core.database_url, pool_size=core.database_pool_size)
            bs = BharatSend(storage=storage, settings=core)
            bs.on_status(_publish_status(bs))
            bs.on_webhook_failure(_publish_failure(bs))
            _state["facade"] = bs
        return bs


def api() -> ApiApp:
    """The HTTP API over :func:`facade` (one per process)."""
    with _lock:
        app: ApiApp | None = _state.get("api")
        if app is None:
            app = ApiApp(facade(), config().api)
            _state["api"] = app
        return app


def reset() -> None:
    """Forget the facade and settings (tests that change ``BHARATSEND``); closes the facade."""
    with _lock:
        bs: BharatSend | None = _state.pop("facade", None)
        _state.clear()
        if bs is not None:
            bs.close()


def clear_outbox() -> None:
    """Empty :data:`outbox` in place (between tests; like clearing ``mail.outbox``)."""
    with _lock:
        outbox.clear()


def on_setting_changed(*, setting: str, **_kwargs: Any) -> None:
    """``override_settings(BHARATSEND=...)`` (or ``DATABASES``) rebuilds the facade."""
    if setting in ("BHARATSEND", "DATABASES"):
        reset()


def check_not_in_shared_sqlite_atomic() -> None:
    """Refuse to write from inside a Django atomic block on the core's own SQLite file.

    The core writes through its own connection. On SQLite, a Django atomic
    block that has written holds the file's only write lock, so the core would
    wait ``busy_timeout`` (5 s) and fail; and one that has only read holds a
    WAL snapshot that the core's commit makes stale, so Django's next write in
    the block fails with "database is locked". Neither is what the caller
    meant, so fail at once with what to do instead. PostgreSQL has no such limit.
    """
    from django.db import connections
    from sqlalchemy.engine import make_url

    url = make_url(config().core.database_url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return
    core_file = os.path.realpath(str(url.database))
    for connection in connections.all(initialized_only=True):
        if connection.vendor != "sqlite" or not connection.in_atomic_block:
            continue
        name = str(connection.settings_dict.get("NAME") or "")
        if name and os.path.realpath(name) == core_file:
            raise ConfigurationError(
                f"send_sms was called inside a transaction.atomic() block on Django's SQLite"
                f" database {connection.alias!r}, the file bharatsend-core writes to with its"
                " own connection: SQLite has one writer at a time, so the send would wait for"
                " the lock and fail. Call send_sms outside the atomic block (e.g. in"
                " transaction.on_commit), or give BHARATSEND['DATABASE'] its own URL"
                " (sqlite:///another-file.db or PostgreSQL)",
                field="DATABASE",
            )


def _publish_status(bs: BharatSend) -> Any:
    def listener(events: Sequence[WebhookEvent]) -> None:
        capture = config().outbox
        accepted = signals.message_accepted.has_listeners()
        changed = signals.message_status_changed.has_listeners()
        for event in events:
            if event.type == "sms.accepted":
                if capture:
                    _capture(bs, event)
                if accepted:
                    signals.message_accepted.send(sender=bs, event=_normalise(bs, event))
            elif changed:
                signals.message_status_changed.send(sender=bs, event=_normalise(bs, event))

    return listener


def _publish_failure(bs: BharatSend) -> Any:
    def listener(failure: WebhookFailure) -> None:
        if signals.webhook_failed.has_listeners():
            signals.webhook_failed.send(sender=bs, failure=failure)

    return listener


def _normalise(bs: BharatSend, event: WebhookEvent) -> signals.StatusEvent:
    data = dict(event.payload.get("data", {}))
    receipt = None
    if event.type in ("sms.delivered", "sms.failed"):
        receipts = bs.message_receipts(event.tenant_id, event.message_id)
        receipt = receipts[0] if receipts else None
    return signals.StatusEvent(
        event_type=event.type,
        event_id=event.id,
        message_id=event.message_id,
        tenant_id=event.tenant_id,
        client_message_id=data.get("client_message_id"),
        status=str(data.get("status", "")),
        timestamp=event.at,
        error=data.get("error"),
        metadata=dict(data.get("metadata") or {}),
        payload=dict(event.payload),
        receipt=receipt,
    )


def _capture(bs: BharatSend, event: WebhookEvent) -> None:
    message = bs.get_message(event.tenant_id, event.message_id)
    with _lock:
        outbox.append(
            OutboxMessage(
                id=message.id,
                tenant_id=message.tenant_id,
                phone_number=message.phone,
                content=message.content,
                header=message.header,
                dlt_template_id=message.template_id,
                client_message_id=message.client_message_id,
                metadata=dict(message.metadata),
                sandbox=message.sandbox,
                created_at=message.created_at,
            )
        )
