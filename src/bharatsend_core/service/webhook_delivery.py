"""Webhook delivery: claim due outbox rows, sign, POST them concurrently, record each attempt.

One :class:`WebhookDeliverer` per worker. :meth:`WebhookDeliverer.run_once`
leases a batch of due rows, signs each body with every active secret of its
endpoint (Standard Webhooks headers), posts them on a bounded thread pool,
and records every attempt with the row's next state in one transaction:

- 2xx: delivered;
- 410 Gone: dead, and the endpoint is disabled (the receiver asked to stop);
- anything else (another status, a timeout, a refused connection, an address
  the SSRF guard refuses): retried after the next delay of the schedule
  (``now, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h`` with ±20% jitter), and
  dead after the last, which also marks the endpoint failing; an endpoint
  failing for ``disable_after`` is disabled.

A row whose endpoint is disabled or gone is dead at once (replay it after
enabling the endpoint). The payload was fixed when the event was written, so a
replay sends the same body; the ``webhook-id`` is the event id on every try.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from functools import partial

import attrs

from bharatsend_core.domain.webhooks import DEFAULT_RETRY_SCHEDULE, WebhookEndpoint
from bharatsend_core.domain.webhooks import signature_headers as sign_headers
from bharatsend_core.ports.storage import DeliveryAttempt, OutboxEntry, OutboxState, UnitOfWork
from bharatsend_core.ports.webhook_transport import TransportResult, WebhookTransport
from bharatsend_core.service.context import Context
from bharatsend_core.service.events import WebhookFailure

__all__ = ["WebhookDeliverer"]

_log = logging.getLogger(__name__)
_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, sort_keys=True)


class WebhookDeliverer:
    """Delivers the outbox; see the module docstring."""

    def __init__(
        self,
        ctx: Context,
        transport: WebhookTransport,
        *,
        owner: str,
        concurrency: int = 16,
        batch: int = 200,
        lease: timedelta = timedelta(seconds=120),
        schedule: Sequence[timedelta] = DEFAULT_RETRY_SCHEDULE,
        disable_after: timedelta = timedelta(days=5),
        rng: random.Random | None = None,
    ) -> None:
        if concurrency < 1 or batch < 1 or not schedule:
            raise ValueError("concurrency and batch must be at least 1, schedule non-empty")
        self._ctx = ctx
        self._transport = transport
        self.owner = owner
        self.batch = batch
        self.lease = lease
        self.schedule = tuple(schedule)
        self.disable_after = disable_after
        self._rng = rng or random.Random()  # noqa: S311 - retry jitter
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="webhook")
        #: Attempts made and how they ended, for health checks and benchmarks.
        self.delivered = 0
        self.failed_attempts = 0
        self.dead = 0

    def run_once(self) -> int:
        """Deliver one batch of due rows; how many attempts were made."""
        now = self._ctx.clock.now()

        def claim(uow: UnitOfWork) -> tuple[list[OutboxEntry], dict[str, WebhookEndpoint]]:
            entries = list(uow.webhooks.claim(self.owner, now, self.lease, self.batch))
            endpoints: dict[str, WebhookEndpoint] = {}
            for entry in entries:
                if entry.endpoint_id not in endpoints:
                    found = uow.webhooks.get_endpoint(entry.tenant_id, entry.endpoint_id)
                    if found is not None:
                        endpoints[found.id] = found
            return entries, endpoints

        entries, endpoints = self._ctx.write(claim)
        if not entries:
            return 0
        sent: list[tuple[OutboxEntry, TransportResult | None]] = []
        jobs = []
        for entry in entries:
            endpoint = endpoints.get(entry.endpoint_id)
            if endpoint is None or not endpoint.enabled:
                sent.append((entry, None))
                continue
            jobs.append((entry, self._pool.submit(self._post, entry, endpoint, now)))
        sent.extend((entry, future.result()) for entry, future in jobs)
        self._ctx.write(lambda uow: self._record(uow, sent, endpoints))
        return len(sent)

    def _post(
        self, entry: OutboxEntry, endpoint: WebhookEndpoint, now: datetime
    ) -> TransportResult:
        body = _JSON.encode(dict(entry.payload)).encode("utf-8")
        headers = sign_headers(
            endpoint.signing_secrets(now), entry.event_id, int(now.timestamp()), body
        )
        try:
            return self._transport.post(endpoint.url, headers, body)
        except Exception as e:  # a transport bug must not lose the row
            _log.exception("webhook %s: transport failed", entry.event_id)
            return TransportResult(None, 0, f"transport_error:{type(e).__name__}")

    def _record(
        self,
        uow: UnitOfWork,
        sent: Sequence[tuple[OutboxEntry, TransportResult | None]],
        endpoints: dict[str, WebhookEndpoint],
    ) -> None:
        now = self._ctx.clock.now()
        changed: dict[str, WebhookEndpoint] = {}
        for entry, result in sent:
            number = entry.attempts + 1
            if result is None:
                attempt = DeliveryAttempt(
                    entry.event_id, entry.endpoint_id, number, now, None, 0, "endpoint_disabled"
                )
                update = attrs.evolve(
                    entry,
                    state="dead",
                    attempts=number,
                    next_attempt_at=None,
                    last_status=None,
                    last_error="endpoint_disabled",
                    finished_at=now,
                )
                self.dead += 1
            else:
                attempt = DeliveryAttempt(
                    entry.event_id,
                    entry.endpoint_id,
                    number,
                    now,
                    result.status,
                    result.latency_ms,
                    result.error,
                    result.body_snippet,
                )
                update = self._next(entry, result, number, now, endpoints, changed)
            if not uow.webhooks.finish(update, attempt, self.owner):
                _log.warning("webhook %s: lease lost; another worker has it", entry.event_id)
            elif update.state != "delivered" and self._ctx.hub.wants_failures:
                failure = WebhookFailure(
                    tenant_id=entry.tenant_id,
                    event_id=entry.event_id,
                    event_type=entry.event_type,
                    endpoint_id=entry.endpoint_id,
                    attempt=attempt,
                    final=update.state == "dead",
                )
                uow.after_commit(partial(self._ctx.hub.publish_failure, failure))
        for endpoint in changed.values():
            uow.webhooks.update_endpoint(endpoint)
            before = endpoints.get(endpoint.id)
            if before is not None and before.enabled and not endpoint.enabled:
                # The operator's signal: alert on this line (never carries event content).
                _log.error(
                    "endpoint.disabled %s (tenant %s): %s",
                    endpoint.id,
                    endpoint.tenant_id,
                    endpoint.disabled_reason,
                )
            elif before is not None and before.failing_since is None and endpoint.failing_since:
                _log.warning(
                    "endpoint.failing %s (tenant %s): an event was dead-lettered",
                    endpoint.id,
                    endpoint.tenant_id,
                )

    def _next(
        self,
        entry: OutboxEntry,
        result: TransportResult,
        number: int,
        now: datetime,
        endpoints: dict[str, WebhookEndpoint],
        changed: dict[str, WebhookEndpoint],
    ) -> OutboxEntry:
        endpoint = changed.get(entry.endpoint_id) or endpoints[entry.endpoint_id]
        status = result.status
        state: OutboxState = "dead"
        due: datetime | None = None
        if status is not None and 200 <= status < 300:
            self.delivered += 1
            state = "delivered"
            if endpoint.failing_since is not None:
                changed[endpoint.id] = endpoint.delivered()
        elif status == 410:
            self.failed_attempts += 1
            self.dead += 1
            changed[endpoint.id] = endpoint.gone()
        elif number >= len(self.schedule):
            self.failed_attempts += 1
            self.dead += 1
            changed[endpoint.id] = endpoint.failed(now, self.disable_after)
        else:
            self.failed_attempts += 1
            state = "pending"
            due = now + self.schedule[number] * (0.8 + 0.4 * self._rng.random())
        return attrs.evolve(
            entry,
            state=state,
            attempts=number,
            next_attempt_at=due,
            last_status=status,
            last_error=result.error,
            finished_at=None if state == "pending" else now,
        )

    def close(self) -> None:
        """Stop the pool (after the posts in progress)."""
        self._pool.shutdown(wait=True)
