"""Webhook delivery: signing, retries on a fake clock, 410, dead letters, disabling, replay."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import pytest

from bharatsend_core import BharatSend
from bharatsend_core.adapters.memory.webhook_transport import MemoryTransport
from bharatsend_core.service.context import Context
from bharatsend_core.service.webhook_delivery import WebhookDeliverer
from bharatsend_core.testing import FakeClock, SequentialIds
from bharatsend_core.webhooks import verify

from .world import NOON_IST, OTP_TEMPLATE, OTP_TEXT, PEPPER, World, make_world

URL = "https://app.example.com/hooks/sms"


@pytest.fixture
def world() -> Iterator[World]:
    clock = FakeClock(NOON_IST)
    bs = BharatSend.in_memory(clock=clock, ids=SequentialIds(), key_pepper=PEPPER)
    yield make_world(bs, clock)
    bs.close()


def deliverer(world: World, transport: MemoryTransport, **options: object) -> WebhookDeliverer:
    ctx = Context(world.bs.storage, world.clock, SequentialIds(3), world.bs.settings)
    options.setdefault("concurrency", 4)
    return WebhookDeliverer(ctx, transport, owner="w1", **options)  # type: ignore[arg-type]


def send(world: World) -> str:
    return world.bs.send(
        world.tenant_id,
        phone_number="+919812345678",
        content=OTP_TEXT,
        dlt_template_id=OTP_TEMPLATE,
    ).id


def test_a_pending_event_is_posted_signed_and_marked_delivered(world: World) -> None:
    ep = world.bs.add_webhook_endpoint(world.tenant_id, URL)
    message_id = send(world)
    transport = MemoryTransport()
    delivery = deliverer(world, transport)
    assert delivery.run_once() == 1
    [posted] = transport.posted
    assert posted.url == URL
    now = world.clock.now().timestamp()
    event = verify(ep.secret, posted.headers, posted.body, now=now)
    assert event["type"] == "sms.accepted"
    assert event["data"]["id"] == message_id
    assert OTP_TEXT.encode() not in posted.body
    [entry] = world.bs.webhook_deliveries(world.tenant_id)
    assert entry.state == "delivered"
    assert entry.attempts == 1
    assert delivery.run_once() == 0  # nothing left


def test_failures_follow_the_retry_ladder_then_dead_letter_and_replay(world: World) -> None:
    ep = world.bs.add_webhook_endpoint(world.tenant_id, URL)
    send(world)
    transport = MemoryTransport()
    schedule = (timedelta(0), timedelta(seconds=5), timedelta(minutes=5))
    delivery = deliverer(world, transport, schedule=schedule)
    transport.script(500, "timeout", 503)
    assert delivery.run_once() == 1
    [entry] = world.bs.webhook_deliveries(world.tenant_id)
    assert entry.state == "pending"
    assert entry.last_status == 500
    assert entry.next_attempt_at is not None
    assert timedelta(seconds=4) <= entry.next_attempt_at - world.clock.now() <= timedelta(seconds=6)
    assert delivery.run_once() == 0  # not due yet
    world.clock.advance(6)
    assert delivery.run_once() == 1
    [entry] = world.bs.webhook_deliveries(world.tenant_id)
    assert entry.last_error == "timeout"
    world.clock.advance(timedelta(minutes=7))
    assert delivery.run_once() == 1
    [dead] = world.bs.webhook_deliveries(world.tenant_id, state="dead")
    assert dead.attempts == 3
    with world.bs.storage.unit_of_work() as uow:
        log = uow.webhooks.attempts(dead.event_id, ep.id)
    assert [(a.number, a.status, a.error) for a in log] == [
        (1, 500, None), (2, None, "timeout"), (3, 503, None),
    ]  # fmt: skip
    [endpoint] = world.bs.list_webhook_endpoints(world.tenant_id)
    assert endpoint.failing_since is not None
    assert endpoint.enabled
    # Replay after the receiver is fixed: the same event id and body go again.
    assert world.bs.replay_webhook(world.tenant_id, dead.event_id, ep.id)
    assert delivery.run_once() == 1
    assert transport.posted[-1].headers["webhook-id"] == dead.event_id
    assert json.loads(transport.posted[-1].body) == json.loads(transport.posted[0].body)
    [entry] = world.bs.webhook_deliveries(world.tenant_id)
    assert entry.state == "delivered"
    [endpoint] = world.bs.list_webhook_endpoints(world.tenant_id)
    assert endpoint.failing_since is None


def test_410_gone_disables_the_endpoint(world: World) -> None:
    world.bs.add_webhook_endpoint(world.tenant_id, URL)
    send(world)
    send(world)
    transport = MemoryTransport()
    transport.script(410)
    delivery = deliverer(world, transport, concurrency=1)
    delivery.run_once()
    [endpoint] = world.bs.list_webhook_endpoints(world.tenant_id)
    assert not endpoint.enabled
    assert endpoint.disabled_reason == "gone"
    states = sorted(e.state for e in world.bs.webhook_deliveries(world.tenant_id))
    assert states in (["dead", "delivered"], ["dead", "dead"])


def test_an_endpoint_failing_for_days_is_disabled(world: World) -> None:
    world.bs.add_webhook_endpoint(world.tenant_id, URL)
    transport = MemoryTransport()
    delivery = deliverer(
        world, transport, schedule=(timedelta(0),), disable_after=timedelta(days=1)
    )
    send(world)
    transport.script(500)
    delivery.run_once()
    [endpoint] = world.bs.list_webhook_endpoints(world.tenant_id)
    assert endpoint.enabled
    world.clock.advance(timedelta(days=1, seconds=1))
    send(world)
    transport.script(500)
    delivery.run_once()
    [endpoint] = world.bs.list_webhook_endpoints(world.tenant_id)
    assert not endpoint.enabled
    assert endpoint.disabled_reason == "failing"


def test_events_for_a_disabled_endpoint_become_dead_letters(world: World) -> None:
    ep = world.bs.add_webhook_endpoint(world.tenant_id, URL)
    send(world)
    world.bs.disable_webhook_endpoint(world.tenant_id, ep.id)
    transport = MemoryTransport()
    deliverer(world, transport).run_once()
    assert transport.posted == []
    [dead] = world.bs.webhook_deliveries(world.tenant_id, state="dead")
    assert dead.last_error == "endpoint_disabled"
