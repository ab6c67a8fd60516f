"""In-process listeners: status events after commit, webhook failures, unsubscribe."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from datetime import timedelta

import pytest

from bharatsend_core import BharatSend
from bharatsend_core.adapters.memory.carrier import MemoryCarrier
from bharatsend_core.adapters.memory.webhook_transport import MemoryTransport
from bharatsend_core.adapters.system import SystemClock
from bharatsend_core.domain.errors import InsufficientCredits
from bharatsend_core.domain.routing import RouteConfig
from bharatsend_core.domain.webhooks import WebhookEvent
from bharatsend_core.ports.carrier import Carrier
from bharatsend_core.service.events import WebhookFailure

from .world import OTP_TEMPLATE, OTP_TEXT, PEPPER, World, make_world


@pytest.fixture
def world() -> Iterator[World]:
    bs = BharatSend.in_memory(key_pepper=PEPPER, webhooks_allow_private=True)
    yield make_world(bs, None, credits=100)  # type: ignore[arg-type]
    bs.close()


def send(world: World, phone: str = "+919812345678") -> str:
    return world.bs.send(
        world.tenant_id, phone_number=phone, content=OTP_TEXT, dlt_template_id=OTP_TEMPLATE
    ).id


def test_an_accepted_message_is_published_after_its_commit(world: World) -> None:
    batches: list[Sequence[WebhookEvent]] = []
    unsubscribe = world.bs.on_status(batches.append)
    message_id = send(world)
    assert [[(e.type, e.message_id) for e in b] for b in batches] == [
        [("sms.accepted", message_id)]
    ]
    # A refused send commits nothing and publishes nothing.
    for n in range(3):
        send(world, f"+91981234560{n}")
    with pytest.raises(InsufficientCredits):
        send(world, "+919812345609")
    published = sum(len(b) for b in batches)
    assert published == 1 + 3  # 100 paise buy four 25-paise messages
    unsubscribe()
    world.bs.top_up(world.tenant_id, paise=100)
    send(world, "+919812345699")
    assert sum(len(b) for b in batches) == published


def test_a_worker_publishes_sent_and_delivered(world: World) -> None:
    events: list[WebhookEvent] = []
    world.bs.on_status(events.extend)
    carriers: list[MemoryCarrier] = []

    def factory(config: RouteConfig) -> Carrier:
        carrier = MemoryCarrier(config.name, clock=SystemClock())
        carriers.append(carrier)
        return carrier

    world.bs.add_route("agg1", host="127.0.0.1", port=2775, system_id="bsend", password="secret")
    worker = world.bs.worker(
        carrier_factory=factory, sandbox_carrier=False, webhooks=False, poll_interval=0.02
    ).start()
    try:
        message_id = send(world)
        deadline = time.monotonic() + 10
        while not any(e.type == "sms.sent" for e in events):
            assert time.monotonic() < deadline, "no sms.sent"
            time.sleep(0.01)
        while not any(e.type == "sms.delivered" for e in events):
            assert time.monotonic() < deadline, "no sms.delivered"
            time.sleep(0.01)
    finally:
        worker.stop()
    mine = [e.type for e in events if e.message_id == message_id]
    assert mine == ["sms.accepted", "sms.sent", "sms.delivered"]


def test_failed_webhook_attempts_are_published_with_the_final_one_marked(world: World) -> None:
    failures: list[WebhookFailure] = []
    world.bs.on_webhook_failure(failures.append)
    endpoint = world.bs.add_webhook_endpoint(world.tenant_id, "http://127.0.0.1:9/hooks")
    send(world)
    transport = MemoryTransport()
    transport.script(500, "connection refused")
    deliverer = world.bs.webhook_deliverer(
        transport=transport, schedule=(timedelta(0), timedelta(0))
    )
    try:
        for _ in range(3):
            deliverer.run_once()
    finally:
        deliverer.close()
    assert [(f.attempt.number, f.attempt.status, f.final) for f in failures] == [
        (1, 500, False),
        (2, None, True),
    ]
    assert {f.endpoint_id for f in failures} == {endpoint.id}
    assert failures[0].event_type == "sms.accepted"


def test_webhooks_queued_is_signalled_only_when_a_commit_queued_deliveries(world: World) -> None:
    signals: list[None] = []
    world.bs._ctx.hub.on_webhooks_queued(lambda: signals.append(None))
    send(world)  # no endpoint yet: nothing queued, the delivery loop is not woken
    assert signals == []
    world.bs.add_webhook_endpoint(world.tenant_id, "http://127.0.0.1:9/hooks")
    send(world, "+919812345670")
    assert signals == [None]
