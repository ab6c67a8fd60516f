"""Webhook endpoints, and the outbox rows every status change writes in its own transaction.

:func:`record_events` is called by the accept path, the dispatcher and the
receipt inbox inside the unit of work that changes messages: it turns the
timeline entries a change appended into ``sms.*`` events
(``domain.webhooks.events_from``) and enqueues one outbox row per interested
endpoint. The rows commit or roll back with the change, so a status change
without its event (or an event without its change) cannot happen.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from functools import partial

import attrs
from attrs import frozen

from bharatsend_core.domain.errors import WebhookEndpointNotFound
from bharatsend_core.domain.message import Message
from bharatsend_core.domain.webhooks import (
    EndpointSecret,
    WebhookEndpoint,
    WebhookEvent,
    check_filters,
    check_url,
    events_from,
    generate_secret,
    makes_events,
    wants,
)
from bharatsend_core.ports.storage import DeliveryAttempt, OutboxEntry, OutboxState, UnitOfWork
from bharatsend_core.service.context import Context, require_tenant
from bharatsend_core.service.events import EventHub

__all__ = ["CreatedEndpoint", "WebhookService", "record_events"]

_SECRET_BYTES = 32


def record_events(
    uow: UnitOfWork,
    changes: Sequence[tuple[Message, int]],
    at: datetime,
    hub: EventHub | None = None,
) -> int:
    """Enqueue the events of messages changed in this unit of work; how many rows were new.

    ``changes`` pairs each message (as written) with the length its timeline
    had before the change. Endpoints are read once per tenant per call. With
    a ``hub`` that has listeners, the events are also handed to them once the
    unit of work commits.
    """
    endpoints: dict[str, list[WebhookEndpoint]] = {}
    entries: list[OutboxEntry] = []
    published: list[WebhookEvent] = []
    listening = hub is not None and hub.wants_status
    for message, before in changes:
        if not makes_events(message, before - 1):
            continue  # a claim, a part submitted: no status changed
        if message.tenant_id not in endpoints:
            endpoints[message.tenant_id] = [
                e for e in uow.webhooks.list_endpoints(message.tenant_id) if e.enabled
            ]
        if not listening and not endpoints[message.tenant_id]:
            continue  # nobody to tell: skip building the events
        events = events_from(message, before - 1)
        if not events:
            continue
        if listening:
            published.extend(events)
        for event in events:
            for endpoint in endpoints[message.tenant_id]:
                if wants(endpoint.events, event.type):
                    entries.append(
                        OutboxEntry(
                            event_id=event.id,
                            endpoint_id=endpoint.id,
                            tenant_id=event.tenant_id,
                            event_type=event.type,
                            payload=event.payload,
                            created_at=at,
                            next_attempt_at=at,
                        )
                    )
    if published and hub is not None:
        uow.after_commit(partial(hub.publish_status, tuple(published)))
    if not entries:
        return 0
    queued = uow.webhooks.enqueue(entries)
    if queued and hub is not None:
        uow.after_commit(hub.publish_queued)
    return queued


@frozen
class CreatedEndpoint:
    """A new endpoint and its signing secret, shown this once."""

    endpoint: WebhookEndpoint
    secret: str

    @property
    def id(self) -> str:
        """The endpoint id."""
        return self.endpoint.id


class WebhookService:
    """Use cases on webhook endpoints and their deliveries."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    def add_endpoint(
        self, tenant_id: str, url: str, events: Sequence[str] = ("sms.*",)
    ) -> CreatedEndpoint:
        """Register an endpoint; ``WebhookUrlForbidden`` for a URL the SSRF guard refuses."""
        check_url(url, allow_private=self._ctx.settings.webhooks_allow_private)
        filters = check_filters(events)
        now = self._ctx.clock.now()
        secret = generate_secret(self._ctx.ids.random_bytes(_SECRET_BYTES))
        endpoint = WebhookEndpoint(
            id=self._ctx.ids.new_id("ep"),
            tenant_id=tenant_id,
            url=url,
            events=filters,
            secrets=(EndpointSecret(secret, now),),
            created_at=now,
        )

        def run(uow: UnitOfWork) -> CreatedEndpoint:
            require_tenant(uow, tenant_id)
            uow.webhooks.add_endpoint(endpoint)
            return CreatedEndpoint(endpoint, secret)

        return self._ctx.write(run)

    def _change(
        self,
        tenant_id: str,
        endpoint_id: str,
        change: Callable[[WebhookEndpoint], WebhookEndpoint],
    ) -> WebhookEndpoint:
        def run(uow: UnitOfWork) -> WebhookEndpoint:
            endpoint = uow.webhooks.get_endpoint(tenant_id, endpoint_id)
            if endpoint is None:
                raise WebhookEndpointNotFound(
                    f"no webhook endpoint {endpoint_id!r}", field="endpoint_id"
                )
            changed = change(endpoint)
            uow.webhooks.update_endpoint(changed)
            return changed

        return self._ctx.write(run)

    def rotate_secret(
        self, tenant_id: str, endpoint_id: str, overlap: timedelta = timedelta(hours=24)
    ) -> CreatedEndpoint:
        """A new secret; the old ones keep signing for ``overlap`` so receivers can switch."""
        secret = generate_secret(self._ctx.ids.random_bytes(_SECRET_BYTES))
        now = self._ctx.clock.now()
        endpoint = self._change(tenant_id, endpoint_id, lambda e: e.rotated(secret, now, overlap))
        return CreatedEndpoint(endpoint, secret)

    def set_enabled(self, tenant_id: str, endpoint_id: str, enabled: bool) -> WebhookEndpoint:
        """Enable (clearing the failure record) or disable an endpoint."""
        return self._change(
            tenant_id,
            endpoint_id,
            lambda e: attrs.evolve(
                e,
                enabled=enabled,
                disabled_reason=None if enabled else "disabled",
                failing_since=None if enabled else e.failing_since,
            ),
        )

    def list_endpoints(self, tenant_id: str) -> Sequence[WebhookEndpoint]:
        """The tenant's endpoints."""
        return self._ctx.read(lambda uow: uow.webhooks.list_endpoints(tenant_id))

    def deliveries(
        self,
        tenant_id: str,
        *,
        state: OutboxState | None = None,
        endpoint_id: str | None = None,
        limit: int = 100,
    ) -> Sequence[OutboxEntry]:
        """The tenant's outbox, newest first (dead letters with ``state="dead"``)."""
        return self._ctx.read(
            lambda uow: uow.webhooks.list(
                tenant_id, state=state, endpoint_id=endpoint_id, limit=limit
            )
        )

    def attempts(
        self, tenant_id: str, event_id: str, endpoint_id: str
    ) -> Sequence[DeliveryAttempt]:
        """Every attempt at delivering one event to one endpoint."""

        def run(uow: UnitOfWork) -> Sequence[DeliveryAttempt]:
            entry = uow.webhooks.get(event_id, endpoint_id)
            if entry is None or entry.tenant_id != tenant_id:
                return []
            return uow.webhooks.attempts(event_id, endpoint_id)

        return self._ctx.read(run)

    def replay(self, tenant_id: str, event_id: str, endpoint_id: str) -> bool:
        """Send an event again (a dead letter, or one already delivered); False if unknown."""
        now = self._ctx.clock.now()

        def run(uow: UnitOfWork) -> bool:
            entry = uow.webhooks.get(event_id, endpoint_id)
            if entry is None or entry.tenant_id != tenant_id:
                return False
            return uow.webhooks.replay(event_id, endpoint_id, now)

        return self._ctx.write(run)
